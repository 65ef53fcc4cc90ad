"""The figures a run produces: frozen dataclasses that turn into JSON and markdown as they are."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.stats import Summary


@dataclass(frozen=True)
class Series:
    """Samples of one quantity for one contender (or a per-pair ratio/difference), in ``unit``."""

    contender: str
    quantity: str
    unit: str
    values: tuple[float, ...]
    summary: Summary | None

    @classmethod
    def of(cls, contender: str, quantity: str, unit: str, values: list[float | None]) -> Series:
        """A series of the measured samples (None marks a sample that was not measured)."""
        kept = [v for v in values if v is not None]
        return cls(contender, quantity, unit, tuple(kept), Summary.of(kept))


@dataclass(frozen=True)
class Target:
    """One target of issue 7: what was measured against which limit, met or missed."""

    name: str
    measured: float | None
    limit: float
    unit: str
    met: bool | None
    detail: str = ""

    @classmethod
    def at_most(cls, name: str, measured: float | None, limit: float, unit: str) -> Target:
        """A target met when ``measured <= limit``; the detail says by how much."""
        if measured is None:
            return cls(name, None, limit, unit, None, "not measured")
        margin = limit - measured
        word = "under" if margin >= 0 else "over"
        detail = f"{abs(margin):.3g} {unit} {word} the limit"
        if limit > 0 and measured >= 0:
            detail += f" ({measured / limit:.0%} of it)"
        return cls(name, measured, limit, unit, measured <= limit, detail)

    @classmethod
    def at_least(cls, name: str, measured: float | None, limit: float, unit: str) -> Target:
        """A target met when ``measured >= limit``; the detail says by how much."""
        if measured is None:
            return cls(name, None, limit, unit, None, "not measured")
        margin = measured - limit
        word = "over" if margin >= 0 else "under"
        detail = f"{abs(margin):.3g} {unit} {word} the limit"
        return cls(name, measured, limit, unit, measured >= limit, detail)


@dataclass(frozen=True)
class MetricResult:
    """Everything one metric measured, compared and checked."""

    key: str
    title: str
    series: tuple[Series, ...] = ()
    targets: tuple[Target, ...] = ()
    notes: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)
