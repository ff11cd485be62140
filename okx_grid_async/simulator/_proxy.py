"""A TCP proxy on loopback that delays each direction: OKX (or Redis) far away, on one machine.

Each chunk read from one side is written to the other ``delay`` seconds (times a
random factor within ``1 ± jitter``) after it was read, never before an earlier
chunk of the same direction: bytes keep their order, as TCP does.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from types import TracebackType
from typing import Final, Self

__all__ = ["LatencyProxy"]

_CHUNK: Final = 65536


class LatencyProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port`` with a delay each way.

    Use it as ``async with LatencyProxy(host, port, up=0.15, down=0.15) as proxy:``
    and connect to ``proxy.port``. ``up`` delays what the client sends (the way
    to the server), ``down`` what the server answers. Both can be changed while
    it runs; a change applies to chunks read from then on.

    Args:
        target_host: where to connect (a loopback address in tests).
        target_port: its port.
        up: seconds added on the way to the target.
        down: seconds added on the way back.
        jitter: each chunk's delay is multiplied by a factor in ``[1 - jitter, 1 + jitter]``.
        seed: for reproducible jitter.

    Raises:
        ValueError: for a negative delay or a jitter outside [0, 1).
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        up: float = 0.0,
        down: float = 0.0,
        jitter: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if up < 0 or down < 0:
            raise ValueError(f"delays must be >= 0, not up={up!r}, down={down!r}")
        if not 0 <= jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), not {jitter!r}")
        self.target_host = target_host
        self.target_port = target_port
        self.up = up
        self.down = down
        self.jitter = jitter
        self._rng = random.Random(seed)  # noqa: S311 (network jitter, not cryptography)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening and cut every connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _delay(self, base: float) -> float:
        if not self.jitter:
            return base
        return base * self._rng.uniform(1 - self.jitter, 1 + self.jitter)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                server_r, server_w = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                client_w.close()
                return
            pipes = [
                asyncio.ensure_future(self._pipe(client_r, server_w, up=True)),
                asyncio.ensure_future(self._pipe(server_r, client_w, up=False)),
            ]
            try:
                await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for pipe in pipes:
                    pipe.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
                for writer in (client_w, server_w):
                    writer.close()
                    with contextlib.suppress(OSError, asyncio.CancelledError):
                        await writer.wait_closed()
        finally:
            self._tasks.discard(task)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not chunk:
                    writer.write_eof() if writer.can_write_eof() else writer.close()
                    return
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        last_due = 0.0
        try:
            while True:
                chunk = await reader.read(_CHUNK)
                # In order: a chunk never overtakes the one before it.
                last_due = max(last_due, loop.time() + self._delay(self.up if up else self.down))
                queue.put_nowait((last_due, chunk))
                if not chunk:
                    break
            await sender
        except (OSError, ConnectionError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, ConnectionError):
                await sender
