"""What the simulator sends back: OKX's envelope, and the hostile answers of some faults.

An `Answer` is built first and sent by `send()`; the arrival log records its
status and code before it is sent. Most answers are small and sent whole. The
oversized ones are streamed (`Stream`), so that neither an 8 MB body nor a
gzip bomb that expands to 1 GB is ever held in memory:

- `padded()`: the answer with whitespace after its opening brace, ``size``
  bytes in all (still the same JSON, only too big);
- `gzip_bomb()`: the same padding, ``size`` bytes once decompressed, sent with
  ``Content-Encoding: gzip`` at about 1/1000 of that;
- `deep_json()`: ``{"code":"0","msg":"","data":[[[...]]]}`` nested ``depth`` deep;
- `redirect()`: HTTP 307 to another URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import struct
import zlib
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final

from aiohttp import web

from okx_grid_async.simulator._model import SimError

__all__ = [
    "HTML_500",
    "Answer",
    "Rows",
    "Stream",
    "deep_json",
    "drop",
    "envelope",
    "error_answer",
    "gzip_bomb",
    "padded",
    "redirect",
    "send",
]

Rows = Sequence[Mapping[str, object]]

_AUTH_CODES: Final = ("50101", "50102", "50103", "50104", "50105", "50106", "50107")
# OKX's error table: the HTTP status of each code that is not answered with 200.
_HTTP_STATUS: Final[Mapping[str, int]] = {
    **dict.fromkeys(_AUTH_CODES, 401),
    **dict.fromkeys(("50110", "50111", "50112", "50113", "50114"), 401),
    **dict.fromkeys(("50000", "50002", "50004", "50006", "50014", "51000"), 400),
    "50001": 503,
    "50013": 429,
    "50026": 500,
}
HTML_500: Final = (
    b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    b"<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)

# Spaces written per chunk of a padded body.
_CHUNK: Final = 64 * 1024
_SPACES: Final = b" " * _CHUNK
# Spaces per deflated block of a gzip bomb, and blocks per write (about 64 KB compressed).
_BOMB_BLOCK: Final = 1024 * 1024
_BOMB_BLOCKS_PER_WRITE: Final = 64
# A gzip member header: magic, deflate, no flags, no mtime, best compression, unknown OS.
_GZIP_HEADER: Final = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"


@dataclass(frozen=True, slots=True)
class Stream:
    """A body sent in chunks: exactly ``length`` bytes, produced only as they are written."""

    length: int
    chunks: Callable[[], AsyncGenerator[bytes, None]]


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer to send.

    Attributes:
        status: HTTP status.
        body: The body, unless ``stream`` is set.
        code: OKX's code in it, ``""`` if it carries none a client could read.
        content_type: The Content-Type.
        headers: Further headers (Location, Content-Encoding).
        stream: If set, the body is streamed from it and ``body`` is unused.
    """

    status: int
    body: bytes
    code: str
    content_type: str = "application/json"
    headers: Mapping[str, str] | None = None
    stream: Stream | None = None


def envelope(status: int, code: str, msg: str = "", data: Rows | None = None) -> Answer:
    """OKX's ``{"code":...,"msg":...,"data":[...]}`` with HTTP ``status``."""
    body = json.dumps({"code": code, "msg": msg, "data": data or []}, separators=(",", ":"))
    return Answer(status, body.encode(), code)


def error_answer(err: SimError) -> Answer:
    """``err`` in OKX's envelope, with the HTTP status OKX's error table gives its code."""
    return envelope(_HTTP_STATUS.get(err.code, 200), err.code, err.msg)


def redirect(location: str) -> Answer:
    """HTTP 307 Temporary Redirect to ``location``: a client must resend there to follow it."""
    return Answer(307, b"", "", "text/plain", headers={"Location": location})


@functools.cache
def _deep_json_body(depth: int) -> bytes:
    return b'{"code":"0","msg":"","data":' + b"[" * depth + b"]" * depth + b"}"


def deep_json(depth: int) -> Answer:
    """HTTP 200, ``{"code":"0","msg":"","data":[[...]]}`` with ``data`` nested ``depth`` deep."""
    return Answer(200, _deep_json_body(depth), "0")


