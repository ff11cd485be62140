"""The retry policy: a table of failures, per method, and the backoff curve."""

from __future__ import annotations

import pytest

from okx_grid_async import (
    EndpointTimeoutError,
    GridNotFoundError,
    HTTPStatusError,
    MalformedResponseError,
    NoPositionError,
    OKXError,
    ParameterError,
    RateLimitError,
    ServiceUnavailableError,
    TimestampExpiredError,
    TransportError,
)
from okx_grid_async._errors import AuthenticationError
from okx_grid_async._retry import Decision, backoff_delay, decide

R, X, U = Decision.RETRY, Decision.RAISE, Decision.UNKNOWN

CASES: list[tuple[OKXError, Decision, Decision]] = [
    # error                                                   GET  POST
    (RateLimitError("50011", "Too Many Requests", 429), R, R),
    (RateLimitError("50011", "Rate limit reached", 200), R, R),
    (ServiceUnavailableError("50013", "Systems are busy", 429), R, R),
    (ServiceUnavailableError("50001", "Service unavailable", 503), R, U),
    (ServiceUnavailableError("50026", "System error", 500), R, U),
    (EndpointTimeoutError("50004", "Endpoint request timeout", 200), R, U),
    (TimestampExpiredError("50102", "Timestamp request expired", 401), R, R),
    (TransportError("cannot connect", sent=False), R, R),
    (TransportError("server disconnected", sent=True), R, U),
    (HTTPStatusError(502, "<html>Bad Gateway</html>"), R, U),
    (HTTPStatusError(404, "<html>Not Found</html>"), X, U),
    (MalformedResponseError("not JSON", 200, "{"), X, U),
    (AuthenticationError("50113", "Invalid Sign", 401), X, X),
    (ParameterError("51000", "Parameter error", 200), X, X),
    (NoPositionError("51058", "No available position", 200), X, X),
    (GridNotFoundError("51293", "Bot does not exist", 200), X, X),
]


@pytest.mark.parametrize(("error", "get", "post"), CASES, ids=lambda v: repr(v)[:40])
def test_decision_table(error: OKXError, get: Decision, post: Decision) -> None:
    assert decide("GET", error) is get
    assert decide("POST", error) is post


@pytest.mark.parametrize(
    ("attempt", "jitter", "expected"),
    [
        (1, 0.0, 0.125),
        (1, 0.999, 0.249875),
        (2, 0.0, 0.25),
        (3, 0.5, 0.75),
        (5, 0.0, 2.0),
        (6, 0.0, 2.0),  # capped at 4 s: half fixed, half jitter
        (50, 0.999, 3.998),
    ],
)
def test_backoff_is_capped_exponential_with_jitter(
    attempt: int, jitter: float, expected: float
) -> None:
    assert backoff_delay(attempt, jitter) == pytest.approx(expected)


def test_backoff_attempts_are_one_based() -> None:
    with pytest.raises(ValueError, match="1-based"):
        backoff_delay(0, 0.5)
