"""Secrets kept out of text: the one implementation of ``***``.

Two users: the Redis URL (`RedisRateLimiter` shows its URL and Redis's errors
without the password) and the command line (everything ``okx-grid`` writes,
without the secret key, the passphrase or that password). Both hand the secrets
they know to `redact`; `split_url` finds a URL's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import unquote

__all__ = ["REDACTED", "redact", "redact_url", "split_url"]

REDACTED: Final = "***"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` replaced by ``***``.

    Longer secrets go first, so that a secret containing another is hidden whole
    rather than leaving its ends. Empty strings are ignored.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def redact_url(url: str) -> str:
    """``url`` with any password (in the user info or a ``password=`` query) replaced by ``***``."""
    return split_url(url)[0]


def split_url(url: str) -> tuple[str, tuple[str, ...]]:
    """``url`` redacted, and every string in it that may be a password (raw and decoded).

    Plain string surgery rather than urllib, so the rest of the URL is shown as written.
    The secrets come longest first.
    """
    found: list[str] = []
    head, qmark, tail = url.partition("?")
    scheme, sep, rest = head.partition("://")
    if sep:
        netloc, slash, path = rest.partition("/")
        userinfo, at, hostport = netloc.rpartition("@")
        if at:
            user, colon, password = userinfo.partition(":")
            # Without a colon the user info may be a password written in the wrong place.
            found.append(password if colon else userinfo)
            netloc = f"{user}:{REDACTED}@{hostport}" if colon else f"{REDACTED}@{hostport}"
        head = f"{scheme}://{netloc}{slash}{path}"
    if qmark:
        query, hashmark, fragment = tail.partition("#")
        pieces = []
        for piece in query.split("&"):
            name, eq, value = piece.partition("=")
            if eq and unquote(name).lower() == "password":
                found.append(value)
                value = REDACTED
            pieces.append(f"{name}{eq}{value}")
        head = f"{head}?{'&'.join(pieces)}{hashmark}{fragment}"
    candidates = {s for s in found if s} | {unquote(s) for s in found if s}
    return head, tuple(sorted(candidates, key=len, reverse=True))
