"""decoding (issue 7): the seed positions answer decoded N times, msgspec vs json.loads by hand.

Both sides produce the same information from ``tests/data/positions.json``
(OKX's documented example): this client's ``position_parser.parse(raw, 200)``
(msgspec into a wire Struct, then a :class:`~okx_grid_async.GridPosition` with
``Decimal`` numbers and UTC datetimes), against ``json.loads`` plus a dict built by
hand with the same conversions (``""`` to ``None``, numbers to ``Decimal``, Unix
ms to datetimes) and the same ``code`` check. Each side decodes it N times, in
rounds taken in turns; the figure is the median round's microseconds per decode.
Two more rows show the JSON parsing alone, without the conversions.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from okx_grid_async._models import position_parser

from .report import median, print_table, print_title

__all__ = ["main"]

N: Final = 100_000
ROUNDS: Final = 10
SEED: Final = Path(__file__).resolve().parent.parent / "tests" / "data" / "positions.json"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT: Final = ("algoId", "algoClOrdId", "instType", "instId", "ccy", "posSide", "mgnMode")
_TIMES: Final = ("cTime", "uTime")
_NUMBERS: Final = (
    "avgPx",
    "lever",
    "liqPx",
    "pos",
    "mgnRatio",
    "imr",
    "mmr",
    "upl",
    "uplRatio",
    "last",
    "notionalUsd",
    "adl",
    "markPx",
)


def decode_by_hand(raw: bytes) -> list[dict[str, Any]]:
    """``json.loads``, the ``code`` check, then each row's fields converted one by one."""
    envelope = json.loads(raw)
    if envelope["code"] != "0":
        raise ValueError(f"OKX error {envelope['code']}: {envelope['msg']}")
    rows = []
    for item in envelope["data"]:
        row: dict[str, Any] = {name: item.get(name, "") for name in _TEXT}
        for name in _TIMES:
            text = item.get(name, "")
            row[name] = _EPOCH + timedelta(milliseconds=int(text)) if text else None
        for name in _NUMBERS:
            text = item.get(name, "")
            row[name] = Decimal(text) if text else None
        rows.append(row)
    return rows


def _time_per_op(decoders: Sequence[Callable[[bytes], object]], raw: bytes) -> list[float]:
    """Each decoder's median over ROUNDS of microseconds per decode (N // ROUNDS per round).

    The decoders take turns round by round, so a change in the machine's load
    falls on all of them alike.
    """
    per_round = N // ROUNDS
    rounds: list[list[float]] = [[] for _ in decoders]
    for _ in range(ROUNDS):
        for decode, times in zip(decoders, rounds, strict=True):
            started = time.perf_counter()
            for _ in range(per_round):
                decode(raw)
            times.append((time.perf_counter() - started) / per_round * 1e6)
    return [median(times) for times in rounds]


def _parse(raw: bytes) -> object:
    return position_parser.parse(raw, 200)


def main(argv: Sequence[str] = ()) -> None:
    """Run the benchmark and print its table."""
    del argv
    print_title(
        "decoding",
        f"{SEED.name} ({SEED.stat().st_size} bytes) decoded {N:,} times by each decoder, "
        f"in {ROUNDS} interleaved rounds (median round shown)",
    )
    raw = SEED.read_bytes()
    ours = position_parser.parse(raw, 200)[0]
    by_hand = decode_by_hand(raw)[0]
    assert ours.pos == by_hand["pos"]
    assert ours.c_time == by_hand["cTime"]
    msgspec_us, hand_us, wire_us, loads_us = _time_per_op(
        (_parse, decode_by_hand, position_parser.decoder.decode, json.loads), raw
    )
    print_table(
        ("decoder", "µs per decode", "vs json.loads by hand"),
        [
            [
                "msgspec: position_parser.parse(raw, 200)",
                msgspec_us,
                f"{msgspec_us / hand_us:.2f}x",
            ],
            ["json.loads + dict with Decimal by hand", hand_us, "1.00x"],
            [
                "(part) msgspec into the wire Struct of str only",
                wire_us,
                f"{wire_us / hand_us:.2f}x",
            ],
            ["(part) json.loads only", loads_us, f"{loads_us / hand_us:.2f}x"],
        ],
    )
    print(
        f"msgspec takes {msgspec_us / hand_us:.2f} of the time of json.loads by hand "
        f"({hand_us / msgspec_us:.2f}x as fast)."
    )


if __name__ == "__main__":
    main()
