"""What every benchmark prints: a title with the machine and the date, then Markdown tables.

Tables are GitHub Markdown as printed, so docs/benchmarks.md can quote the output as is.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["cpu_model", "machine", "median", "print_table", "print_title", "verdict"]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or the platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line: OS, CPU, core count, Python, the date (UTC) and the load average.

    The load average is there because CPU figures on a shared machine move with it.
    """
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.platform()}; {cpu_model()}; {os.cpu_count()} CPUs; "
        f"{platform.python_implementation()} {platform.python_version()}; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load}"
    )


def print_title(name: str, what: str) -> None:
    """The heading of one benchmark's output."""
    print(f"\n## {name}: {what}\n", flush=True)
    print(f"machine: {machine()}\n", flush=True)


def print_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table, columns padded to line up; number columns right-aligned.

    A row shorter than ``columns`` is filled with empty cells.
    """
    full = [[*row, *[""] * (len(columns) - len(row))] for row in rows]
    cells = [[_cell(value) for value in row] for row in full]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    numeric = [
        any(isinstance(row[i], int | float) for row in full)
        and all(isinstance(row[i], int | float) or row[i] == "" for row in full)
        for i in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        )
        return "| " + " | ".join(padded) + " |"

    rule = (
        ("-" * (w + 1) + ":") if r else ("-" * (w + 2))
        for w, r in zip(widths, numeric, strict=True)
    )
    print(line(columns))
    print("|" + "|".join(rule) + "|")
    for row in cells:
        print(line(row))
    print(flush=True)


def verdict(goal: str, met: bool | None, detail: str) -> None:
    """One Markdown list item per goal: MET, NOT MET, or UNKNOWN (when it could not be measured)."""
    word = "UNKNOWN" if met is None else "MET" if met else "NOT MET"
    print(f"- goal: {goal}: **{word}** ({detail})", flush=True)


def median(values: Sequence[float]) -> float:
    """The median (the mean of the middle two for an even count)."""
    return statistics.median(values)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
