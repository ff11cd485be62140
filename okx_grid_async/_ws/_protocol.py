"""The business WebSocket's messages, and the two grid channels, decoded in one place.

Every text frame but ``pong`` is one JSON object: an event (``login``, ``subscribe``,
``error``, ``notice``...) or a push (``arg`` and ``data``). Each channel has one msgspec
decoder built at import, whose ``data`` rows are the REST wire rows (plus ``pTime``),
converted to the public results by the functions the REST parsers use.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import Final, Generic, TypeVar

import msgspec

from okx_grid_async._errors import (
    GridNotFoundError,
    LoginRefusedError,
    OKXAPIError,
    OKXError,
    ParameterError,
    RateLimitError,
)
from okx_grid_async._models import (
    GridOrder,
    GridPosition,
    WireGridOrder,
    WirePosition,
    grid_order_from_wire,
    position_from_wire,
)

__all__ = [
    "GRIDS",
    "NOTICE_UPGRADE",
    "POSITIONS",
    "UPGRADE_STATUS",
    "Channel",
    "Message",
    "arg_key",
    "login_message",
    "login_refused",
    "ws_error",
]

W = TypeVar("W")
T = TypeVar("T")

# OKXAPIError.http_status of an answer that came over the WebSocket: its upgrade's status.
UPGRADE_STATUS: Final = 101
# The notice that OKX will restart the service in about 60 s.
NOTICE_UPGRADE: Final = "64008"


class Message(msgspec.Struct, Generic[W]):
    """One frame: an event (``event`` set) or a push (``data`` set). Unknown keys ignored."""

    event: str = ""
    code: str = ""
    msg: str = ""
    id: str = ""
    arg: dict[str, str] | None = None
    data: list[W] | None = None


class _Login(msgspec.Struct):
    op: str
    args: list[dict[str, str]]


_LOGIN_ENCODER: Final = msgspec.json.Encoder()


def login_message(args: dict[str, str]) -> str:
    """The ``login`` frame for one signed argument (it holds secrets: never log it)."""
    return _LOGIN_ENCODER.encode(_Login("login", [args])).decode()


def arg_key(arg: Mapping[str, str]) -> str:
    """A subscription argument as a key: the same for the argument sent and OKX's echo.

    OKX adds ``uid`` to the argument of a push; it is left out.
    """
    return "&".join(f"{k}={v}" for k, v in sorted(arg.items()) if k != "uid")


# One table from an OKX WebSocket code to the exception class of a refused request.
_WS_CODE_TO_ERROR: Final[Mapping[str, type[OKXAPIError]]] = {
    "60012": ParameterError,  # invalid request (e.g. a message over 64 KB)
    "60014": RateLimitError,  # requests too frequent (over 480 operations an hour)
    "60018": ParameterError,  # no such channel or argument
}


def ws_error(code: str, msg: str) -> OKXAPIError:
    """The exception of an ``error`` event that answers a subscription."""
    return _WS_CODE_TO_ERROR.get(code, OKXAPIError)(code, msg, UPGRADE_STATUS)


def login_refused(code: str, msg: str) -> LoginRefusedError:
    """The exception of an ``error`` event that answers a login (every code refuses it)."""
    return LoginRefusedError(code, msg, UPGRADE_STATUS)


class Channel(Generic[W, T]):
    """One push channel: its name, decoder, converter, and the key updates conflate on.

    Attributes:
        name: the ``channel`` of its arguments (``grid-positions``...).
        decoder: decodes any frame of a connection subscribed to it.
        convert: a wire row to its public result (raises ValueError/ArithmeticError).
        key: the thing an update is about: two updates of one key are versions of it.
        algo_id: the grid a result is about.
        same: whether two rows are one version (a push and a REST read of it).
        arg_error: the error of a refused argument, and the grid it concerns ("" if none).
    """

    __slots__ = ("algo_id", "arg_error", "convert", "decoder", "key", "name", "same")

    def __init__(
        self,
        name: str,
        wire: type[W],
        convert: Callable[[W], T],
        key: Callable[[T], Hashable],
        algo_id: Callable[[T], str],
        same: Callable[[T, T], bool],
        arg_error: Callable[[Mapping[str, str], str, str], tuple[str, OKXError]],
    ) -> None:
        self.name = name
        self.decoder: msgspec.json.Decoder[Message[W]] = msgspec.json.Decoder(Message[wire])  # type: ignore[valid-type]
        self.convert = convert
        self.key = key
        self.algo_id = algo_id
        self.same = same
        self.arg_error = arg_error

    def __repr__(self) -> str:
        return f"Channel({self.name!r})"


def _position_key(p: GridPosition) -> Hashable:
    # A grid in long/short mode has a row per side.
    return (p.algo_id, p.pos_side)


def _same_position(held: GridPosition, new: GridPosition) -> bool:
    return msgspec.structs.replace(new, p_time=held.p_time) == held


def _position_arg_error(arg: Mapping[str, str], code: str, msg: str) -> tuple[str, OKXError]:
    algo_id = arg.get("algoId", "")
    if code == "60018":
        # "doesn't exist": the same error a REST read of an unknown grid raises.
        return algo_id, GridNotFoundError(code, msg, UPGRADE_STATUS)
    return algo_id, ws_error(code, msg)


def _grid_arg_error(arg: Mapping[str, str], code: str, msg: str) -> tuple[str, OKXError]:
    return arg.get("algoId", ""), ws_error(code, msg)


POSITIONS: Final[Channel[WirePosition, GridPosition]] = Channel(
    "grid-positions",
    WirePosition,
    position_from_wire,
    _position_key,
    lambda p: p.algo_id,
    _same_position,
    _position_arg_error,
)
GRIDS: Final[Channel[WireGridOrder, GridOrder]] = Channel(
    "grid-orders-contract",
    WireGridOrder,
    grid_order_from_wire,
    lambda g: g.algo_id,
    lambda g: g.algo_id,
    lambda held, new: held == new,
    _grid_arg_error,
)
