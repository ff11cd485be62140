"""The clients compared, each reading one grid's position from the simulator.

- :class:`OurClient`: :class:`~okx_grid_async.GridClient`.
- :class:`CcxtClient`: ``ccxt.async_support.okx`` with its REST URL pointed at the
  simulator, calling the implicit ``privateGetTradingBotGridPositions``.
- :class:`PythonOkxClient`: python-okx's ``okx.Grid.GridAPI`` (synchronous, httpx), as is.
- :class:`RawAiohttp`: the floor: one aiohttp session, signing by hand with hmac,
  ``json.loads`` of the body; nothing else.

Every peer checks that each answer's ``code`` is ``"0"`` (ours and ccxt raise on
their own). A peer whose package is missing raises :class:`PeerUnavailableError`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib
import importlib.metadata
import json
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol

import aiohttp

from okx_grid_async import GridClient, LocalRateLimiter, RateLimiter
from okx_grid_async._constants import CONTRACT_GRID, GRID_POSITIONS_PATH

from .simulator_process import SimAccountInfo

__all__ = [
    "CcxtClient",
    "OurClient",
    "Peer",
    "PeerUnavailableError",
    "PythonOkxClient",
    "RawAiohttp",
    "unpaced_limiter",
]

# Long enough for 300 calls queued behind a 20-per-2-s budget.
CALL_TIMEOUT: Final = 120.0


class PeerUnavailableError(Exception):
    """A peer cannot run here; the message says why."""


class Peer(Protocol):
    """One client under test, bound to one simulator account and one grid."""

    name: str
    version: str

    async def sequential(self, n: int) -> None:
        """``n`` position reads, one after another."""
        ...

    async def aclose(self) -> None:
        """Release the connections."""
        ...


def version_of(distribution: str) -> str:
    """The installed version of a distribution, or ``?``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def unpaced_limiter(slots: int = 64) -> LocalRateLimiter:
    """A LocalRateLimiter that never makes a request wait in these benchmarks.

    A window of 1 ms with no safety margin frees each slot as soon as its answer
    is back, so only ``slots`` requests in flight at once would ever wait. (A huge
    ``max_rate`` would do too, since a grant costs the same whatever the rate, but
    the limiter would keep one answer time per request it has not forgotten.)
    """
    return LocalRateLimiter(max_rate=slots, time_period=0.001, safety_margin=0.0)


# What OurClient records through OpenTelemetry (client_cost compares them):
# "off": no telemetry, as without opentelemetry-api installed; "api": the API's
# global providers with no SDK configured (no-ops), what a client gets by default
# with the otel extra; "sdk": an SDK MeterProvider (in-memory reader) and
# TracerProvider (every span recorded, then dropped: no exporter's cost).
Telemetry = Literal["off", "api", "sdk"]
_TELEMETRY_NAMES: Final = {"off": " (no OTel)", "api": "", "sdk": " + OTel SDK"}


class OurClient:
    """okx-grid-async's GridClient."""

    name = "okx-grid-async"

    def __init__(
        self, url: str, account: SimAccountInfo, algo_id: str, telemetry: Telemetry = "api"
    ) -> None:
        self.version = version_of("okx-grid-async")
        self.name = OurClient.name + _TELEMETRY_NAMES[telemetry]
        self._url = url
        self._account = account
        self._algo_id = algo_id
        self._telemetry = telemetry
        self._client: GridClient | None = None
        self._providers: list[Any] = []

    async def open(self, rate_limiter: RateLimiter | None) -> None:
        """Open the client (``None``: the process-wide default 20-per-2-s limiter)."""
        options: dict[str, Any] = {}
        if self._telemetry == "sdk":
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader
            from opentelemetry.sdk.trace import TracerProvider

            options["meter_provider"] = MeterProvider(metric_readers=[InMemoryMetricReader()])
            options["tracer_provider"] = TracerProvider()
            self._providers = list(options.values())
        client = GridClient(
            self._account.credentials(),
            base_url=self._url,
            user_id=self._account.user_id,
            rate_limiter=rate_limiter,
            timeout=CALL_TIMEOUT,
            **options,
        )
        if self._telemetry == "off":
            # What call_telemetry() returns when opentelemetry-api is not installed.
            client._transport._telemetry = None
        await client.__aenter__()
        self._client = client

    async def sequential(self, n: int) -> None:
        get, algo_id = self._opened().get_positions, self._algo_id
        for _ in range(n):
            await get(algo_id)

    async def concurrent(self, n: int) -> None:
        """``n`` reads started at once (paced by the client's limiter)."""
        get, algo_id = self._opened().get_positions, self._algo_id
        await asyncio.gather(*(get(algo_id) for _ in range(n)))

    def _opened(self) -> GridClient:
        if self._client is None:
            raise RuntimeError("open the client first")
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        for provider in self._providers:
            provider.shutdown()


