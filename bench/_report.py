"""Number formatting and plain-text or Markdown tables for the benchmark reports."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def fmt(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def ratio(a: float, b: float) -> float:
    return a / b if b and not (math.isnan(a) or math.isnan(b)) else math.nan


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=True)]
    render = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    head = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    return "\n".join([head, "  ".join("-" * w for w in widths), *render])


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs) if xs else math.nan
