"""Defaults and fixed facts in one place: hosts, paths, limits, timeouts, retry caps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, TypeAlias

# Hosts (okx-notes: global, regional, and the newer openapi name).
GLOBAL_URL: Final = "https://www.okx.com"
US_URL: Final = "https://us.okx.com"
EEA_URL: Final = "https://eea.okx.com"
OPENAPI_URL: Final = "https://openapi.okx.com"

# Endpoint paths.
PUBLIC_TIME_PATH: Final = "/api/v5/public/time"
PUBLIC_INSTRUMENTS_PATH: Final = "/api/v5/public/instruments"
GRID_POSITIONS_PATH: Final = "/api/v5/tradingBot/grid/positions"
GRID_CLOSE_POSITION_PATH: Final = "/api/v5/tradingBot/grid/close-position"
GRID_ORDERS_PENDING_PATH: Final = "/api/v5/tradingBot/grid/orders-algo-pending"
GRID_ORDERS_HISTORY_PATH: Final = "/api/v5/tradingBot/grid/orders-algo-history"
GRID_CANCEL_CLOSE_ORDER_PATH: Final = "/api/v5/tradingBot/grid/cancel-close-order"
ACCOUNT_CONFIG_PATH: Final = "/api/v5/account/config"

GridEndpoint: TypeAlias = Literal[
    "positions",
    "close-position",
    "cancel-close-order",
    "orders-algo-pending",
    "orders-algo-history",
]
"""A grid endpoint by the last part of its path, as `GridClient.limiter_stats()` takes it.

Each has its own budget per OKX User ID: ``"positions"`` is
``GET /api/v5/tradingBot/grid/positions``, ``"close-position"`` is
``POST /api/v5/tradingBot/grid/close-position``, and so on.
"""

# The paths of the grid endpoints by their GridEndpoint names (a test holds both equal).
GRID_ENDPOINT_PATHS: Final[Mapping[str, str]] = {
    "positions": GRID_POSITIONS_PATH,
    "close-position": GRID_CLOSE_POSITION_PATH,
    "cancel-close-order": GRID_CANCEL_CLOSE_ORDER_PATH,
    "orders-algo-pending": GRID_ORDERS_PENDING_PATH,
    "orders-algo-history": GRID_ORDERS_HISTORY_PATH,
}

CONTRACT_GRID: Final = "contract_grid"

# Rate limits: 20 requests per 2 s per (User ID, endpoint) for every grid endpoint here.
GRID_MAX_RATE: Final = 20
GRID_TIME_PERIOD: Final = 2.0
# Seconds added to the window so that network jitter cannot squeeze 21 arrivals into 2 s.
DEFAULT_SAFETY_MARGIN: Final = 0.05
# The arrival model (docs/rate-limiting.md): a slot counts its request as arrived the
# shortest recent round trip before its answer, from round trips on reused
# connections measured in the last ARRIVAL_SAMPLE_WINDOW seconds, once there are at
# least ARRIVAL_MIN_SAMPLES of them.
ARRIVAL_SAMPLE_WINDOW: Final = 60.0
ARRIVAL_MIN_SAMPLES: Final = 3
# Public /time: 10 requests per 2 s per IP.
PUBLIC_TIME_MAX_RATE: Final = 10
PUBLIC_TIME_PERIOD: Final = 2.0
# Account config (read once per API key for its User ID): 5 requests per 2 s per User ID.
ACCOUNT_CONFIG_MAX_RATE: Final = 5
ACCOUNT_CONFIG_TIME_PERIOD: Final = 2.0
# A measured offset from OKX's clock is reused by every client of the process for
# this long (clocks drift by parts per million; OKX allows 30 s), and re-measured
# sooner on 50102.
CLOCK_OFFSET_MAX_AGE: Final = 900.0
# Public /instruments: 20 requests per 2 s per IP and instType.
PUBLIC_INSTRUMENTS_MAX_RATE: Final = 20
PUBLIC_INSTRUMENTS_PERIOD: Final = 2.0
# Lot, tick and contract sizes rarely change: an instrument is read again after an hour.
INSTRUMENT_CACHE_TTL: Final = 3600.0

# Timeouts (seconds).
DEFAULT_TIMEOUT: Final = 10.0
DEFAULT_CONNECT_TIMEOUT: Final = 5.0
# OKX rejects a timestamp more than 30 s away from its clock (50102).
MAX_TIMESTAMP_SKEW: Final = 30.0
# A Redis client that RedisRateLimiter creates (a ``?socket_timeout=`` in the URL
# wins): an unreachable Redis fails a request within seconds instead of hanging it.
REDIS_SOCKET_TIMEOUT: Final = 2.0

# Retries.
DEFAULT_MAX_ATTEMPTS: Final = 5
BACKOFF_BASE: Final = 0.25
BACKOFF_CAP: Final = 4.0

# The largest answer body read, decompressed: these endpoints answer a few kB.
MAX_RESPONSE_BYTES: Final = 4 * 1024 * 1024

# Error bodies kept on exceptions, in characters.
RAW_TEXT_LIMIT: Final = 500

# The business WebSocket (grid-positions, grid-orders-contract): hosts per REST host,
# live and demo. An unknown https host keeps its name; a loopback http one (the
# simulator) is served plain ws:// on the same port.
WS_BUSINESS_PATH: Final = "/ws/v5/business"
WS_HOSTS: Final = {
    # REST host: (live WebSocket host, demo WebSocket host)
    "www.okx.com": ("ws.okx.com:8443", "wspap.okx.com:8443"),
    "openapi.okx.com": ("ws.okx.com:8443", "wspap.okx.com:8443"),
    "okx.com": ("ws.okx.com:8443", "wspap.okx.com:8443"),
    "us.okx.com": ("wsus.okx.com:8443", "wsuspap.okx.com:8443"),
    "eea.okx.com": ("wseea.okx.com:8443", "wseeapap.okx.com:8443"),
    "my.okx.com": ("wseea.okx.com:8443", "wseeapap.okx.com:8443"),
}
# Heartbeat: OKX closes a connection silent for 30 s (4004). After WS_HEARTBEAT seconds
# without a message the client sends "ping", and gives up on the connection when no
# message has come WS_PONG_TIMEOUT seconds later.
WS_IDLE_LIMIT: Final = 30.0
WS_HEARTBEAT: Final = 20.0
WS_PONG_TIMEOUT: Final = 5.0
# 3 connection requests per second per IP, shared by every stream of the process.
WS_CONNECT_MAX_RATE: Final = 3
WS_CONNECT_PERIOD: Final = 1.0
# 480 login/subscribe/unsubscribe operations per connection per hour; 64 KB per message.
WS_OPS_PER_HOUR: Final = 480
WS_OPS_PERIOD: Final = 3600.0
WS_MAX_MESSAGE_BYTES: Final = 65536
# Reconnect backoff (jittered, exponential); a connection that lived this long resets it.
WS_BACKOFF_BASE: Final = 0.5
WS_BACKOFF_CAP: Final = 30.0
WS_STABLE_AFTER: Final = 30.0
# Seconds to wait for the server's close frame once ours is sent.
WS_CLOSE_TIMEOUT: Final = 1.0
# Resync after a reconnect: reads of watched grids' positions in flight at once (each
# through the rate limiter, which does the pacing).
WS_RESYNC_CONCURRENCY: Final = 20
