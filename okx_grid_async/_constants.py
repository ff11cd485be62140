"""Defaults and fixed facts in one place: hosts, paths, limits, timeouts, retry caps."""

from __future__ import annotations

from typing import Final

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