def padded(answer: Answer, size: int) -> Answer:
    """``answer`` with spaces after its opening brace: ``size`` bytes, still the same JSON.

    An answer already ``size`` bytes or longer is sent as it is.
    """
    pad = size - len(answer.body)
    if pad <= 0:
        return answer
    head, tail = answer.body[:1], answer.body[1:]

    async def chunks() -> AsyncGenerator[bytes, None]:
        yield head
        for _ in range(pad // _CHUNK):
            yield _SPACES
        yield _SPACES[: pad % _CHUNK] + tail

    return replace(answer, body=b"", stream=Stream(size, chunks))


@functools.cache
def _space_block() -> bytes:
    return b" " * _BOMB_BLOCK


@functools.cache
def _deflated_space_block() -> bytes:
    """`_space_block()` as raw deflate, ending on a full flush.

    A full flush byte-aligns the output and lets nothing after it refer back,
    so copies of this block can follow each other in one deflate stream.
    """
    return _deflate(_space_block(), zlib.Z_FULL_FLUSH)


@functools.cache
def _crc_after_space_blocks(head: bytes, blocks: int) -> int:
    """CRC-32 of ``head`` then ``blocks`` times `_space_block()`.

    Cached: every answer starts with the same brace, so a bomb of a given
    size costs its CRC (about 0.3 s of a thread per GiB) once per process.
    """
    crc = zlib.crc32(head)
    for _ in range(blocks):
        crc = zlib.crc32(_space_block(), crc)
    return crc


def _deflate(data: bytes, flush: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(flush)


def gzip_bomb(answer: Answer, size: int) -> Answer:
    """`padded()` ``answer`` to ``size`` bytes, sent gzip-compressed: about ``size / 1000`` bytes.

    The body is one gzip member whose deflate stream is the opening brace,
    then one precomputed compressed block of spaces repeated, then the rest
    of the spaces and of the answer. The trailer's CRC is computed only
    when a client reads that far, in a thread (zlib releases the GIL), so the
    event loop, often the one of the client under test, is never held up.
    """
    pad = max(size - len(answer.body), 0)
    blocks, rest = divmod(pad, _BOMB_BLOCK)
    plain_head, plain_tail = answer.body[:1], b" " * rest + answer.body[1:]
    head = _GZIP_HEADER + _deflate(plain_head, zlib.Z_FULL_FLUSH)
    block = _deflated_space_block()
    tail = _deflate(plain_tail, zlib.Z_FINISH)
    length = len(head) + blocks * len(block) + len(tail) + 8

    async def chunks() -> AsyncGenerator[bytes, None]:
        yield head
        for start in range(0, blocks, _BOMB_BLOCKS_PER_WRITE):
            yield block * min(_BOMB_BLOCKS_PER_WRITE, blocks - start)
        crc = await asyncio.to_thread(_crc_after_space_blocks, plain_head, blocks)
        crc = zlib.crc32(plain_tail, crc)
        # The gzip trailer: CRC-32 and length (mod 2**32) of the decompressed body.
        yield tail + struct.pack("<II", crc, (len(answer.body) + pad) & 0xFFFFFFFF)

    return replace(
        answer, body=b"", headers={"Content-Encoding": "gzip"}, stream=Stream(length, chunks)
    )


async def send(request: web.Request, answer: Answer, closing: asyncio.Event) -> web.StreamResponse:
    """Send ``answer`` to ``request``'s client; a stream stops early if ``closing`` is set.

    A client that stops reading a stream (it closes the connection) ends it
    quietly: that is what the hostile bodies are for.
    """
    if answer.stream is None:
        return web.Response(
            status=answer.status,
            body=answer.body,
            content_type=answer.content_type,
            headers=answer.headers,
        )
    response = web.StreamResponse(status=answer.status, headers=answer.headers)
    response.content_type = answer.content_type
    response.content_length = answer.stream.length
    try:
        await response.prepare(request)
        async with contextlib.aclosing(answer.stream.chunks()) as chunks:
            async for chunk in chunks:
                if closing.is_set():
                    _hang_up(request)
                    break
                await response.write(chunk)
            else:
                await response.write_eof()
    except ConnectionError:
        pass  # the client hung up mid-body
    # After a hang-up aiohttp's own write_eof fails with a ConnectionError, which it swallows.
    return response


def drop(request: web.Request) -> web.Response:
    """Close the connection without answering.

    aiohttp then fails to write the returned response with a ConnectionError,
    which it swallows quietly: no answer reaches the client.
    """
    _hang_up(request)
    response = web.Response(status=500)
    response.force_close()
    return response


def _hang_up(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()
