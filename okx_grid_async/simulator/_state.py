"""The simulated exchange: accounts, contract grids, mark prices and close orders, without I/O.

Business rules raise `SimError` carrying OKX's code and message; the
server turns it into OKX's envelope. The position fields follow the model
of ``_rows``.

A limit close must fit the instrument's grid (``sz`` at least ``minSz`` and a
multiple of ``lotSz``, ``px`` a multiple of ``tickSz``), as OKX requires.
A close fills at the mark (market close) or at the order price (limit close),
adds to ``realized_pnl``, and a grid whose position reaches 0 this way becomes
``"stopped"``: it leaves orders-algo-pending for orders-algo-history.

OKX does not say which request answers which of its grid codes; the simulator
gives each one plausible cause, so that a client's handling can be tested:

- 51289 "Bot configuration does not exist": any request naming a grid in state
  ``"starting"`` (its configuration is not in place yet);
- 51291 "This Bot does not exist or has been stopped": any request naming a grid
  removed with `SimExchange.remove_grid()` (OKX forgets old stopped bots);
- 51345 "Policy type is not grid policy": any request naming an algo order
  from `SimExchange.add_non_grid_algo()`;
- 51288 "We are stopping the Bot": close-position on a grid in state ``"stopping"``;
- 51341 "Position closing not allowed": close-position on a grid whose
  ``close_allowed`` is false.

Another user's id, in any of these cases, is 51293 as an unknown id is.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Final

from okx_grid_async.simulator._instruments import (
    LISTED_INST_IDS,
    InstrumentSpec,
    instrument_spec,
)
from okx_grid_async.simulator._model import (
    DIRECTIONS,
    GRID_STATES,
    CloseOrder,
    DecimalLike,
    Direction,
    GridState,
    SimAccount,
    SimError,
    SimGrid,
    param_error,
    to_decimal,
)

__all__ = ["SimExchange"]

# Marks move in steps of about one basis point and keep six significant digits.
_WALK_BPS: Final = 10
_MARK_DIGITS: Final = 6


class SimExchange:
    """Accounts and grids, and the rules of the grid endpoints.

    ``rng`` drives ids and price moves, so a seeded ``rng`` makes both
    reproducible; ``now_ms`` gives the exchange's wall clock in Unix ms.

    Every change this class makes to a grid (a close, a fill, a mark price, a
    state, a removal, a new grid) is told to the listeners of `add_listener()`,
    once per change, after it is complete; each change but a new grid's also
    moves the grid's ``u_time`` forward (strictly, even within one millisecond).
    A field a test sets directly on a `SimGrid` is not told.
    """

    __slots__ = ("_accounts", "_grids", "_last_id", "_listeners", "_not_grids", "_now_ms", "_rng")

    def __init__(self, rng: random.Random, now_ms: Callable[[], int]) -> None:
        self._rng = rng
        self._now_ms = now_ms
        self._accounts: dict[str, SimAccount] = {}
        self._grids: dict[str, SimGrid] = {}
        self._listeners: list[Callable[[SimGrid], None]] = []
        # Algo ids of a user that name no grid to act on: (user_id, code, msg) they answer.
        self._not_grids: dict[str, tuple[str, str, str]] = {}
        # Ids grow like OKX's snowflake ids, so "newest first" is "largest first".
        self._last_id = rng.randrange(5 * 10**17, 6 * 10**17)

    def add_listener(self, listener: Callable[[SimGrid], None]) -> None:
        """Call ``listener(grid)`` after each change to a grid (see the class); never raise."""
        self._listeners.append(listener)

    def _notify(self, grid: SimGrid) -> None:
        for listener in self._listeners:
            listener(grid)

    def _changed(self, grid: SimGrid) -> None:
        """Stamp ``grid``'s change (a new, larger ``u_time``) and tell the listeners."""
        grid.u_time = max(self._now_ms(), grid.u_time + 1)
        self._notify(grid)

    def _next_id(self) -> str:
        self._last_id += self._rng.randint(1, 4096)
        return str(self._last_id)

    def _new_algo_id(self, user_id: str, algo_id: str | None) -> str:
        """``algo_id``, or a new id above every earlier one, for an algo order of ``user_id``.

        Raises:
            ValueError: On an unknown user, or a non-numeric or taken ``algo_id``.
        """
        if not self.has_user(user_id):
            raise ValueError(f"unknown user_id {user_id!r}: add_account first")
        if algo_id is None:
            return self._next_id()
        if not algo_id.isascii() or not algo_id.isdigit():
            raise ValueError(f"algo_id must be a numeric string, got {algo_id!r}")
        if algo_id in self._grids or algo_id in self._not_grids:
            raise ValueError(f"algo_id {algo_id!r} already exists")
        self._last_id = max(self._last_id, int(algo_id))
        return algo_id

    # -- accounts -----------------------------------------------------------

    def add_account(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        passphrase: str | None = None,
        user_id: str | None = None,
        *,
        label: str = "simulator",
        demo: bool | None = None,
    ) -> SimAccount:
        """Register an API key; each value left as ``None`` is generated at random.

        Raises:
            ValueError: If ``api_key`` is already registered or a value is empty.
        """
        account = SimAccount(
            api_key=str(uuid.uuid4()) if api_key is None else api_key,
            secret_key=secrets.token_hex(16).upper() if secret_key is None else secret_key,
            passphrase=secrets.token_urlsafe(12) if passphrase is None else passphrase,
            user_id=str(10**14 + secrets.randbelow(9 * 10**14)) if user_id is None else user_id,
            label=label,
            demo=demo,
        )
        if not all((account.api_key, account.secret_key, account.passphrase, account.user_id)):
            raise ValueError("api_key, secret_key, passphrase and user_id must not be empty")
        if account.api_key in self._accounts:
            raise ValueError(f"api_key {account.api_key!r} is already registered")
        self._accounts[account.api_key] = account
        return account

    def add_api_key(
        self, user_id: str, *, label: str = "simulator", demo: bool | None = None
    ) -> SimAccount:
        """Register a new API key, random credentials, of the existing user ``user_id``.

        Raises:
            ValueError: If no key of ``user_id`` is registered yet.
        """
        if not self.has_user(user_id):
            raise ValueError(f"unknown user_id {user_id!r}: add_account first")
        return self.add_account(user_id=user_id, label=label, demo=demo)

    def account(self, api_key: str) -> SimAccount | None:
        """The account of ``api_key``, or ``None`` if the key is unknown."""
        return self._accounts.get(api_key)

    def has_user(self, user_id: str) -> bool:
        """Whether some registered key belongs to ``user_id``."""
        return any(a.user_id == user_id for a in self._accounts.values())

    # -- grids --------------------------------------------------------------

    def add_grid(
        self,
        user_id: str,
        algo_id: str | None = None,
        inst_id: str = "BTC-USDT-SWAP",
        state: GridState = "no_close_position",
        pos: DecimalLike = Decimal(35),
        avg_px: DecimalLike = Decimal("29215.01"),
        mark_px: DecimalLike = Decimal("29213.9"),
        lever: DecimalLike = Decimal(5),
        *,
        algo_cl_ord_id: str = "",
        direction: Direction | None = None,
        grid_num: int = 10,
        min_px: DecimalLike | None = None,
        max_px: DecimalLike | None = None,
        investment: DecimalLike | None = None,
        close_allowed: bool = True,
    ) -> SimGrid:
        """Create a contract grid of ``user_id`` and return it.

        ``algo_id`` defaults to a new 18-digit id larger than every earlier
        one. ``direction`` defaults to the sign of ``pos``; ``min_px`` and
        ``max_px`` to 10% around ``avg_px``; ``investment`` to the margin of
        the position at ``avg_px``. ``close_allowed`` false makes
        close-position answer 51341.

        Raises:
            ValueError: On an unknown user, a duplicate or non-numeric
                ``algo_id``, an unknown ``state`` or ``direction``, a
                non-positive ``lever``/price, or a non-numeric value.
        """
        _check_state(state)
        if direction is not None and direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
        pos_d, avg_d, mark_d, lever_d = map(to_decimal, (pos, avg_px, mark_px, lever))
        if lever_d <= 0 or avg_d <= 0 or mark_d <= 0:
            raise ValueError("lever, avg_px and mark_px must be positive")
        algo_id = self._new_algo_id(user_id, algo_id)
        now = self._now_ms()
        grid = SimGrid(
            algo_id=algo_id,
            user_id=user_id,
            inst_id=inst_id,
            state=state,
            pos=pos_d,
            avg_px=avg_d,
            mark_px=mark_d,
            lever=lever_d,
            direction=direction or ("short" if pos_d < 0 else "long"),
            grid_num=grid_num,
            min_px=to_decimal(min_px) if min_px is not None else _round_price(avg_d * 9 / 10),
            max_px=to_decimal(max_px) if max_px is not None else _round_price(avg_d * 11 / 10),
            investment=Decimal(0),
            c_time=now,
            u_time=now,
            algo_cl_ord_id=algo_cl_ord_id,
            close_allowed=close_allowed,
        )
        grid.investment = (
            to_decimal(investment)
            if investment is not None
            else _round_price(abs(pos_d) * grid.ct_val * avg_d / lever_d)
        )
        self._grids[algo_id] = grid
        self._notify(grid)
        return grid

    def add_demo_grids(self, user_id: str, count: int) -> list[SimGrid]:
        """Add ``count`` varied grids to ``user_id``: mostly stopped with a position kept.

        One in ten is running and one in ten already stopped (closed), so
        both pending and history listings have rows.
        """
        instruments = (
            ("BTC-USDT-SWAP", Decimal("65000")),
            ("ETH-USDT-SWAP", Decimal("3400")),
            ("SOL-USDT-SWAP", Decimal("150")),
        )
        grids = []
        for i in range(count):
            inst_id, base_px = instruments[i % len(instruments)]
            avg_px = _round_price(base_px * (1 + Decimal(self._rng.randint(-300, 300)) / 10_000))
            mark_px = _round_price(avg_px * (1 + Decimal(self._rng.randint(-100, 100)) / 10_000))
            size = Decimal(self._rng.randint(1, 100))
            state: GridState = (
                "running" if i % 10 == 3 else "stopped" if i % 10 == 7 else "no_close_position"
            )
            grids.append(
                self.add_grid(
                    user_id,
                    inst_id=inst_id,
                    state=state,
                    pos=Decimal(0) if state == "stopped" else size if i % 2 == 0 else -size,
                    avg_px=avg_px,
                    mark_px=mark_px,
                    lever=Decimal(self._rng.choice((2, 3, 5, 10))),
                    direction="long" if i % 2 == 0 else "short",
                )
            )
        return grids

    def grid(self, algo_id: str) -> SimGrid:
        """The grid ``algo_id``, whoever owns it.

        Raises:
            KeyError: If there is no such grid.
        """
        try:
            return self._grids[algo_id]
        except KeyError:
            raise KeyError(f"no grid with algo_id {algo_id!r}") from None

    def owned_grid(self, user_id: str, algo_id: str) -> SimGrid:
        """The grid ``algo_id`` as ``user_id`` may see it.

        Raises:
            SimError: 51289 the grid is ``"starting"``; 51291 it was removed;
                51345 the id is an algo order that is not a grid; 51293 no
                such id, or another user's.
        """
        grid = self._grids.get(algo_id)
        if grid is not None and grid.user_id == user_id:
            if grid.state == "starting":
                raise SimError("51289", "Bot configuration does not exist. Please try again later")
            return grid
        owner, code, msg = self._not_grids.get(algo_id, ("", "", ""))
        if owner == user_id:
            raise SimError(code, msg)
        raise SimError("51293", "Algo order does not exist")

    def set_grid_state(self, algo_id: str, state: GridState) -> SimGrid:
        """Put the grid ``algo_id`` in ``state``, as OKX would move it.

        Nothing else changes: a grid set ``"stopped"`` keeps its position.

        Raises:
            KeyError: If there is no such grid.
            ValueError: If ``state`` is not a `GridState`.
        """
        grid = self.grid(algo_id)
        _check_state(state)
        grid.state = state
        self._changed(grid)
        return grid

    def remove_grid(self, algo_id: str) -> SimGrid:
        """Forget the grid ``algo_id``, as OKX forgets old stopped bots, and return it.

        It leaves both listings; its owner's requests naming it answer 51291
        "This Bot does not exist or has been stopped"; its id is never reused.

        Raises:
            KeyError: If there is no such grid.
        """
        grid = self.grid(algo_id)
        del self._grids[algo_id]
        self._not_grids[algo_id] = (
            grid.user_id,
            "51291",
            "This Bot does not exist or has been stopped",
        )
        self._changed(grid)
        return grid

    def add_non_grid_algo(self, user_id: str, algo_id: str | None = None) -> str:
        """Register an algo order of ``user_id`` that is not a grid, and return its id.

        A grid request naming it answers 51345 "Policy type is not grid
        policy". ``algo_id`` defaults to a new id, as in `add_grid()`.

        Raises:
            ValueError: On an unknown user, or a non-numeric or taken ``algo_id``.
        """
        algo_id = self._new_algo_id(user_id, algo_id)
        self._not_grids[algo_id] = (user_id, "51345", "Policy type is not grid policy")
        return algo_id

    def list_grids(
        self,
        user_id: str,
        *,
        history: bool,
        algo_id: str | None = None,
        inst_id: str | None = None,
        inst_type: str | None = None,
        after: int | None = None,
        before: int | None = None,
        limit: int = 100,
        cursor_cycle: bool = False,
    ) -> list[SimGrid]:
        """``user_id``'s grids, newest (largest algoId) first, as OKX pages them.

        ``history`` selects stopped grids, otherwise every other state.
        ``after`` keeps algoIds below it (older), ``before`` those above it
        (newer). With only ``before``, the ``limit`` rows nearest the cursor
        are returned, so paging towards newer rows leaves no gap.

        ``cursor_cycle`` (the CURSOR_CYCLE fault) answers the first page
        again for an ``after`` at the second page's last row: a client that
        follows ``after`` cursors sees pages ending A, B, A, B... It needs
        more than ``limit`` rows; otherwise the pages are the usual ones.
        """

        def page(after: int | None) -> list[SimGrid]:
            rows = sorted(
                (
                    g
                    for g in self._grids.values()
                    if g.user_id == user_id
                    and (g.state == "stopped") == history
                    and (algo_id is None or g.algo_id == algo_id)
                    and (inst_id is None or g.inst_id == inst_id)
                    and (inst_type is None or g.inst_type == inst_type)
                    and (after is None or int(g.algo_id) < after)
                    and (before is None or int(g.algo_id) > before)
                ),
                key=lambda g: int(g.algo_id),
                reverse=True,
            )
            if before is not None and after is None:
                return rows[-limit:]
            return rows[:limit]

        if cursor_cycle and after is not None and before is None:
            first = page(None)
            second = page(int(first[-1].algo_id)) if first else []
            if second and int(second[-1].algo_id) == after:
                return first
        return page(after)

    def user_grids(self, user_id: str) -> list[SimGrid]:
        """Every grid of ``user_id``, in any state, newest (largest algoId) first."""
        grids = (g for g in self._grids.values() if g.user_id == user_id)
        return sorted(grids, key=lambda g: int(g.algo_id), reverse=True)

    def instruments(self) -> list[InstrumentSpec]:
        """The listed instruments and every instrument a grid trades, by instId."""
        inst_ids = {*LISTED_INST_IDS, *(g.inst_id for g in self._grids.values())}
        return [instrument_spec(inst_id) for inst_id in sorted(inst_ids)]

    # -- prices -------------------------------------------------------------

    def set_mark_price(self, algo_id: str, px: DecimalLike) -> None:
        """Move the grid's mark price, filling its close order if the new mark reaches it.

        Raises:
            KeyError: If there is no such grid.
            ValueError: If ``px`` is not a positive number.
        """
        grid = self.grid(algo_id)
        mark = to_decimal(px)
        if mark <= 0:
            raise ValueError(f"mark price must be positive, got {px!r}")
        grid.mark_px = mark
        self._fill_if_reached(grid)
        self._changed(grid)

    def walk_prices(self) -> None:
        """Move the mark of every grid not stopped by a random step of up to 10 basis points."""
        for grid in self._grids.values():
            if grid.state == "stopped":
                continue
            step = Decimal(self._rng.randint(-_WALK_BPS, _WALK_BPS)) / 10_000
            grid.mark_px = _round_price(grid.mark_px * (1 + step))
            self._fill_if_reached(grid)
            self._changed(grid)

    # -- close-position and cancel-close-order ------------------------------

    def _closable(self, user_id: str, algo_id: str) -> SimGrid:
        grid = self.owned_grid(user_id, algo_id)
        if grid.state == "stopping":
            raise SimError(
                "51288", "We are stopping the Bot. Please do not click it multiple times"
            )
        if grid.state != "no_close_position":
            raise SimError(
                "51059", "Strategy for the current state does not support this operation"
            )
        if not grid.close_allowed:
            raise SimError("51341", "Position closing not allowed")
        if grid.pending_order is not None:
            raise SimError("51342", "Closing order already exists. Please try again later")
        if grid.pos == 0:
            raise SimError("51058", "No available position for this algo order")
        return grid

    def market_close(self, user_id: str, algo_id: str) -> SimGrid:
        """Close the whole position at the mark; the grid becomes ``"stopped"``.

        Raises:
            SimError: As `owned_grid()`; then 51288 ``"stopping"``, 51059 any
                other state but ``no_close_position``, 51341 closing not
                allowed, 51342 a close order is live, 51058 no position.
        """
        grid = self._closable(user_id, algo_id)
        self._reduce(grid, abs(grid.pos), grid.mark_px)
        grid.state = "stopped"
        grid.close_calls += 1
        self._changed(grid)
        return grid

    def place_close_order(self, user_id: str, algo_id: str, sz: Decimal, px: Decimal) -> CloseOrder:
        """Place a limit order closing ``sz`` contracts at ``px``, filled once the mark reaches it.

        A long's order fills when the mark is at or above ``px``, a short's
        at or below; an order already reached fills at once.

        Raises:
            SimError: As `market_close()`, and 51000 if ``sz`` is not in
                ``(0, |pos|]``, ``px`` is not positive, or either is off the
                instrument's grid (``sz`` below ``minSz`` or not a multiple of
                ``lotSz``, ``px`` not a multiple of ``tickSz``).
        """
        grid = self._closable(user_id, algo_id)
        if not 0 < sz <= abs(grid.pos):
            raise param_error("sz")
        if px <= 0:
            raise param_error("px")
        off_grid = instrument_spec(grid.inst_id).off_grid(sz, px)
        if off_grid is not None:
            raise param_error(off_grid)
        order = CloseOrder(ord_id=self._next_id(), sz=sz, px=px, c_time=self._now_ms())
        grid.orders.append(order)
        grid.close_calls += 1
        self._fill_if_reached(grid)
        self._changed(grid)
        return order

    def cancel_close_order(self, user_id: str, algo_id: str, ord_id: str) -> CloseOrder:
        """Cancel the grid's live close order ``ord_id``.

        Raises:
            SimError: As `owned_grid()`; 51603 "Order does not exist" if the
                grid has no live order ``ord_id`` (never placed, filled, or
                already canceled).
        """
        grid = self.owned_grid(user_id, algo_id)
        order = grid.order(ord_id)
        if order is None or order.state != "live":
            raise SimError("51603", "Order does not exist")
        order.state = "canceled"
        self._changed(grid)
        return order

    def _fill_if_reached(self, grid: SimGrid) -> None:
        order = grid.pending_order
        if order is None or grid.pos == 0:
            return
        reached = grid.mark_px >= order.px if grid.pos > 0 else grid.mark_px <= order.px
        if not reached:
            return
        order.state = "filled"
        self._reduce(grid, min(order.sz, abs(grid.pos)), order.px)
        if grid.pos == 0:
            grid.state = "stopped"

    def _reduce(self, grid: SimGrid, qty: Decimal, price: Decimal) -> None:
        sign = 1 if grid.pos > 0 else -1
        grid.realized_pnl += (price - grid.avg_px) * qty * sign * grid.ct_val
        grid.pos -= sign * qty


def _check_state(state: str) -> None:
    """Raises ValueError unless ``state`` is a `GridState`."""
    if state not in GRID_STATES:
        raise ValueError(f"state must be one of {sorted(GRID_STATES)}, got {state!r}")


def _round_price(px: Decimal) -> Decimal:
    """``px`` kept to six significant digits, like an exchange's tick size would."""
    if px == 0:
        return px
    return px.quantize(Decimal(10) ** (px.adjusted() - _MARK_DIGITS + 1))
