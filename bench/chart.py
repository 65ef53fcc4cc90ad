"""The scaling chart (PNG), drawn only when matplotlib is installed (the `bench` extra)."""

from __future__ import annotations

from pathlib import Path

from bench.results_model import MetricResult

PANELS = (
    ("start-up", "start-up (ms)"),
    ("stop", "stop (ms)"),
    ("own RSS", "roled RSS (MiB)"),
    ("own CPU", "roled idle CPU (ms per 60 s)"),
)


def draw_scaling(result: MetricResult, path: Path) -> Path | None:
    """Plot each contender's median against N, one panel per quantity; None without matplotlib."""
    try:
        # Optional dependency (the `bench` extra): imported only when a chart is wanted.
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return None
    points = result.extra.get("points")
    if not isinstance(points, dict) or not points:
        return None
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.6))
    for ax, (prefix, label) in zip(axes, PANELS, strict=True):
        for key, pts in sorted(points.items()):
            contender, quantity = key.split("|", 1)
            if quantity.startswith(prefix):
                pairs = [
                    (n, v) for n, v in zip(pts["n"], pts["median"], strict=True) if v is not None
                ]
                if pairs:
                    ax.plot(*zip(*pairs, strict=True), marker="o", label=contender)
        ax.set_xscale("log")
        ax.set_xlabel("programs (N)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
