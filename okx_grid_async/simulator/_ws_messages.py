"""The business WebSocket's messages: op messages parsed, channel args read, answers written.

No I/O: ``_ws`` feeds text in and sends what comes out. A message that cannot
be taken as a whole raises `BadRequestError` (60012); an arg that names no
channel is ``None`` from `subscription_of()` (60018, that arg alone).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from okx_grid_async.simulator._model import SimGrid
from okx_grid_async.simulator._rows import algo_order_row, position_row

__all__ = [
    "MAX_MESSAGE_BYTES",
    "ORDERS_CHANNEL",
    "POSITIONS_CHANNEL",
    "BadRequestError",
    "Subscription",
    "encode",
    "login_fields",
    "no_such_channel",
    "parse_op",
    "subscription_of",
]

POSITIONS_CHANNEL: Final = "grid-positions"
ORDERS_CHANNEL: Final = "grid-orders-contract"
MAX_MESSAGE_BYTES: Final = 65536
_OPS: Final = frozenset({"login", "subscribe", "unsubscribe"})
_INST_TYPES: Final = frozenset({"SWAP", "FUTURES", "ANY"})
_REQUEST_ID_RE: Final = re.compile(r"[A-Za-z0-9]{1,32}")
_LOGIN_FIELDS: Final = ("apiKey", "passphrase", "timestamp", "sign")


class BadRequestError(Exception):
    """A message answered 60012 as a whole: nothing in it was done.

    ``req_id`` is the message's ``id``, once it is known to be valid.
    """

    def __init__(self, reason: str, req_id: str | None = None) -> None:
        super().__init__(reason)
        self.req_id = req_id


@dataclass(frozen=True, slots=True)
class Subscription:
    """One subscribed arg: what it matches and how its pushes are labelled."""

    channel: str
    inst_type: str  # grid-orders-contract only ("" otherwise)
    inst_id: str | None
    algo_id: str | None

    def matches(self, grid: SimGrid) -> bool:
        """Whether a change of ``grid`` (of this connection's user) is pushed on this arg."""
        if self.channel == POSITIONS_CHANNEL:
            return grid.algo_id == self.algo_id
        return (
            self.inst_type in ("ANY", grid.inst_type)
            and self.inst_id in (None, grid.inst_id)
            and self.algo_id in (None, grid.algo_id)
        )

    def row(self, grid: SimGrid) -> dict[str, str]:
        """``grid``'s row on this channel, without ``pTime``."""
        return position_row(grid) if self.channel == POSITIONS_CHANNEL else algo_order_row(grid)

    def push_arg(self, uid: str) -> dict[str, str]:
        """The ``arg`` of this subscription's pushes to user ``uid``."""
        arg = {"channel": self.channel, "uid": uid}
        if self.channel == ORDERS_CHANNEL:
            arg["instType"] = self.inst_type
            if self.inst_id is not None:
                arg["instId"] = self.inst_id
        if self.algo_id is not None:
            arg["algoId"] = self.algo_id
        return arg


def subscription_of(arg: Mapping[str, object]) -> Subscription | None:
    """The subscription ``arg`` asks for, or ``None`` if it names no channel OKX has."""
    channel = arg.get("channel")
    inst_id = arg.get("instId")
    algo_id = arg.get("algoId")
    if not isinstance(inst_id, str | None) or not isinstance(algo_id, str | None):
        return None
    if channel == POSITIONS_CHANNEL:
        return Subscription(channel, "", None, algo_id) if algo_id else None
    inst_type = arg.get("instType")
    if channel == ORDERS_CHANNEL and isinstance(inst_type, str) and inst_type in _INST_TYPES:
        return Subscription(channel, inst_type, inst_id, algo_id)
    return None


def no_such_channel(arg: Mapping[str, object]) -> str:
    """OKX's 60018 message, naming the arg: ``...channel:grid-positions,algoId:1 doesn't exist.``"""
    rest = "".join(f",{key}:{value}" for key, value in arg.items() if key != "channel")
    return f"Wrong URL or channel:{arg.get('channel', '')}{rest} doesn't exist."


def encode(message: Mapping[str, object]) -> str:
    """``message`` as a compact JSON text frame."""
    return json.dumps(message, separators=(",", ":"))


def login_fields(
    args: Sequence[Mapping[str, object]], req_id: str | None
) -> tuple[str, str, str, str]:
    """``(apiKey, passphrase, timestamp, sign)`` of a login's args (a missing one is ``""``).

    Raises:
        BadRequestError: If there is not exactly one arg, or a field is not a string.
    """
    if len(args) != 1:
        raise BadRequestError("login takes one arg", req_id)
    api_key, passphrase, timestamp, signature = (args[0].get(n, "") for n in _LOGIN_FIELDS)
    if not (
        isinstance(api_key, str)
        and isinstance(passphrase, str)
        and isinstance(timestamp, str)
        and isinstance(signature, str)
    ):
        raise BadRequestError("login fields must be strings", req_id)
    return api_key, passphrase, timestamp, signature


def parse_op(text: str) -> tuple[str | None, str, list[Mapping[str, object]]]:
    """``(id, op, args)`` of an op message.

    Raises:
        BadRequestError: If it is over 64 KB, or not a JSON object with a valid ``id``, a known
            ``op`` and a non-empty list of objects as ``args``.
    """
    if len(text.encode()) > MAX_MESSAGE_BYTES:
        raise BadRequestError("the message is over 64 KB")
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        raise BadRequestError("not JSON") from None
    if not isinstance(message, dict):
        raise BadRequestError("not a JSON object")
    req_id = message.get("id")
    if req_id is not None and (
        not isinstance(req_id, str) or _REQUEST_ID_RE.fullmatch(req_id) is None
    ):
        raise BadRequestError("id must be 1 to 32 letters or digits")
    op = message.get("op")
    if op not in _OPS:
        raise BadRequestError("op must be login, subscribe or unsubscribe", req_id)
    args = message.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
        raise BadRequestError("args must be a non-empty list of objects", req_id)
    return req_id, op, args