class CcxtClient:
    """ccxt's async okx, its REST URL pointed at the simulator."""

    name = "ccxt"

    def __init__(self, url: str, account: SimAccountInfo, algo_id: str, *, paced: bool) -> None:
        try:
            ccxt_async = importlib.import_module("ccxt.async_support")
        except ImportError as exc:
            raise PeerUnavailableError(f"ccxt not importable: {exc}") from exc
        self.version = version_of("ccxt")
        self._exchange: Any = ccxt_async.okx(
            {
                "apiKey": account.api_key,
                "secret": account.secret_key,
                "password": account.passphrase,
                "enableRateLimit": paced,
            }
        )
        self._exchange.urls["api"] = {"rest": url}
        self._params = {"algoOrdType": CONTRACT_GRID, "algoId": algo_id}

    @property
    def rate_limit_ms(self) -> float:
        """ccxt's spacing between calls of cost 1, in milliseconds."""
        return float(self._exchange.rateLimit)

    async def sequential(self, n: int) -> None:
        call, params = self._exchange.privateGetTradingBotGridPositions, self._params
        for _ in range(n):
            await call(params)

    async def concurrent(self, n: int) -> None:
        """``n`` calls started at once (paced by ccxt's throttler when enabled)."""
        call, params = self._exchange.privateGetTradingBotGridPositions, self._params
        await asyncio.gather(*(call(params) for _ in range(n)))

    async def gather(self, n: int) -> list[object]:
        """``n`` calls started at once; each one's answer, or the exception it raised."""
        call, params = self._exchange.privateGetTradingBotGridPositions, self._params
        results: list[object] = await asyncio.gather(
            *(call(params) for _ in range(n)), return_exceptions=True
        )
        return results

    async def aclose(self) -> None:
        await self._exchange.close()


class PythonOkxClient:
    """python-okx's GridAPI: synchronous (httpx); measured as is, inside the event loop."""

    name = "python-okx"

    def __init__(self, url: str, account: SimAccountInfo, algo_id: str) -> None:
        try:
            grid = importlib.import_module("okx.Grid")
        except ImportError as exc:
            raise PeerUnavailableError(f"python-okx not importable: {exc}") from exc
        self.version = version_of("python-okx")
        self._api: Any = grid.GridAPI(
            account.api_key, account.secret_key, account.passphrase, False, flag="0", domain=url
        )
        self._algo_id = algo_id

    async def sequential(self, n: int) -> None:
        read, algo_id = self._api.grid_positions, self._algo_id
        for _ in range(n):
            answer = read(algoOrdType=CONTRACT_GRID, algoId=algo_id)
            if answer["code"] != "0":
                raise RuntimeError(f"python-okx: {answer}")

    async def aclose(self) -> None:
        self._api.close()


class RawAiohttp:
    """The floor: the least a correct signed GET with aiohttp can do."""

    name = "raw aiohttp (floor)"

    def __init__(self, url: str, account: SimAccountInfo, algo_id: str) -> None:
        self.version = version_of("aiohttp")
        self._path = f"{GRID_POSITIONS_PATH}?algoOrdType={CONTRACT_GRID}&algoId={algo_id}"
        self._url = url + self._path
        self._secret = account.secret_key.encode()
        self._key = account.api_key
        self._passphrase = account.passphrase
        self._session: aiohttp.ClientSession | None = None

    async def sequential(self, n: int) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        session, url, path, secret = self._session, self._url, self._path, self._secret
        for _ in range(n):
            now = datetime.now(UTC)
            timestamp = f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond // 1000:03d}Z"
            message = f"{timestamp}GET{path}".encode()
            signature = base64.b64encode(hmac.new(secret, message, hashlib.sha256).digest())
            headers = {
                "OK-ACCESS-KEY": self._key,
                "OK-ACCESS-SIGN": signature.decode(),
                "OK-ACCESS-TIMESTAMP": timestamp,
                "OK-ACCESS-PASSPHRASE": self._passphrase,
                "Content-Type": "application/json",
            }
            async with session.get(url, headers=headers) as response:
                raw = await response.read()
            if json.loads(raw)["code"] != "0":
                raise RuntimeError(f"raw aiohttp: {raw[:200]!r}")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
