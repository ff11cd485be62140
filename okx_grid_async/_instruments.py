"""Instruments: a contract's size and price grid, rounding onto it, and the cache of them.

OKX takes an order's size in multiples of ``lotSz`` contracts, at least
``minSz``, and its price in multiples of ``tickSz``; it refuses anything else
(51000). `Instrument` carries those steps and rounds onto them;
`check_within_position` and `check_on_grid` refuse a partial close before it is
sent; `InstrumentCache` keeps each instrument for an hour.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

import msgspec

from ._clock import Clock, SystemClock
from ._constants import (
    INSTRUMENT_CACHE_TTL,
)
from ._errors import InvalidArgumentError, MalformedResponseError
from ._validation import check_positive_decimal

__all__ = [
    "INST_TYPES",
    "Instrument",
    "InstrumentCache",
    "OrderSide",
    "check_inst_id",
    "check_inst_type",
    "check_on_grid",
    "check_within_position",
    "inst_type_of",
    "instrument_cache",
]

OrderSide = Literal["buy", "sell"]
"""An order's side: a long is closed by a sell, a short by a buy."""

INST_TYPES: Final = ("SWAP", "FUTURES")
_INST_ID: Final = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)+")


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    """A perpetual swap or futures contract (``GET /api/v5/public/instruments``).

    ``lot_sz`` (the size step) and ``min_sz`` are in contracts, ``tick_sz`` (the
    price step) in the quote currency; all three are always present. ``ct_val``
    is one contract's value in ``ct_val_ccy`` (``0.01`` BTC for
    ``BTC-USDT-SWAP``). Other numbers are ``None`` where OKX sent ``""``; times
    are timezone-aware UTC.
    """

    inst_type: str
    inst_id: str
    uly: str
    inst_family: str
    settle_ccy: str
    ct_val: Decimal | None
    ct_mult: Decimal | None
    ct_val_ccy: str
    ct_type: str
    lot_sz: Decimal
    min_sz: Decimal
    tick_sz: Decimal
    max_lmt_sz: Decimal | None
    max_mkt_sz: Decimal | None
    lever: Decimal | None
    state: str
    list_time: datetime | None
    exp_time: datetime | None

    def round_size(self, sz: Decimal | int | str) -> Decimal:
        """``sz`` contracts rounded down to a multiple of ``lot_sz``: never more than asked.

        Raises:
            TypeError: ``sz`` is a float, a bool or not a number type.
            InvalidArgumentError: ``sz`` is not a finite number > 0, or rounds down below
                ``min_sz`` (no order that small exists).
        """
        size = check_positive_decimal(sz, "sz")
        rounded = _round(size, self.lot_sz, "sz", up=False)
        if rounded < self.min_sz:
            raise InvalidArgumentError(
                f"sz {_text(size)} rounds down to {_text(rounded)}, below {self.inst_id}'s "
                f"minimum size minSz {_text(self.min_sz)}"
            )
        return rounded

    def round_price(self, px: Decimal | int | str, *, side: OrderSide) -> Decimal:
        """``px`` rounded onto the ``tick_sz`` grid, toward safety for a limit order of ``side``.

        A ``"sell"`` (closing a long) rounds up: it never sells cheaper than asked.
        A ``"buy"`` (closing a short) rounds down: it never buys dearer than asked.
        Either way the order may fill a tick later than at ``px``, never at a worse price.

        Raises:
            TypeError: ``px`` is a float, a bool or not a number type.
            ValueError: ``side`` is not ``"buy"`` or ``"sell"``.
            InvalidArgumentError: ``px`` is not a finite number > 0, or a buy below one tick.
        """
        if side not in ("buy", "sell"):
            raise ValueError(f'side must be "buy" or "sell", not {side!r}')
        price = check_positive_decimal(px, "px")
        rounded = _round(price, self.tick_sz, "px", up=side == "sell")
        if rounded <= 0:
            raise InvalidArgumentError(
                f"px {_text(price)} is below {self.inst_id}'s tick size tickSz "
                f"{_text(self.tick_sz)}: a buy cannot be rounded down onto the grid"
            )
        return rounded


def inst_type_of(inst_id: str) -> str:
    """``SWAP`` for a perpetual (an id ending in ``-SWAP``), ``FUTURES`` otherwise."""
    return "SWAP" if inst_id.endswith("-SWAP") else "FUTURES"


def check_inst_id(value: object) -> str:
    """``value`` if it looks like an OKX instrument id (``BTC-USDT-SWAP``, ``BTC-USD-250328``).

    Raises:
        TypeError: it is not a str.
        InvalidArgumentError: it is not upper-case letters and digits joined by ``-``.
    """
    if not isinstance(value, str):
        raise TypeError(f"inst_id must be a str, not {type(value).__name__}")
    if not _INST_ID.fullmatch(value):
        raise InvalidArgumentError(
            f"inst_id must be an OKX instrument id such as 'BTC-USDT-SWAP', not {value!r}"
        )
    return value


def check_inst_type(value: object) -> str:
    """``value`` if it is ``SWAP`` or ``FUTURES`` (the contracts a grid trades).

    Raises:
        TypeError: it is not a str.
        InvalidArgumentError: it is another string.
    """
    if not isinstance(value, str):
        raise TypeError(f"inst_type must be a str, not {type(value).__name__}")
    if value not in INST_TYPES:
        raise InvalidArgumentError(f"inst_type must be 'SWAP' or 'FUTURES', not {value!r}")
    return value


