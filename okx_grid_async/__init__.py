"""okx-grid-async: a typed asyncio client for OKX contract-grid positions and closes.

Everything public is re-exported here; the modules behind it are private.
"""

from ._client import CloseReconciliation, GridClient
from ._clock import Clock, FakeClock, SystemClock
from ._constants import EEA_URL, GLOBAL_URL, OPENAPI_URL, US_URL
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
from ._redis_limiter import RedisRateLimiter
from ._sweep import SweepResult
from ._validation import InvalidArgumentError

__version__ = "0.1.0"

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
    "FakeClock",
    "GridClient",
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
    "__version__",
    "default_rate_limiter",
]
