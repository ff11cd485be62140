"""What the distribution says of itself: its license and its changelog."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
PROJECT: Final = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
# Keep a Changelog's kinds of change, in its order.
KINDS: Final = ["Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"]
_RELEASE: Final = re.compile(r"^\[\d+\.\d+\.\d+(?:[-.]?\w+)?\] - \d{4}-\d{2}-\d{2}$")


def test_the_license_file_is_the_license_pyproject_declares() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n\nCopyright (c) ")
    assert "Permission is hereby granted, free of charge" in text
    metadata = importlib.metadata.metadata("okx-grid-async")
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]


def test_the_changelog_opens_with_unreleased_then_dated_releases_newest_first() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert releases[0] == "[Unreleased]"
    assert all(_RELEASE.match(r) for r in releases[1:]), releases
    versions = [r[1 : r.index("]")] for r in releases[1:]]
    assert PROJECT["version"] in versions
    dates = [r.rsplit(" ", 1)[1] for r in releases[1:]]
    assert dates == sorted(dates, reverse=True)


def test_the_changelog_sorts_changes_by_keep_a_changelog_s_kinds() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    for section in re.split(r"^## ", text, flags=re.MULTILINE)[1:]:
        kinds = re.findall(r"^### (.+)$", section, flags=re.MULTILINE)
        assert set(kinds) <= set(KINDS), kinds
        assert kinds == sorted(kinds, key=KINDS.index), kinds
