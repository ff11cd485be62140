"""The simulated exchange's things: accounts, contract grids, close orders, and OKX's errors.

Plain data without rules (the rules are `SimExchange`'s, in ``_state``): every
number is a `decimal.Decimal`, prices in the quote currency, ``pos`` in
contracts (negative for a short), times in Unix milliseconds. `SimError`
carries OKX's code and message; the server turns it into OKX's envelope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Final, Literal, get_args

from okx_grid_async.simulator._instruments import inst_type_of, instrument_spec

__all__ = [
    "DIRECTIONS",
    "GRID_STATES",
    "CloseOrder",
    "DecimalLike",
    "Direction",
    "GridState",
    "OrderState",
    "SimAccount",
    "SimError",
    "SimGrid",
    "fmt",
    "param_empty",
    "param_error",
    "to_decimal",
]

GridState = Literal["starting", "running", "no_close_position", "stopping", "stopped"]
"""OKX's grid ``state``; ``no_close_position`` (stopped, position kept) is the one close acts on."""
Direction = Literal["long", "short", "neutral"]
OrderState = Literal["live", "filled", "canceled"]

GRID_STATES: Final[frozenset[str]] = frozenset(get_args(GridState))
DIRECTIONS: Final[frozenset[str]] = frozenset(get_args(Direction))

DecimalLike = Decimal | int | str


class SimError(Exception):
    """A request the exchange refuses: OKX's ``code`` and ``msg`` for the envelope."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


def param_empty(name: str) -> SimError:
    """OKX's 50014 for a required parameter that is missing or empty."""
    return SimError("50014", f"Parameter {name} can not be empty")


def param_error(name: str) -> SimError:
    """OKX's 51000 for a parameter whose value is not acceptable."""
    return SimError("51000", f"Parameter {name} error")


def to_decimal(value: DecimalLike) -> Decimal:
    """``value`` as a finite Decimal.

    Raises:
        ValueError: If it is not a finite number.
    """
    try:
        result = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def fmt(value: Decimal) -> str:
    """OKX's string for a number: plain notation, no trailing zeros, never ``-0``."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


@dataclass(frozen=True, slots=True)
class SimAccount:
    """An API key of a simulated user. Several keys may share one ``user_id`` (and its budget).

    The secret key and passphrase are left out of ``repr`` so they never reach logs.

    Attributes:
        label: The key's name, as ``GET /api/v5/account/config`` answers it.
        demo: The key's environment: ``True`` a demo-trading key, taken only
            with ``x-simulated-trading: 1``; ``False`` a live key, taken only
            without it; ``None`` (the default) taken in both, which OKX never
            does but which lets one key serve both kinds of test.
    """

    api_key: str
    secret_key: str = field(repr=False)
    passphrase: str = field(repr=False)
    user_id: str
    label: str = "simulator"
    demo: bool | None = None


@dataclass(eq=False, slots=True)
class CloseOrder:
    """A limit order placed by a partial close-position: closes ``sz`` contracts at ``px``."""

    ord_id: str
    sz: Decimal
    px: Decimal
    c_time: int
    state: OrderState = "live"


@dataclass(eq=False, slots=True)
class SimGrid:
    """A simulated contract grid. Mutable: tests may change any field directly.

    Prices are in the quote currency, ``pos`` in contracts (negative for a
    short), times in Unix milliseconds.
    """

    algo_id: str
    user_id: str
    inst_id: str
    state: GridState
    pos: Decimal
    avg_px: Decimal
    mark_px: Decimal
    lever: Decimal
    direction: Direction
    grid_num: int
    min_px: Decimal
    max_px: Decimal
    investment: Decimal
    c_time: int
    u_time: int
    algo_cl_ord_id: str = ""
    realized_pnl: Decimal = Decimal(0)
    close_calls: int = 0
    """Close-position requests executed for this grid (market closes and placed orders)."""
    close_allowed: bool = True
    """False: close-position answers 51341 "Position closing not allowed"."""
    orders: list[CloseOrder] = field(default_factory=list)

    @property
    def ct_val(self) -> Decimal:
        """Contract size in the base currency (the instrument's ``ctVal``)."""
        return instrument_spec(self.inst_id).ct_val

    @property
    def ccy(self) -> str:
        """Margin currency: the quote currency of the instrument."""
        parts = self.inst_id.split("-")
        return parts[1] if len(parts) > 1 else parts[0]

    @property
    def inst_type(self) -> str:
        """``SWAP`` for perpetuals, ``FUTURES`` otherwise."""
        return inst_type_of(self.inst_id)

    @property
    def upl(self) -> Decimal:
        """Unrealised profit and loss in the margin currency."""
        return (self.mark_px - self.avg_px) * self.pos * self.ct_val

    @property
    def pending_order(self) -> CloseOrder | None:
        """The live close order, if one is waiting for the mark to reach its price."""
        return next((o for o in self.orders if o.state == "live"), None)

    def order(self, ord_id: str) -> CloseOrder | None:
        """The close order ``ord_id`` of this grid, in any state."""
        return next((o for o in self.orders if o.ord_id == ord_id), None)
