"""Turn MetricResults into the markdown table printed at the end and the JSON kept in results/."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from bench.results_model import MetricResult, Series, Target


def fmt(value: float | None) -> str:
    """A figure with three significant digits, or a dash."""
    if value is None:
        return "-"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def series_row(s: Series) -> str:
    if s.summary is None:
        return f"| {s.contender} | {s.quantity} | {s.unit} | - | - | - | 0 |"
    m = s.summary
    return (
        f"| {s.contender} | {s.quantity} | {s.unit} "
        f"| {fmt(m.median)} | {fmt(m.min)} | {fmt(m.max)} | {m.n} |"
    )


def target_row(t: Target) -> str:
    verdict = {True: "met", False: "**missed**", None: "not measured"}[t.met]
    measured, limit = f"{fmt(t.measured)} {t.unit}", f"{fmt(t.limit)} {t.unit}"
    return f"| {t.name} | {measured} | {limit} | {verdict} | {t.detail} |"


def to_markdown(results: list[MetricResult], header: str) -> str:
    """One section per metric (contender, quantity, median, min, max, n), then every target."""
    out = [header, ""]
    for r in results:
        out += [f"### {r.title}", ""]
        if r.series:
            out += ["| contender | quantity | unit | median | min | max | n |"]
            out += ["|---|---|---|---:|---:|---:|---:|"]
            out += [series_row(s) for s in r.series]
            out.append("")
        out += [f"- {note}" for note in r.notes]
        if r.notes:
            out.append("")
    targets = [t for r in results for t in r.targets]
    if targets:
        out += ["### Targets", "", "| target | measured | limit | verdict | by how much |"]
        out += ["|---|---:|---:|---|---|"]
        out += [target_row(t) for t in targets]
        out.append("")
    return "\n".join(out)


def write_json(path: Path, meta: dict[str, object], results: list[MetricResult]) -> None:
    """The same figures as the markdown (raw samples included) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**meta, "metrics": [asdict(r) for r in results]}
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
