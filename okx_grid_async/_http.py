"""One HTTP exchange on an aiohttp session: no redirect, a capped body, typed network faults.

What the transport asks of aiohttp, and nothing of signing, pacing or retrying.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import Final

import aiohttp
from yarl import URL

from ._constants import MAX_RESPONSE_BYTES
from ._errors import HTTPStatusError, ResponseTooLargeError, TransportError

__all__ = ["Connections", "read_capped", "send"]

logger: Final = logging.getLogger("okx_grid_async")


class Connections:
    """The connections (their aiohttp protocols, one per TCP connection) that carried a
    request already, held weakly. The last one is checked first: requests one after
    another reuse it, and that check makes no weak reference."""

    __slots__ = ("_last", "_seen")

    def __init__(self) -> None:
        self._seen: weakref.WeakSet[object] = weakref.WeakSet()
        self._last: weakref.ref[object] | None = None

    def reused(self, protocol: object) -> bool:
        """Whether ``protocol`` carried a request before this one (which it now has)."""
        last = self._last
        if last is not None and last() is protocol:
            return True
        reused = protocol in self._seen
        if not reused:
            self._seen.add(protocol)
        self._last = weakref.ref(protocol)
        return reused

    def __len__(self) -> int:
        return len(self._seen)


async def send(
    session: aiohttp.ClientSession,
    connections: Connections,
    method: str,
    url: URL | str,
    headers: Mapping[str, str] | None,
    body: str | None,
) -> tuple[bytes, int, bool]:
    """One HTTP exchange: the body, the status, and whether the connection was reused.

    ``connections`` tells whether this one's carried a request before. Network
    faults become TransportError with ``sent`` set.

    Redirects are never followed (they would carry the signed request to
    another host, outside the limiter) and error statuses never raise inside
    aiohttp, whatever a borrowed session says. The body is read up to
    ``MAX_RESPONSE_BYTES`` (decompressed). The aiohttp exception is not
    chained: its ``request_info`` holds the request's headers, passphrase
    included.

    Raises:
        TransportError: the network failed (``sent`` says whether bytes may have left).
        HTTPStatusError: a redirect.
        ResponseTooLargeError: a body past ``MAX_RESPONSE_BYTES``.
    """
    try:
        async with session.request(
            method,
            url,
            headers=headers,
            data=body.encode() if body else None,
            allow_redirects=False,
            raise_for_status=False,
        ) as response:
            status = response.status
            # The connection's protocol object, one per TCP connection. Not
            # ``response.connection``: aiohttp hands a short answer's connection
            # back to its pool before returning the response, so that is None.
            # Without it (another aiohttp), no round trip counts as reused: no
            # credit, which is safe.
            protocol: object = getattr(response, "_protocol", None)
            reused = protocol is not None and connections.reused(protocol)
            if 300 <= status < 400:
                raise HTTPStatusError(status, f"redirect to {response.headers.get('Location')!r}")
            raw = await read_capped(response)
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
        error = TransportError(f"{method} {_path(url)}: cannot connect: {exc}", sent=False)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        error = TransportError(f"{method} {_path(url)}: {type(exc).__name__}: {exc}", sent=True)
    else:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s -> HTTP %d (%d bytes)", method, _path(url), status, len(raw))
        return raw, status, reused
    raise error  # outside the except clause, so the aiohttp exception is not its context


async def read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The whole body, or ResponseTooLargeError past ``MAX_RESPONSE_BYTES`` (decompressed)."""
    length = response.content_length
    if length is not None and not response.headers.get("Content-Encoding"):
        if length > MAX_RESPONSE_BYTES:
            raise ResponseTooLargeError(
                f"Content-Length {length} is over the {MAX_RESPONSE_BYTES}-byte cap",
                response.status,
                "",
            )
        # aiohttp reads no more than Content-Length of an unencoded body: within the cap.
        return await response.content.read()
    # Compressed or of unknown length: count as it comes.
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ResponseTooLargeError(
                f"body over the {MAX_RESPONSE_BYTES}-byte cap", response.status, ""
            )
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _path(url: URL | str) -> str:
    return URL(url).path if isinstance(url, str) else url.path
