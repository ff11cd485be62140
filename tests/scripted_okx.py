"""A scripted OKX on 127.0.0.1, for answers the simulator does not give.

It answers ``GET /api/v5/public/time`` (so a client can open) and, for each path a
test names, whatever that test's handler returns; it records every request. It
checks no signature: the tests using it are about what the client does with the
answers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from okx_grid_async import Credentials, GridClient, LocalRateLimiter
from okx_grid_async._constants import PUBLIC_TIME_PATH

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CREDENTIALS = Credentials("scripted-key", "scripted-secret", "scripted-passphrase")


class ScriptedOKX:
    """The server's URL and the requests it received, as ``(method, path, query)``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def count(self, path: str) -> int:
        """How many requests arrived for ``path``."""
        return sum(1 for _, seen, _ in self.requests if seen == path)

    def client(self, **options: Any) -> GridClient:
        """A GridClient for this server, with a limiter of its own and a User ID given."""
        return GridClient(
            CREDENTIALS,
            base_url=self.url,
            user_id="1",
            rate_limiter=LocalRateLimiter(),
            timeout=5.0,
            **options,
        )


def envelope(rows: list[dict[str, str]], code: str = "0") -> web.Response:
    """OKX's envelope around ``rows``."""
    return web.json_response({"code": code, "msg": "", "data": rows})


@asynccontextmanager
async def scripted_okx(routes: Mapping[str, Handler]) -> AsyncIterator[ScriptedOKX]:
    """Serve ``routes`` (path to handler, any method) and OKX's time until the block ends."""
    okx: ScriptedOKX

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        okx.requests.append((request.method, request.path, dict(request.query)))
        return await handler(request)

    async def server_time(request: web.Request) -> web.StreamResponse:
        return envelope([{"ts": str(int(time.time() * 1000))}])

    app = web.Application(middlewares=[record])
    app.router.add_get(PUBLIC_TIME_PATH, server_time)
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    async with TestServer(app, host="127.0.0.1") as server:
        okx = ScriptedOKX(str(server.make_url("")))
        yield okx
