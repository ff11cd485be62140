"""Typed results, and the one place where OKX's JSON becomes them.

OKX sends numbers as strings and an absent number as ``""``. Each answer is
decoded once by msgspec into a private *wire* Struct of strings (C speed,
unknown fields ignored, wrong types rejected); the public Struct is then built
with ``Decimal`` numbers (``""`` becomes ``None``) and UTC ``datetime`` times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Final, Generic, TypeAlias, TypeVar

import msgspec

from ._constants import RAW_TEXT_LIMIT
from ._errors import HTTPStatusError, MalformedResponseError, api_error
from ._instruments import Instrument

__all__ = [
    "UNCONVERTIBLE",
    "CancelCloseOrderResult",
    "ClosePositionResult",
    "GridOrder",
    "GridPosition",
    "ResultParser",
    "WireGridOrder",
    "WirePosition",
    "cancel_result_parser",
    "close_result_parser",
    "grid_order_from_wire",
    "grid_order_parser",
    "instrument_parser",
    "position_from_wire",
    "position_parser",
    "server_time_parser",
    "uid_parser",
]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

W = TypeVar("W")
R = TypeVar("R")


class ConversionError(ValueError):
    """A field's text is not the number or time it should be."""


def _dec(text: str, field: str) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConversionError(f"{field}: {text[:40]!r} is not a decimal number") from None
    if not value.is_finite():
        raise ConversionError(f"{field}: {text[:40]!r} is not a finite number")
    return value


