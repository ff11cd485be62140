"""The one implementation of ``***``: a URL's password, and secrets in any text."""

from __future__ import annotations

import pytest

from okx_grid_async._redaction import redact, redact_url, split_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://bob:hunter2@host:1/2", "redis://bob:***@host:1/2"),
        ("redis://hunter2@host", "redis://***@host"),
        (
            "unix:///run/redis.sock?db=1&password=hunter2",
            "unix:///run/redis.sock?db=1&password=***",
        ),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_split_url_names_the_password_raw_and_decoded_longest_first() -> None:
    shown, secrets = split_url("redis://:p%40ss@host/0?password=x%2By")
    assert shown == "redis://:***@host/0?password=***"
    assert secrets == ("p%40ss", "x%2By", "p@ss", "x+y")


@pytest.mark.parametrize(
    ("text", "secrets", "shown"),
    [
        ("key hunter2 in text", ["hunter2"], "key *** in text"),
        ("hunter2hunter2", ["hunter2"], "******"),
        # The longer secret first: its tail is not left behind by the shorter one.
        ("pass=abcdef", ["abc", "abcdef"], "pass=***"),
        ("nothing here", ["hunter2", ""], "nothing here"),
        ("", ["x"], ""),
    ],
)
def test_redact_replaces_every_secret(text: str, secrets: list[str], shown: str) -> None:
    assert redact(text, secrets) == shown
