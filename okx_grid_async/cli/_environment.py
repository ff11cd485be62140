"""What ``okx-grid`` takes from its environment: its name, the variables it reads, the secrets.

Credentials come only from the environment, never from the command line. The
values of the secret key and the passphrase, and the password of the Redis URL,
are the secrets that nothing ``okx-grid`` writes may show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from okx_grid_async._redaction import split_url

__all__ = [
    "BASE_URL_VAR",
    "CREDENTIAL_VARS",
    "INSTALL_HINT",
    "PROG",
    "REDIS_URL_VAR",
    "secrets_of",
]

PROG: Final = "okx-grid"
# What `okx-grid` prints, and exits 2 with, when the cli extra is not installed.
INSTALL_HINT: Final = f"{PROG}: the command line needs its extra: pip install 'okx-grid-async[cli]'"

CREDENTIAL_VARS: Final = ("OKX_API_KEY", "OKX_SECRET_KEY", "OKX_PASSPHRASE")
# --base-url's default: `okx-grid simulate` prints it for export with the demo
# credentials, so that they go to the simulator, never to OKX.
BASE_URL_VAR: Final = "OKX_BASE_URL"
# --redis-url's default: a URL given in the environment keeps its password out of `ps`.
REDIS_URL_VAR: Final = "OKX_GRID_REDIS_URL"

_SECRET_VARS: Final = ("OKX_SECRET_KEY", "OKX_PASSPHRASE")
# Shorter values would blank out ordinary text; no real secret or passphrase is this short.
_MIN_SECRET: Final = 4


def secrets_of(environ: Mapping[str, str], redis_url: str | None = None) -> tuple[str, ...]:
    """What to redact: the secret key, the passphrase, and the Redis URLs' passwords.

    The Redis URLs are ``redis_url`` (``--redis-url``) and the variable's, used or
    not. Values shorter than 4 characters are left out.
    """
    found = [environ.get(name, "") for name in _SECRET_VARS]
    for url in (redis_url, environ.get(REDIS_URL_VAR)):
        if url:
            found.extend(split_url(url)[1])
    return tuple(s for s in dict.fromkeys(found) if len(s) >= _MIN_SECRET)