def check_within_position(sz: Decimal, position: Decimal) -> None:
    """Refuse closing ``sz`` contracts of a position of ``position`` (signed) contracts.

    Raises:
        InvalidArgumentError: ``sz`` is above ``|position|``.
    """
    if sz > abs(position):
        raise InvalidArgumentError(
            f"sz {_text(sz)} is above the grid's position of {_text(abs(position))} contracts"
        )


def check_on_grid(instrument: Instrument, sz: Decimal, px: Decimal, *, side: OrderSide) -> None:
    """Refuse a limit order of ``sz`` contracts at ``px`` that OKX would refuse for its grid.

    Raises:
        InvalidArgumentError: ``sz`` below ``min_sz`` or not a multiple of ``lot_sz``, or
            ``px`` not a multiple of ``tick_sz``; the message names the value and the step.
    """
    inst_id = instrument.inst_id
    if sz < instrument.min_sz:
        raise InvalidArgumentError(
            f"sz {_text(sz)} is below {inst_id}'s minimum size minSz {_text(instrument.min_sz)}"
        )
    if not _is_multiple(sz, instrument.lot_sz):
        raise InvalidArgumentError(
            f"sz {_text(sz)} is not a multiple of {inst_id}'s lot size lotSz "
            f"{_text(instrument.lot_sz)} (Instrument.round_size() gives "
            f"{_text(_round(sz, instrument.lot_sz, 'sz', up=False))})"
        )
    if not _is_multiple(px, instrument.tick_sz):
        raise InvalidArgumentError(
            f"px {_text(px)} is not a multiple of {inst_id}'s tick size tickSz "
            f"{_text(instrument.tick_sz)} (Instrument.round_price(side={side!r}) gives "
            f"{_text(_round(px, instrument.tick_sz, 'px', up=side == 'sell'))})"
        )


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    try:
        return value % step == 0  # Decimal's remainder is exact, or raises
    except InvalidOperation:
        return False


def _round(value: Decimal, step: Decimal, name: str, *, up: bool) -> Decimal:
    """``value`` (> 0) rounded down, or up, to a multiple of ``step``.

    A value already on the grid comes back unchanged; a rounded one has ``step``'s decimals.
    """
    try:
        remainder = value % step
        if not remainder:
            return value
        return (value - remainder + (step if up else 0)).quantize(step)
    except InvalidOperation:
        raise InvalidArgumentError(
            f"{name} {_text(value)} is too large to round to a multiple of {_text(step)}"
        ) from None


def _text(value: Decimal) -> str:
    return format(value, "f")


# ---------------------------------------------------------------- the cache


class InstrumentCache:
    """Instruments by (base URL, instId), each kept ``ttl`` seconds of ``clock``.

    Concurrent reads of one instrument share one request and its outcome; an
    error is not kept. Pacing the reads is the caller's (`GridClient` reads
    through a process-wide limiter of OKX's 20 per 2 s per IP and instType).
    """

    __slots__ = ("_clock", "_entries", "_pending", "ttl")

    def __init__(self, clock: Clock, ttl: float = INSTRUMENT_CACHE_TTL) -> None:
        self._clock = clock
        self.ttl = ttl
        self._entries: dict[tuple[str, str], tuple[float, Instrument]] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[Instrument]] = {}

    async def get(
        self,
        base_url: str,
        inst_id: str,
        read: Callable[[], Awaitable[Instrument]],
    ) -> Instrument:
        """The kept instrument, else the one ``read()`` returns, then kept.

        A call that finds a read of the same instrument in flight waits for it
        and shares its outcome, error included.

        Raises:
            MalformedResponseError: the row read is another instrument's.
            Whatever ``read`` raises.
        """
        key = (base_url, inst_id)
        loop = asyncio.get_running_loop()
        while True:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > self._clock.monotonic():
                return entry[1]
            pending = self._pending.get(key)
            if pending is None or pending.done() or pending.get_loop() is not loop:
                break
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
                # The call that was reading was cancelled, not this one: read again.
        future: asyncio.Future[Instrument] = loop.create_future()
        self._pending[key] = future
        try:
            instrument = await read()
            if instrument.inst_id != inst_id:
                raise MalformedResponseError(
                    f"asked for instrument {inst_id}, got {instrument.inst_id}", 200, ""
                )
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            if self._pending.get(key) is future:
                del self._pending[key]
        self._entries[key] = (self._clock.monotonic() + self.ttl, instrument)
        future.set_result(instrument)
        return instrument

    def clear(self) -> None:
        """Forget every instrument kept (reads in flight are kept when they end)."""
        self._entries.clear()

    def __repr__(self) -> str:
        return f"InstrumentCache(ttl={self.ttl}, instruments={len(self._entries)})"


_SHARED: InstrumentCache | None = None


def instrument_cache(clock: Clock | None) -> InstrumentCache:
    """The process-wide cache for the system clock; a cache of its own for another clock.

    A fake clock's times mean nothing to other clients, so they share nothing.
    """
    global _SHARED
    if clock is not None and type(clock) is not SystemClock:
        return InstrumentCache(clock)
    if _SHARED is None:
        _SHARED = InstrumentCache(SystemClock())
    return _SHARED
