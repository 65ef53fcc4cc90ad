"""Summaries of paired samples: medians, min/max, per-pair ratios and differences."""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Median, min and max of one series of samples."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Summary | None:
        """Summarise ``values``; None when there are none."""
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values), len(values))


def pair_ratios(candidate: list[float | None], baseline: list[float | None]) -> list[float]:
    """candidate/baseline for each pair (pairs missing a side or with a zero baseline skipped)."""
    pairs = zip(candidate, baseline, strict=True)
    return [c / b for c, b in pairs if c is not None and b is not None and b > 0]


def pair_diffs(candidate: list[float | None], baseline: list[float | None]) -> list[float]:
    """candidate - baseline for each pair (pairs missing a side skipped)."""
    pairs = zip(candidate, baseline, strict=True)
    return [c - b for c, b in pairs if c is not None and b is not None]


def growth_exponent(ns: list[int], values: list[float]) -> float | None:
    """Exponent k of the steepest growth between consecutive N (value ~ N**k); None if unknown."""
    points = sorted(zip(ns, values, strict=True))
    slopes = [
        math.log(v2 / v1) / math.log(n2 / n1)
        for (n1, v1), (n2, v2) in itertools.pairwise(points)
        if v1 > 0 and v2 > 0 and n2 > n1
    ]
    return max(slopes) if slopes else None
