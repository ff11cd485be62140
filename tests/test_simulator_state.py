"""The simulator's pure parts: window counting, the limiter, the exchange's rules and numbers."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from okx_grid_async.simulator import SimAccount, max_in_window
from okx_grid_async.simulator._faults import FaultKind, FaultPlan
from okx_grid_async.simulator._limits import (
    Arrival,
    ArrivalLog,
    PathLimits,
    SlidingWindowLimiter,
)
from okx_grid_async.simulator._model import SimError, fmt
from okx_grid_async.simulator._rows import algo_order_row, position_row
from okx_grid_async.simulator._state import SimExchange

NOW_MS = 1_700_000_000_000


def make_exchange(seed: int = 1) -> tuple[SimExchange, SimAccount]:
    exchange = SimExchange(random.Random(seed), lambda: NOW_MS)
    return exchange, exchange.add_account(user_id="u1")


# -- max_in_window --------------------------------------------------------------


@pytest.mark.parametrize(
    ("times", "window", "expected"),
    [
        ([], 1.0, 0),
        ([5.0], 1.0, 1),
        ([0.0, 0.0, 0.0], 1.0, 3),
        ([0.0, 1.0], 1.0, 1),  # half-open: t + window is outside
        ([0.0, 0.999], 1.0, 2),
        ([0.0, 0.5, 1.0, 1.5], 1.0, 2),
        ([0.0, 0.1, 0.2, 5.0, 5.1], 1.0, 3),
        ([3.0, 0.0, 2.5, 0.2, 2.9], 1.0, 3),  # unsorted input
        ([float(i) / 10 for i in range(40)], 2.0, 20),  # 10/s for 4 s: 20 per 2 s
        ([0.0] * 20 + [1.99] + [2.0] * 20, 2.0, 21),
    ],
)
def test_max_in_window(times: list[float], window: float, expected: int) -> None:
    assert max_in_window(times, window) == expected


@pytest.mark.parametrize("window", [0.0, -1.0])
def test_max_in_window_rejects_empty_window(window: float) -> None:
    with pytest.raises(ValueError, match="window"):
        max_in_window([1.0], window)


# -- the limiter and the arrival log --------------------------------------------


def test_limiter_is_a_sliding_window_over_accepted_arrivals() -> None:
    limiter = SlidingWindowLimiter(3, 1.0)
    assert [limiter.try_acquire("k", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.try_acquire("other", 0.0)  # keys are independent
    assert not limiter.try_acquire("k", 0.999)
    assert limiter.try_acquire("k", 1.0)  # the arrivals at 0.0 left the window at 1.0
    assert limiter.try_acquire("k", 1.0)
    assert limiter.try_acquire("k", 1.0)
    assert not limiter.try_acquire("k", 1.5)
    limiter.reset()
    assert limiter.try_acquire("k", 1.5)


def test_limiter_accepted_times_never_exceed_the_rate_in_any_window() -> None:
    rng = random.Random(3)
    limiter = SlidingWindowLimiter(20, 2.0)
    times = sorted(rng.uniform(0, 10) for _ in range(500))
    accepted = [t for t in times if limiter.try_acquire("k", t)]
    assert max_in_window(accepted, 2.0) == 20


def test_path_limits_give_each_path_its_own_window_per_user() -> None:
    limits = PathLimits((2, 1.0), {"/slow": (1, 2.0)})
    assert (limits.limit("/slow"), limits.limit("/other")) == ((1, 2.0), (2, 1.0))
    assert [limits.try_acquire("u", "/slow", 0.0) for _ in range(2)] == [True, False]
    assert limits.try_acquire("v", "/slow", 0.0)  # another user's budget
    assert [limits.try_acquire("u", "/a", 0.0) for _ in range(3)] == [True, True, False]
    assert limits.try_acquire("u", "/b", 0.0)  # paths under the default are still apart
    assert limits.try_acquire("u", "/a", 1.0)
    assert not limits.try_acquire("u", "/slow", 1.9)
    assert limits.try_acquire("u", "/slow", 2.0)
    with pytest.raises(ValueError, match="max_rate"):
        PathLimits((2, 1.0), {"/x": (0, 1.0)})


@pytest.mark.parametrize(("max_rate", "period"), [(0, 1.0), (1, 0.0)])
def test_limiter_rejects_bad_settings(max_rate: int, period: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        SlidingWindowLimiter(max_rate, period)


def test_arrival_log_keeps_arrival_order_and_filters() -> None:
    log = ArrivalLog()
    first, second = log.begin(), log.begin()
    log.finish(second, Arrival(2.0, "u2", "/b", "GET", 200, "0"))
    assert log.snapshot() == [Arrival(2.0, "u2", "/b", "GET", 200, "0")]  # first still in flight
    log.finish(first, Arrival(1.0, "u1", "/a", "POST", 429, "50011"))
    assert [a.t for a in log.snapshot()] == [1.0, 2.0]
    assert [a.t for a in log.snapshot(user_id="u1")] == [1.0]
    assert [a.t for a in log.snapshot(path="/b")] == [2.0]
    in_flight = log.begin()
    log.clear()
    log.finish(in_flight, Arrival(3.0, "u1", "/a", "GET", 200, "0"))
    assert log.snapshot() == []


def test_arrival_log_limit_keeps_newest() -> None:
    log = ArrivalLog(limit=2)
    for i in range(3):
        log.finish(log.begin(), Arrival(float(i), None, "/a", "GET", 401, "50113"))
    assert [a.t for a in log.snapshot()] == [1.0, 2.0]


def test_fault_plan_order_paths_and_counts() -> None:
    plan = FaultPlan()
    plan.inject(FaultKind.HTTP_503, "/a", 2, 0.0)
    plan.inject(FaultKind.LATENCY, None, 1, 0.5)
    assert plan.peek("/public", private=False) is None  # no path: private endpoints only
    fault = plan.peek("/a", private=True)
    assert fault is not None
    assert fault.kind is FaultKind.HTTP_503
    plan.consume(fault)
    plan.consume(fault)
    latency = plan.peek("/a", private=True)
    assert latency is not None
    assert latency.kind is FaultKind.LATENCY
    plan.clear()
    assert plan.peek("/a", private=True) is None
    with pytest.raises(ValueError, match="count"):
        plan.inject(FaultKind.LATENCY, None, 0, 0.0)
    with pytest.raises(ValueError, match="delay"):
        plan.inject(FaultKind.LATENCY, None, 1, -1.0)


# -- accounts and grids -----------------------------------------------------------


def test_account_repr_hides_secrets_and_defaults_are_random() -> None:
    exchange, _ = make_exchange()
    a, b = exchange.add_account(), exchange.add_account()
    assert a.secret_key not in repr(a)
    assert a.passphrase not in repr(a)
    assert a.api_key in repr(a)
    assert len({a.api_key, b.api_key}) == 2
    assert a.user_id.isdigit()
    with pytest.raises(ValueError, match="already registered"):
        exchange.add_account(api_key=a.api_key)
    with pytest.raises(ValueError, match="empty"):
        exchange.add_account(passphrase="")


def test_add_grid_ids_validation_and_defaults() -> None:
    exchange, account = make_exchange()
    ids = [exchange.add_grid(account.user_id).algo_id for _ in range(5)]
    assert all(len(i) == 18 and i.isdigit() for i in ids)
    assert [int(i) for i in ids] == sorted(int(i) for i in ids)
    assert len(set(ids)) == 5
    explicit = exchange.add_grid(account.user_id, algo_id="900000000000000000")
    assert int(exchange.add_grid(account.user_id).algo_id) > int(explicit.algo_id)
    short = exchange.add_grid(account.user_id, pos="-3")
    assert short.direction == "short"
    assert short.investment == Decimal("175.290")  # 3 * 0.01 * 29215.01 / 5, six digits
    with pytest.raises(ValueError, match="already exists"):
        exchange.add_grid(account.user_id, algo_id=explicit.algo_id)
    with pytest.raises(ValueError, match="numeric"):
        exchange.add_grid(account.user_id, algo_id="abc")
    with pytest.raises(ValueError, match="unknown user_id"):
        exchange.add_grid("nobody")
    with pytest.raises(ValueError, match="state"):
        exchange.add_grid(account.user_id, state="paused")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        exchange.add_grid(account.user_id, lever=0)
    with pytest.raises(ValueError, match="number"):
        exchange.add_grid(account.user_id, pos="lots")
    with pytest.raises(KeyError):
        exchange.grid("1")


def test_position_row_numbers_are_consistent() -> None:
    exchange, account = make_exchange()
    grid = exchange.add_grid(account.user_id)  # 35 contracts long, BTC ctVal 0.01
    row = position_row(grid)
    notional = Decimal(35) * Decimal("0.01") * Decimal("29213.9")
    upl = (Decimal("29213.9") - Decimal("29215.01")) * 35 * Decimal("0.01")
    assert row["notionalUsd"] == fmt(notional) == "10224.865"
    assert Decimal(row["imr"]) == notional / 5
    assert Decimal(row["mmr"]) == notional * Decimal("0.004")
    assert Decimal(row["upl"]) == upl
    assert Decimal(row["uplRatio"]) == upl / (notional / 5)
    assert Decimal(row["liqPx"]) < Decimal(row["avgPx"])  # a long liquidates below entry
    assert row["pos"] == "35"
    assert row["ccy"] == "USDT"
    assert row["instType"] == "SWAP"
    grid.pos = Decimal(0)
    empty = position_row(grid)
    assert empty["pos"] == "0"
    assert {empty[k] for k in ("avgPx", "liqPx", "mgnRatio", "upl", "imr", "adl")} == {""}
    assert empty["markPx"] == "29213.9"


def test_algo_order_row_tracks_realised_pnl() -> None:
    exchange, account = make_exchange()
    grid = exchange.add_grid(
        account.user_id, inst_id="SOL-USDT-SWAP", pos=10, avg_px=100, mark_px=110, lever=2
    )
    exchange.market_close(account.user_id, grid.algo_id)
    row = algo_order_row(grid)
    assert row["state"] == "stopped"
    assert row["totalPnl"] == "100"  # (110 - 100) * 10 contracts * ctVal 1
    assert row["stopType"] == "2"
    assert row["direction"] == "long"


def test_fmt() -> None:
    assert fmt(Decimal("1.500")) == "1.5"
    assert fmt(Decimal("-0.0")) == "0"
    assert fmt(Decimal("1E+3")) == "1000"
    assert fmt(Decimal("0.00000001")) == "0.00000001"


# -- closing -----------------------------------------------------------------------


def test_limit_close_fills_when_the_mark_reaches_it_for_long_and_short() -> None:
    exchange, account = make_exchange()
    sol = "SOL-USDT-SWAP"
    long = exchange.add_grid(account.user_id, inst_id=sol, pos=10, mark_px=100, avg_px=100)
    short = exchange.add_grid(account.user_id, inst_id=sol, pos=-10, mark_px=100, avg_px=100)
    exchange.place_close_order(account.user_id, long.algo_id, Decimal(4), Decimal(105))
    exchange.place_close_order(account.user_id, short.algo_id, Decimal(4), Decimal(95))
    for mark in (104, 96):
        exchange.set_mark_price(long.algo_id, mark)
        exchange.set_mark_price(short.algo_id, mark)
    assert (long.pos, short.pos) == (Decimal(10), Decimal(-10))
    exchange.set_mark_price(long.algo_id, 105)
    exchange.set_mark_price(short.algo_id, 95)
    assert (long.pos, short.pos) == (Decimal(6), Decimal(-6))
    assert long.realized_pnl == short.realized_pnl == 20  # 5 * 4 contracts, ctVal 1
    assert long.state == short.state == "no_close_position"


def test_limit_close_already_reached_fills_at_once_and_emptying_stops_the_grid() -> None:
    exchange, account = make_exchange()
    grid = exchange.add_grid(account.user_id, pos=3, mark_px=100, avg_px=90)
    order = exchange.place_close_order(account.user_id, grid.algo_id, Decimal(3), Decimal(99))
    assert order.state == "filled"
    assert grid.pos == 0
    assert grid.state == "stopped"


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"state": "running"}, "51059"),
        ({"state": "stopping"}, "51288"),
        ({"close_allowed": False}, "51341"),
        ({"state": "stopped"}, "51059"),
        ({"pos": 0}, "51058"),
    ],
)
def test_close_refusals(setup: dict[str, object], code: str) -> None:
    exchange, account = make_exchange()
    grid = exchange.add_grid(account.user_id, **setup)  # type: ignore[arg-type]
    with pytest.raises(SimError) as info:
        exchange.market_close(account.user_id, grid.algo_id)
    assert info.value.code == code
    assert grid.close_calls == 0


def test_close_refuses_other_users_grid_and_second_order() -> None:
    exchange, account = make_exchange()
    other = exchange.add_account(user_id="u2")
    grid = exchange.add_grid(account.user_id)
    with pytest.raises(SimError, match="51293"):
        exchange.market_close(other.user_id, grid.algo_id)
    exchange.place_close_order(account.user_id, grid.algo_id, Decimal(1), Decimal(99999))
    with pytest.raises(SimError, match="51342"):
        exchange.market_close(account.user_id, grid.algo_id)
    fresh = exchange.add_grid(account.user_id, pos=2)
    for sz in (Decimal(0), Decimal(3)):
        with pytest.raises(SimError, match="51000"):
            exchange.place_close_order(account.user_id, fresh.algo_id, sz, Decimal(1))
    assert fresh.close_calls == 0


def test_walk_prices_is_deterministic_under_a_seed_and_skips_stopped() -> None:
    marks = []
    for _ in range(2):
        exchange, account = make_exchange(seed=42)
        grid = exchange.add_grid(account.user_id)
        stopped = exchange.add_grid(account.user_id, state="stopped", pos=0)
        for _ in range(50):
            exchange.walk_prices()
        marks.append(grid.mark_px)
        assert stopped.mark_px == Decimal("29213.9")
    assert marks[0] == marks[1] != Decimal("29213.9")


def test_walk_prices_fills_a_reached_order() -> None:
    exchange, account = make_exchange(seed=5)
    grid = exchange.add_grid(account.user_id, pos=10, mark_px=100, avg_px=100)
    exchange.place_close_order(account.user_id, grid.algo_id, Decimal(10), Decimal("100.2"))
    for _ in range(10_000):
        exchange.walk_prices()
        if grid.pos == 0:
            break
    assert grid.pos == 0
    assert grid.mark_px >= Decimal("100.2")


def test_list_grids_pages_newest_first() -> None:
    exchange, account = make_exchange()
    other = exchange.add_account(user_id="u2")
    ids = [int(exchange.add_grid(account.user_id).algo_id) for _ in range(7)]
    exchange.add_grid(other.user_id)
    exchange.add_grid(account.user_id, state="stopped", pos=0)
    newest_first = sorted(ids, reverse=True)

    def page(**kw: int) -> list[int]:
        grids = exchange.list_grids(account.user_id, history=False, **kw)  # type: ignore[arg-type]
        return [int(g.algo_id) for g in grids]

    assert page() == newest_first
    assert page(limit=3) == newest_first[:3]
    assert page(limit=3, after=newest_first[2]) == newest_first[3:6]
    assert page(limit=3, before=newest_first[3]) == newest_first[:3]
    assert page(limit=2, before=newest_first[4]) == newest_first[2:4]  # nearest the cursor
    assert page(after=newest_first[1], before=newest_first[5]) == newest_first[2:5]
    assert len(exchange.list_grids(account.user_id, history=True)) == 1


def test_list_grids_cursor_cycle_leads_the_second_page_back_to_the_first() -> None:
    exchange, account = make_exchange()
    ids = [int(exchange.add_grid(account.user_id).algo_id) for _ in range(7)]
    newest = sorted(ids, reverse=True)

    def page(after: int | None) -> list[int]:
        grids = exchange.list_grids(
            account.user_id, history=False, after=after, limit=3, cursor_cycle=True
        )
        return [int(g.algo_id) for g in grids]

    assert page(None) == newest[:3]
    assert page(newest[2]) == newest[3:6]
    assert page(newest[5]) == newest[:3]  # B leads back to the page ending A
    assert page(newest[4]) == newest[5:]  # other cursors page as usual
