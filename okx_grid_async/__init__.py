"""okx-grid-async: a typed asyncio client for OKX contract-grid positions and closes.

Everything public is re-exported here; the modules behind it are private. Test
helpers live in `okx_grid_async.testing`, the simulator in `okx_grid_async.simulator`.
"""

import warnings
from typing import Any

from ._client import GridClient
from ._clock import Clock, SystemClock
from ._closing import CloseReconciliation
from ._constants import EEA_URL, GLOBAL_URL, OPENAPI_URL, US_URL, GridEndpoint
from ._credentials import Credentials
from ._errors import (
    AuthenticationError,
    ClosingNotAllowedError,
    ClosingOrderExistsError,
    DeadlineExceededError,
    EndpointTimeoutError,
    GridError,
    GridNotFoundError,
    GridStateError,
    GridStoppingError,
    HTTPStatusError,
    InvalidArgumentError,
    LoginRefusedError,
    MalformedResponseError,
    NoPositionError,
    NotGridPolicyError,
    NotSentError,
    OKXAPIError,
    OKXError,
    OrderNotFoundError,
    OutcomeUnknownError,
    ParameterError,
    RateLimitError,
    RateLimiterUnavailableError,
    ResponseTooLargeError,
    ServiceUnavailableError,
    TimestampExpiredError,
    TransportError,
    WaitTimeoutError,
)
from ._instruments import Instrument
from ._limiter import LimiterStats, LocalRateLimiter, RateLimiter, default_rate_limiter
from ._models import CancelCloseOrderResult, ClosePositionResult, GridOrder, GridPosition
from ._publish import publish
from ._redis_limiter import RedisRateLimiter
from ._sweep import SweepResult
from ._version import __version__
from ._ws import WatchFailure, WatchStats, WatchStream

__all__ = [
    "EEA_URL",
    "GLOBAL_URL",
    "OPENAPI_URL",
    "US_URL",
    "AuthenticationError",
    "CancelCloseOrderResult",
    "Clock",
    "ClosePositionResult",
    "CloseReconciliation",
    "ClosingNotAllowedError",
    "ClosingOrderExistsError",
    "Credentials",
    "DeadlineExceededError",
    "EndpointTimeoutError",
    "GridClient",
    "GridEndpoint",
    "GridError",
    "GridNotFoundError",
    "GridOrder",
    "GridPosition",
    "GridStateError",
    "GridStoppingError",
    "HTTPStatusError",
    "Instrument",
    "InvalidArgumentError",
    "LimiterStats",
    "LocalRateLimiter",
    "LoginRefusedError",
    "MalformedResponseError",
    "NoPositionError",
    "NotGridPolicyError",
    "NotSentError",
    "OKXAPIError",
    "OKXError",
    "OrderNotFoundError",
    "OutcomeUnknownError",
    "ParameterError",
    "RateLimitError",
    "RateLimiter",
    "RateLimiterUnavailableError",
    "RedisRateLimiter",
    "ResponseTooLargeError",
    "ServiceUnavailableError",
    "SweepResult",
    "SystemClock",
    "TimestampExpiredError",
    "TransportError",
    "WaitTimeoutError",
    "WatchFailure",
    "WatchStats",
    "WatchStream",
    "__version__",
    "default_rate_limiter",
]


def __getattr__(name: str) -> Any:
    # FakeClock moved to okx_grid_async.testing (issue 14); the old name lasts one release.
    if name == "FakeClock":
        warnings.warn(
            "okx_grid_async.FakeClock is deprecated and will be removed in the next release; "
            "import it from okx_grid_async.testing",
            DeprecationWarning,
            stacklevel=2,
        )
        from .testing import FakeClock

        return FakeClock
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Tracebacks and reprs show okx_grid_async.GridNotFoundError, the name users import.
publish(globals())