def _int(text: str, field: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ConversionError(f"{field}: {text[:40]!r} is not a whole number") from None


def _ms(text: str, field: str) -> datetime | None:
    if not text:
        return None
    try:
        return _EPOCH + timedelta(milliseconds=int(text))
    except (ValueError, OverflowError):
        raise ConversionError(f"{field}: {text[:40]!r} is not a Unix time in ms") from None


# ---------------------------------------------------------------- public results


class GridPosition(msgspec.Struct, frozen=True, kw_only=True):
    """A contract grid's position (``GET /api/v5/tradingBot/grid/positions``).

    Numbers are ``Decimal``, ``None`` where OKX sent ``""``; ``pos`` is in
    contracts; times are timezone-aware UTC. ``p_time`` is when OKX pushed the
    row (`GridClient.watch_positions`); ``None`` for a row read over REST.
    """

    algo_id: str
    algo_cl_ord_id: str
    inst_type: str
    inst_id: str
    c_time: datetime | None
    u_time: datetime | None
    avg_px: Decimal | None
    ccy: str
    lever: Decimal | None
    liq_px: Decimal | None
    pos_side: str
    pos: Decimal | None
    mgn_mode: str
    mgn_ratio: Decimal | None
    imr: Decimal | None
    mmr: Decimal | None
    upl: Decimal | None
    upl_ratio: Decimal | None
    last: Decimal | None
    notional_usd: Decimal | None
    adl: Decimal | None
    mark_px: Decimal | None
    p_time: datetime | None = None

    @property
    def is_empty(self) -> bool:
        """True when the grid holds no position (``pos`` absent or zero)."""
        return self.pos is None or self.pos == 0


class ClosePositionResult(msgspec.Struct, frozen=True, kw_only=True):
    """OKX's acknowledgement of ``close-position``.

    ``ord_id`` is the limit close order's id for a partial close, ``""`` for a market close.
    """

    algo_id: str
    ord_id: str
    algo_cl_ord_id: str
    tag: str


class CancelCloseOrderResult(msgspec.Struct, frozen=True, kw_only=True):
    """OKX's acknowledgement of ``cancel-close-order``."""

    algo_id: str
    ord_id: str
    algo_cl_ord_id: str
    tag: str


class GridOrder(msgspec.Struct, frozen=True, kw_only=True):
    """A grid algo order from ``orders-algo-pending`` or ``orders-algo-history``.

    ``state`` is OKX's: ``running``, ``no_close_position`` (stopped, position
    kept: what ``close_position`` acts on), ``stopping``, ``stopped``, ...
    """

    algo_id: str
    algo_cl_ord_id: str
    inst_type: str
    inst_id: str
    algo_ord_type: str
    state: str
    c_time: datetime | None
    u_time: datetime | None
    lever: Decimal | None
    direction: str
    grid_num: int | None
    max_px: Decimal | None
    min_px: Decimal | None
    investment: Decimal | None
    total_pnl: Decimal | None
    pnl_ratio: Decimal | None
    sz: Decimal | None
    stop_type: str
    tag: str


# ---------------------------------------------------------------- wire shapes


class _WirePosition(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    algo_id: str
    algo_cl_ord_id: str = ""
    inst_type: str = ""
    inst_id: str = ""
    c_time: str = ""
    u_time: str = ""
    avg_px: str = ""
    ccy: str = ""
    lever: str = ""
    liq_px: str = ""
    pos_side: str = ""
    pos: str = ""
    mgn_mode: str = ""
    mgn_ratio: str = ""
    imr: str = ""
    mmr: str = ""
    upl: str = ""
    upl_ratio: str = ""
    last: str = ""
    notional_usd: str = ""
    adl: str = ""
    mark_px: str = ""
    p_time: str = ""


class _WireOrderAck(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    algo_id: str
    ord_id: str = ""
    algo_cl_ord_id: str = ""
    tag: str = ""


class _WireGridOrder(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    algo_id: str
    algo_cl_ord_id: str = ""
    inst_type: str = ""
    inst_id: str = ""
    algo_ord_type: str = ""
    state: str = ""
    c_time: str = ""
    u_time: str = ""
    lever: str = ""
    direction: str = ""
    grid_num: str = ""
    max_px: str = ""
    min_px: str = ""
    investment: str = ""
    total_pnl: str = ""
    pnl_ratio: str = ""
    sz: str = ""
    stop_type: str = ""
    tag: str = ""


class _WireInstrument(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    inst_id: str
    inst_type: str = ""
    uly: str = ""
    inst_family: str = ""
    settle_ccy: str = ""
    ct_val: str = ""
    ct_mult: str = ""
    ct_val_ccy: str = ""
    ct_type: str = ""
    lot_sz: str = ""
    min_sz: str = ""
    tick_sz: str = ""
    max_lmt_sz: str = ""
    max_mkt_sz: str = ""
    lever: str = ""
    state: str = ""
    list_time: str = ""
    exp_time: str = ""


class _WireTime(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    ts: str


class _WireAccountConfig(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    uid: str


class _Envelope(msgspec.Struct, Generic[W]):
    code: str
    data: list[W]
    msg: str = ""


class EnvelopeHead(msgspec.Struct):
    """Only ``code`` and ``msg``: read when the full envelope does not validate."""

    code: str | int
    msg: str = ""


HEAD_DECODER: Final = msgspec.json.Decoder(EnvelopeHead)

# What decoding a hostile body can raise besides msgspec.ValidationError: msgspec's
# DecodeError and UnicodeDecodeError are ValueErrors; JSON nested deeper than the
# interpreter's recursion limit raises RecursionError. Each means "not an answer".
_UNREADABLE: Final = (ValueError, RecursionError)
# And what converting a decoded row can raise: ConversionError (a ValueError) for a
# field that is not its number or time, ArithmeticError from Decimal or datetime.
_UNCONVERTIBLE: Final = (ValueError, ArithmeticError)


class ResultParser(Generic[W, R]):
    """Decodes one endpoint's envelope and converts its rows; built once per endpoint."""

    __slots__ = ("_convert", "_one_row", "decoder")

    def __init__(self, wire: type[W], convert: Callable[[W], R], *, one_row: bool = False) -> None:
        self.decoder: msgspec.json.Decoder[_Envelope[W]] = msgspec.json.Decoder(_Envelope[wire])  # type: ignore[valid-type]
        self._convert = convert
        self._one_row = one_row

    def parse(self, raw: bytes, http_status: int) -> list[R]:
        """The rows of one answer.

        Nothing else escapes, whatever the body: a decoding failure of any kind (not
        JSON, not UTF-8, nested too deeply) is one of these.

        Raises:
            OKXAPIError: (a subclass chosen by code) when OKX's code is not "0".
            HTTPStatusError: an HTTP error status whose body is not OKX's envelope.
            MalformedResponseError: anything else that is not the expected envelope and rows.
        """
        try:
            envelope = self.decoder.decode(raw)
        except msgspec.ValidationError as exc:
            head = _head(raw)
            if head is not None and str(head.code) != "0":
                raise api_error(str(head.code), head.msg, http_status) from None
            if head is None and http_status >= 400:
                raise HTTPStatusError(http_status, _text(raw)) from None
            raise MalformedResponseError(str(exc), http_status, _text(raw)) from None
        except _UNREADABLE as exc:
            if http_status >= 400:
                raise HTTPStatusError(http_status, _text(raw)) from None
            reason = "not JSON" if isinstance(exc, msgspec.DecodeError) else _unreadable(exc)
            raise MalformedResponseError(reason, http_status, _text(raw)) from None
        if envelope.code != "0":
            raise api_error(envelope.code, envelope.msg, http_status)
        if self._one_row and len(envelope.data) != 1:
            reason = f"expected one row, got {len(envelope.data)}"
            raise MalformedResponseError(reason, http_status, _text(raw))
        convert = self._convert
        try:
            return [convert(row) for row in envelope.data]
        except _UNCONVERTIBLE as exc:
            raise MalformedResponseError(str(exc), http_status, _text(raw)) from None


def _head(raw: bytes) -> EnvelopeHead | None:
    try:
        return HEAD_DECODER.decode(raw)
    except _UNREADABLE:
        return None


def _unreadable(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply to decode"
    return f"not readable as JSON ({type(exc).__name__}: {exc})"


def _text(raw: bytes) -> str:
    return raw[: RAW_TEXT_LIMIT * 4].decode(errors="replace")


def _position(w: _WirePosition) -> GridPosition:
    return GridPosition(
        algo_id=w.algo_id,
        algo_cl_ord_id=w.algo_cl_ord_id,
        inst_type=w.inst_type,
        inst_id=w.inst_id,
        c_time=_ms(w.c_time, "cTime"),
        u_time=_ms(w.u_time, "uTime"),
        avg_px=_dec(w.avg_px, "avgPx"),
        ccy=w.ccy,
        lever=_dec(w.lever, "lever"),
        liq_px=_dec(w.liq_px, "liqPx"),
        pos_side=w.pos_side,
        pos=_dec(w.pos, "pos"),
        mgn_mode=w.mgn_mode,
        mgn_ratio=_dec(w.mgn_ratio, "mgnRatio"),
        imr=_dec(w.imr, "imr"),
        mmr=_dec(w.mmr, "mmr"),
        upl=_dec(w.upl, "upl"),
        upl_ratio=_dec(w.upl_ratio, "uplRatio"),
        last=_dec(w.last, "last"),
        notional_usd=_dec(w.notional_usd, "notionalUsd"),
        adl=_dec(w.adl, "adl"),
        mark_px=_dec(w.mark_px, "markPx"),
        p_time=_ms(w.p_time, "pTime"),
    )


def _close_ack(w: _WireOrderAck) -> ClosePositionResult:
    return ClosePositionResult(
        algo_id=w.algo_id, ord_id=w.ord_id, algo_cl_ord_id=w.algo_cl_ord_id, tag=w.tag
    )


def _cancel_ack(w: _WireOrderAck) -> CancelCloseOrderResult:
    return CancelCloseOrderResult(
        algo_id=w.algo_id, ord_id=w.ord_id, algo_cl_ord_id=w.algo_cl_ord_id, tag=w.tag
    )


def _grid_order(w: _WireGridOrder) -> GridOrder:
    return GridOrder(
        algo_id=w.algo_id,
        algo_cl_ord_id=w.algo_cl_ord_id,
        inst_type=w.inst_type,
        inst_id=w.inst_id,
        algo_ord_type=w.algo_ord_type,
        state=w.state,
        c_time=_ms(w.c_time, "cTime"),
        u_time=_ms(w.u_time, "uTime"),
        lever=_dec(w.lever, "lever"),
        direction=w.direction,
        grid_num=_int(w.grid_num, "gridNum"),
        max_px=_dec(w.max_px, "maxPx"),
        min_px=_dec(w.min_px, "minPx"),
        investment=_dec(w.investment, "investment"),
        total_pnl=_dec(w.total_pnl, "totalPnl"),
        pnl_ratio=_dec(w.pnl_ratio, "pnlRatio"),
        sz=_dec(w.sz, "sz"),
        stop_type=w.stop_type,
        tag=w.tag,
    )


def _uid(w: _WireAccountConfig) -> str:
    if not w.uid.isdigit() or not w.uid.isascii():
        raise ConversionError(f"uid: {w.uid[:40]!r} is not a User ID")
    return w.uid


def _step(text: str, field: str) -> Decimal:
    """A grid step (lotSz, minSz, tickSz): required and > 0, or nothing can be checked."""
    value = _dec(text, field)
    if value is None or value <= 0:
        raise ConversionError(f"{field}: {text[:40]!r} is not a number > 0")
    return value


def _instrument(w: _WireInstrument) -> Instrument:
    return Instrument(
        inst_type=w.inst_type,
        inst_id=w.inst_id,
        uly=w.uly,
        inst_family=w.inst_family,
        settle_ccy=w.settle_ccy,
        ct_val=_dec(w.ct_val, "ctVal"),
        ct_mult=_dec(w.ct_mult, "ctMult"),
        ct_val_ccy=w.ct_val_ccy,
        ct_type=w.ct_type,
        lot_sz=_step(w.lot_sz, "lotSz"),
        min_sz=_step(w.min_sz, "minSz"),
        tick_sz=_step(w.tick_sz, "tickSz"),
        max_lmt_sz=_dec(w.max_lmt_sz, "maxLmtSz"),
        max_mkt_sz=_dec(w.max_mkt_sz, "maxMktSz"),
        lever=_dec(w.lever, "lever"),
        state=w.state,
        list_time=_ms(w.list_time, "listTime"),
        exp_time=_ms(w.exp_time, "expTime"),
    )


def _server_ms(w: _WireTime) -> int:
    try:
        return int(w.ts)
    except ValueError:
        raise ConversionError(f"ts: {w.ts[:40]!r} is not a Unix time in ms") from None


position_parser: Final = ResultParser(_WirePosition, _position)
close_result_parser: Final = ResultParser(_WireOrderAck, _close_ack, one_row=True)
cancel_result_parser: Final = ResultParser(_WireOrderAck, _cancel_ack, one_row=True)
grid_order_parser: Final = ResultParser(_WireGridOrder, _grid_order)
instrument_parser: Final = ResultParser(_WireInstrument, _instrument, one_row=True)
server_time_parser: Final = ResultParser(_WireTime, _server_ms, one_row=True)
uid_parser: Final = ResultParser(_WireAccountConfig, _uid, one_row=True)

# The WebSocket pushes (okx_grid_async._ws) carry the REST rows plus pTime: they are
# decoded into the same wire shapes and converted by the same functions.
WirePosition: TypeAlias = _WirePosition
WireGridOrder: TypeAlias = _WireGridOrder
position_from_wire: Final = _position
grid_order_from_wire: Final = _grid_order
UNCONVERTIBLE: Final = _UNCONVERTIBLE
