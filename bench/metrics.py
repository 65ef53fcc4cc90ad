"""The metrics of issue 7: each runs its contenders alternately and returns MetricResults."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from bench import log_throughput, probe_cost, watch_cost
from bench.contenders import BareSupervisord, Contender, Roled, ShellRecipe
from bench.layout import (
    Layout,
    Program,
    remove_layout,
    sleeper,
    sleepers_in_roles,
    write_layout,
)
from bench.plan import Plan
from bench.procs import kill_all
from bench.results_model import MetricResult, Series, Target
from bench.stats import growth_exponent, pair_diffs, pair_ratios
from bench.trials import (
    Fatal,
    Lifecycle,
    TrialError,
    fatal_trial,
    lifecycle_trial,
    running,
    wait_all_running,
)
from roled.watch import IDLE_INTERVAL

T = TypeVar("T")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Setup:
    """What every metric needs: the run size, the roled contender (None: absent) and why."""

    plan: Plan
    roled: Roled | None
    roled_missing: str = ""
    log: Callable[[str], None] = print


def ms(seconds: Iterable[float | None]) -> list[float | None]:
    """Seconds to milliseconds; None stays None (not measured) so pairs stay aligned."""
    return [None if s is None else s * 1000 for s in seconds]


def alternate(
    setup: Setup, baseline: Contender, trial: Callable[[Contender], T], pairs: int, warmup: int
) -> tuple[list[T], list[T]]:
    """Run ``trial`` on baseline and roled alternately (A B A B ...) after warm-up rounds."""
    contenders: list[Contender] = [baseline]
    if setup.roled is not None:
        contenders.append(setup.roled)
    results: dict[str, list[T]] = {c.name: [] for c in contenders}
    for round_no in range(warmup + pairs):
        label = "warm-up" if round_no < warmup else f"pair {round_no - warmup + 1}/{pairs}"
        setup.log(f"  {label}")
        for contender in contenders:
            result = trial(contender)
            if round_no >= warmup:
                results[contender.name].append(result)
    roled_results = results[setup.roled.name] if setup.roled is not None else []
    return results[baseline.name], roled_results


def compare(
    setup: Setup,
    quantity: str,
    unit: str,
    *,
    base_name: str,
    base: list[float | None],
    roled: list[float | None],
) -> list[Series]:
    """The baseline's and roled's series plus per-pair roled/baseline ratios and differences."""
    series = [Series.of(base_name, quantity, unit, base)]
    if setup.roled is not None:
        name = setup.roled.name
        series.append(Series.of(name, quantity, unit, roled))
        series.append(
            Series.of(f"{name} / {base_name}", quantity, "ratio", pair_ratios(roled, base))
        )
        series.append(Series.of(f"{name} - {base_name}", quantity, unit, pair_diffs(roled, base)))
    return series


def median_where(
    series: Iterable[Series], contender_part: str, unit: str, quantity: str | None = None
) -> float | None:
    """Median of the first series whose contender contains ``contender_part`` and has ``unit``
    (and ``quantity``, when given)."""
    for s in series:
        if (
            contender_part in s.contender
            and s.unit == unit
            and (quantity is None or s.quantity == quantity)
            and s.summary is not None
        ):
            return s.summary.median
    return None


def missing_note(setup: Setup) -> tuple[str, ...]:
    """A note saying why roled's side is empty, if it is."""
    return () if setup.roled is not None else (f"roled not measured: {setup.roled_missing}",)


def statuses_note(name: str, statuses: Iterable[int]) -> str:
    """The exit statuses a contender returned, e.g. ``roled exit statuses: 1 x7``."""
    counts: dict[int, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return f"{name} exit statuses: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))


def guarded(key: str, title: str, run: Callable[[], list[MetricResult]]) -> list[MetricResult]:
    """Run one metric; a failed trial becomes a note on the metric instead of ending the run."""
    try:
        return run()
    except TrialError as exc:
        kill_all()
        return [MetricResult(key=key, title=title, notes=(f"failed: {exc}",))]


# 1 + 2: start-up and stop share their runs -------------------------------------------------


def run_startup_stop(setup: Setup) -> list[MetricResult]:
    """Exec to every program RUNNING, and SIGTERM to exit, against bare supervisord."""
    n, base = setup.plan.n_startup, BareSupervisord()
    setup.log(f"start-up and stop, N = {n}")
    b, r = alternate(
        setup, base, lambda c: lifecycle_trial(c, n), setup.plan.pairs, setup.plan.warmup
    )
    start = compare(
        setup,
        "exec to all RUNNING",
        "ms",
        base_name=base.name,
        base=ms(x.startup for x in b),
        roled=ms(x.startup for x in r),
    )
    stop = compare(
        setup,
        "SIGTERM to exit",
        "ms",
        base_name=base.name,
        base=ms(x.stop for x in b),
        roled=ms(x.stop for x in r),
    )
    notes = missing_note(setup) + lifecycle_statuses(setup, base, b, r)
    return [
        MetricResult(
            key="startup",
            title=f"Start-up: exec to every program RUNNING (N = {n}, startsecs=0)",
            series=tuple(start),
            targets=(
                Target.at_most(
                    "Start-up: roled adds <= 50 ms (median pair difference)",
                    median_where(start, " - ", "ms"),
                    50,
                    "ms",
                ),
            ),
            notes=notes,
        ),
        MetricResult(
            key="stop",
            title=f"Stop: SIGTERM to process exit (N = {n})",
            series=tuple(stop),
            targets=(
                Target.at_most(
                    "Stop: ratio <= 1.05 vs bare supervisord",
                    median_where(stop, " / ", "ratio"),
                    1.05,
                    "x",
                ),
            ),
            notes=notes,
        ),
    ]


def lifecycle_statuses(
    setup: Setup, base: Contender, b: list[Lifecycle], r: list[Lifecycle]
) -> tuple[str, ...]:
    notes = [statuses_note(base.name, (x.status for x in b))]
    if setup.roled is not None:
        notes.append(statuses_note(setup.roled.name, (x.status for x in r)))
    return tuple(notes)


# 3 + 4: FATAL to exit, and detection latency share their runs ------------------------------


def run_fatal(setup: Setup) -> list[MetricResult]:
    """One program fails at once beside N healthy ones: exec to exit, and FATAL to stop request."""
    n, base = setup.plan.n_fatal, ShellRecipe()
    setup.log(f"FATAL to exit, N = {n} + 1 failing")
    b, r = alternate(setup, base, lambda c: fatal_trial(c, n), setup.plan.pairs, setup.plan.warmup)
    to_exit = compare(
        setup,
        "exec to exit",
        "ms",
        base_name=base.name,
        base=ms(x.to_exit for x in b),
        roled=ms(x.to_exit for x in r),
    )
    after = compare(
        setup,
        "probe-seen FATAL to exit",
        "ms",
        base_name=base.name,
        base=ms(x.fatal_to_exit for x in b),
        roled=ms(x.fatal_to_exit for x in r),
    )
    detect = [
        Series.of(base.name, "FATAL to listener's stderr line", "ms", ms(x.detection for x in b))
    ]
    if setup.roled is not None:
        detect.insert(
            0, Series.of(setup.roled.name, "FATAL to roled's FATAL line", "ms", fatal_detection(r))
        )
    notes = missing_note(setup) + fatal_statuses(setup, base, b, r)
    return [
        MetricResult(
            key="fatal",
            title=f"FATAL to exit: /bin/false (startretries=0) beside {n} sleepers",
            series=tuple(to_exit + after),
            targets=(
                Target.at_most(
                    "FATAL to exit: ratio <= 1.0 vs the shell recipe",
                    median_where(to_exit, " / ", "ratio"),
                    1.0,
                    "x",
                ),
            ),
            notes=notes,
        ),
        MetricResult(
            key="detection",
            title="Detection latency: probe-seen FATAL to the stop request's log line",
            series=tuple(detect),
            targets=(
                Target.at_most(
                    "Detection latency: <= 20 ms median",
                    median_where(detect, setup.roled.name if setup.roled else "\0", "ms"),
                    20,
                    "ms",
                ),
            ),
            notes=(
                *missing_note(setup),
                "both sides stamped with CLOCK_MONOTONIC: the probe listener when supervisord"
                " delivers the FATAL event, the harness when the contender's line reaches its pipe",
            ),
        ),
    ]


def fatal_detection(r: list[Fatal]) -> list[float | None]:
    return ms(x.detection for x in r)


def fatal_statuses(
    setup: Setup, base: Contender, b: list[Fatal], r: list[Fatal]
) -> tuple[str, ...]:
    notes = [statuses_note(base.name, (x.status for x in b))]
    if setup.roled is not None:
        notes.append(statuses_note(setup.roled.name, (x.status for x in r)))
    return tuple(notes)


# 5: idle cost ------------------------------------------------------------------------------


def run_idle(setup: Setup) -> list[MetricResult]:
    """CPU over an idle window and memory after start-up, with N running programs."""
    plan, base = setup.plan, BareSupervisord()
    n, secs = plan.n_idle, plan.idle_seconds
    setup.log(f"idle cost, N = {n}, {secs:g} s windows")
    b, r = alternate(
        setup, base, lambda c: lifecycle_trial(c, n, idle=secs), plan.idle_pairs, warmup=0
    )
    series = usage_series(base.name, "", b, secs)
    if setup.roled is not None:
        series += usage_series(setup.roled.name, "its supervisord", r, secs)
        series += own_series(setup.roled.name, r, secs)
    roled_name = setup.roled.name if setup.roled else "\0"
    per_60 = median_where(series, f"{roled_name} (own)", "ms CPU per 60 s")
    return [
        MetricResult(
            key="idle",
            title=f"Idle cost: {n} running programs, CPU over {secs:g} s, memory after start-up",
            series=tuple(series),
            targets=(
                Target.at_most(
                    "Idle: roled <= 30 ms CPU per 60 s (0.05 % of a core)", per_60, 30, "ms"
                ),
                Target.at_most(
                    "Idle: roled RSS <= 20 MiB",
                    median_where(series, f"{roled_name} (own)", "MiB RSS"),
                    20,
                    "MiB",
                ),
                Target.at_most(
                    "Idle: roled USS <= 10 MiB",
                    median_where(series, f"{roled_name} (own)", "MiB USS"),
                    10,
                    "MiB",
                ),
            ),
            notes=missing_note(setup),
        )
    ]


def usage_series(name: str, what: str, runs: list[Lifecycle], secs: float) -> list[Series]:
    """supervisord's CPU and memory in one contender's runs."""
    sup = [x.supervisord for x in runs if x.supervisord is not None]
    label = f"{name} ({what})" if what else name
    return [
        Series.of(label, "CPU", "ms CPU per 60 s", [u.cpu * 1000 * 60 / secs for u in sup]),
        Series.of(label, "RSS", "MiB RSS", [u.rss / MIB for u in sup]),
        Series.of(label, "USS", "MiB USS", [u.uss / MIB for u in sup]),
    ]


def own_series(name: str, runs: list[Lifecycle], secs: float) -> list[Series]:
    """roled's own CPU and memory (its process alone)."""
    own = [x.own for x in runs if x.own is not None]
    label = f"{name} (own)"
    return [
        Series.of(label, "CPU", "ms CPU per 60 s", [u.cpu * 1000 * 60 / secs for u in own]),
        Series.of(label, "CPU", "% of a core", [u.cpu / secs * 100 for u in own]),
        Series.of(label, "RSS", "MiB RSS", [u.rss / MIB for u in own]),
        Series.of(label, "USS", "MiB USS", [u.uss / MIB for u in own]),
    ]


# 6: assembly -------------------------------------------------------------------------------


def assembly_roles(roles: int, programs: int) -> dict[str, list[Program]]:
    """``roles`` roles of ``programs`` sleepers each, one file per program."""
    return {
        f"r{i:02d}": [sleeper(f"r{i:02d}p{j:02d}") for j in range(programs)] for i in range(roles)
    }


def run_assembly(setup: Setup) -> list[MetricResult]:
    """`roled check` against the shell recipe's concatenation, on roles x programs files."""
    plan, base = setup.plan, ShellRecipe()
    total = plan.assembly_roles * plan.assembly_programs
    setup.log(f"assembly, {plan.assembly_roles} roles x {plan.assembly_programs} programs")
    layout = write_layout(assembly_roles(plan.assembly_roles, plan.assembly_programs))
    try:
        b, r = alternate(setup, base, lambda c: assemble_once(c, layout), plan.pairs, plan.warmup)
    finally:
        remove_layout(layout)
    series = compare(
        setup, "assemble (exec to exit)", "ms", base_name=base.name, base=ms(b), roled=ms(r)
    )
    target = Target.at_most(
        f"Assembly of {total} programs: roled check <= 200 ms",
        median_where(series, setup.roled.name if setup.roled else "\0", "ms"),
        200,
        "ms",
    )
    return [
        MetricResult(
            key="assembly",
            title=f"Assembly: {plan.assembly_roles} roles x {plan.assembly_programs} programs",
            series=tuple(series),
            targets=(target,),
            notes=(
                *missing_note(setup),
                "the recipe only concatenates (sed); roled check also parses and validates",
            ),
        )
    ]


def assemble_once(contender: Contender, layout: Layout) -> float:
    """Seconds one assembly took; a failure is a TrialError with the contender's output."""
    if isinstance(contender, ShellRecipe):
        elapsed, status, output = contender.assemble(layout, timeout=60)
    elif isinstance(contender, Roled):
        elapsed, status, output = contender.check(layout, timeout=60)
    else:
        raise TypeError(f"{contender.name} cannot assemble on its own")
    if status != 0:
        raise TrialError(f"{contender.name} assembly exited {status}: {output[-2000:]}")
    return elapsed


# 7: scaling --------------------------------------------------------------------------------


def run_scaling(setup: Setup) -> list[MetricResult]:
    """Start-up, stop, memory and idle CPU at several N, for the chart and the growth check."""
    plan, base = setup.plan, BareSupervisord()
    series: list[Series] = []
    points: dict[str, dict[str, list[float | None]]] = {}
    for n in plan.scaling_ns:
        setup.log(f"scaling, N = {n}")
        b, r = alternate(
            setup,
            base,
            lambda c, n=n: lifecycle_trial(c, n, idle=plan.scaling_idle_seconds),
            plan.scaling_pairs,
            warmup=0,
        )
        for name, runs in ((base.name, b), (setup.roled.name if setup.roled else "", r)):
            if not runs:
                continue
            found = scaling_point(name, n, runs, plan.scaling_idle_seconds)
            series += found
            for s in found:
                key = f"{s.contender}|{s.quantity.rsplit(' N=', 1)[0]}"
                median = s.summary.median if s.summary else None
                points.setdefault(key, {"n": [], "median": []})
                points[key]["n"].append(n)
                points[key]["median"].append(median)
    return [
        MetricResult(
            key="scaling",
            title=f"Scaling: N = {', '.join(map(str, plan.scaling_ns))}",
            series=tuple(series),
            targets=growth_targets(setup, points),
            notes=missing_note(setup),
            extra={"points": points},
        )
    ]


def scaling_point(name: str, n: int, runs: list[Lifecycle], secs: float) -> list[Series]:
    """One contender's series at one N."""
    sup = [x.supervisord for x in runs if x.supervisord is not None]
    own = [x.own for x in runs if x.own is not None]
    found = [
        Series.of(name, f"start-up N={n}", "ms", ms(x.startup for x in runs)),
        Series.of(name, f"stop N={n}", "ms", ms(x.stop for x in runs)),
        Series.of(name, f"supervisord RSS N={n}", "MiB", [u.rss / MIB for u in sup]),
        Series.of(name, f"supervisord CPU N={n}", "ms per 60 s", [u.cpu * 6e4 / secs for u in sup]),
    ]
    if own:
        found += [
            Series.of(name, f"own RSS N={n}", "MiB", [u.rss / MIB for u in own]),
            Series.of(name, f"own USS N={n}", "MiB", [u.uss / MIB for u in own]),
            Series.of(name, f"own CPU N={n}", "ms per 60 s", [u.cpu * 6e4 / secs for u in own]),
        ]
    return found


def growth_targets(
    setup: Setup, points: dict[str, dict[str, list[float | None]]]
) -> tuple[Target, ...]:
    """roled's own memory and idle CPU grow at most linearly: exponent k <= 1 in value ~ N**k."""
    name = setup.roled.name if setup.roled else "\0"
    targets = []
    for label, quantity in (("RSS", "own RSS"), ("idle CPU", "own CPU")):
        ns: list[int] = []
        values: list[float] = []
        for key, pts in points.items():
            contender, q = key.split("|", 1)
            if contender == name and q.startswith(quantity):
                for n, v in zip(pts["n"], pts["median"], strict=True):
                    if n is not None and v is not None:
                        ns.append(int(n))
                        values.append(v)
        exponent = growth_exponent(ns, values) if ns else None
        targets.append(
            Target.at_most(
                f"Scaling: roled {label} grows at most linearly (N**k, k <= 1)", exponent, 1.0, "k"
            )
        )
    return tuple(targets)


# 8: logs -----------------------------------------------------------------------------------


LOG_FORMATS = ("prefix", "json")


def run_logs(setup: Setup) -> list[MetricResult]:
    """prefix/json throughput through roled, against a program writing straight to stdout."""
    plan = setup.plan
    title = "Logs: prefix/json throughput relative to direct stdout"
    if setup.roled is None:
        return [MetricResult(key="logs", title=title, notes=missing_note(setup))]
    setup.log(f"logs, {plan.log_lines} lines of 100 bytes: direct, prefix, json in turn")
    rates: dict[str, list[float]] = {name: [] for name in ("direct", *LOG_FORMATS)}
    for round_ in range(plan.warmup + plan.log_pairs):
        for name, kept in rates.items():
            rate = log_throughput.measure(None if name == "direct" else name, plan.log_lines)
            if round_ >= plan.warmup:
                kept.append(rate)
    series: list[Series] = [
        Series.of(name, "throughput", "lines/s", list(values)) for name, values in rates.items()
    ]
    targets: list[Target] = []
    for name in LOG_FORMATS:
        ratios = [rate / direct for rate, direct in zip(rates[name], rates["direct"], strict=True)]
        ratio = Series.of(f"roled {name} / direct", "throughput ratio", "x", list(ratios))
        series.append(ratio)
        median = ratio.summary.median if ratio.summary else None
        targets.append(Target.at_least(f"Logs: {name} >= 0.8 of direct", median, 0.8, "x"))
    return [
        MetricResult(
            key="logs",
            title=title,
            series=tuple(series),
            targets=tuple(targets),
            notes=(
                "direct: the producer's stdout read straight from its pipe; roled: the same "
                "producer as a program, its output through supervisord, a FIFO and roled's "
                "formatter to roled's stdout pipe",
            ),
        )
    ]


# 9: probe cost ----------------------------------------------------------------------------


BASE_PROBE = "supervisorctl status"


def run_probe(setup: Setup) -> list[MetricResult]:
    """One `roled status` against one `supervisorctl status`, alternately, on the same programs."""
    plan = setup.plan
    n = plan.n_idle
    title = f"Probe cost: one status call as a fresh process, {n} running programs"
    if setup.roled is None:
        return [MetricResult(key="probe", title=title, notes=missing_note(setup))]
    roled = setup.roled
    setup.log(f"probe cost, N = {n}, {plan.probe_calls} calls each")
    calls: dict[str, list[probe_cost.Call]] = {BASE_PROBE: [], roled.name: []}
    with running(roled, sleepers_in_roles(n)) as (launched, layout):
        wait_all_running(launched, layout, timeout=30 + n * 0.2)
        # Bytecode as an installed image has it, for both commands: the harness's environment
        # forbids writing it, which would make every call compile roled from source.
        env = {**roled.env(layout), "PYTHONPYCACHEPREFIX": str(layout.root / "pyc")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        argvs = {
            BASE_PROBE: probe_cost.supervisorctl_argv(layout),
            roled.name: [*roled.command, "status"],
        }
        warmup = max(1, plan.warmup)
        for round_ in range(warmup + plan.probe_calls):
            for name, argv in argvs.items():
                call = probe_cost.measure(argv, env)
                if round_ >= warmup:
                    calls[name].append(call)
    cpu = compare(
        setup,
        "CPU per call",
        "ms CPU",
        base_name=BASE_PROBE,
        base=[c.cpu * 1000 for c in calls[BASE_PROBE]],
        roled=[c.cpu * 1000 for c in calls[roled.name]],
    )
    rss = [
        Series.of(name, "peak RSS per call", "MiB", [c.peak_rss / MIB for c in found])
        for name, found in calls.items()
    ]
    peak = next(s for s in rss if s.contender == roled.name).summary
    return [
        MetricResult(
            key="probe",
            title=title,
            series=(*cpu, *rss),
            targets=(
                Target.at_most(
                    "Probe: roled status CPU <= 0.6x supervisorctl status (median pair ratio)",
                    median_where(cpu, " / ", "ratio"),
                    0.6,
                    "x",
                ),
                Target.at_most(
                    "Probe: roled status peak RSS <= 15 MiB (largest call)",
                    peak.max if peak else None,
                    15,
                    "MiB",
                ),
            ),
            notes=(
                *(statuses_note(name, (c.status for c in found)) for name, found in calls.items()),
                "CPU (user + system) and peak RSS of each call's process, from wait4; both "
                "commands are the same Python, against the same running supervisord",
            ),
        )
    ]


# 10: watch -----------------------------------------------------------------------------------


WATCH_FILES = 1000


def run_watch(setup: Setup) -> list[MetricResult]:
    """CPU of one watcher scan of 1,000 unchanged files, as a share of a core at the interval."""
    scans = 20 * setup.plan.pairs
    setup.log(f"watch, {WATCH_FILES} files, {scans} scans per layout")
    series: list[Series] = []
    for layout in ("folder", "files"):
        seconds = watch_cost.cpu_per_scan(WATCH_FILES, scans, layout)
        series.append(Series.of(f"watch ({layout})", "CPU per scan", "ms", ms(seconds)))
        share = [watch_cost.percent_of_core(s) for s in seconds]
        series.append(
            Series.of(f"watch ({layout})", "CPU, polling (no inotify)", "% of a core", share)
        )
        idle = [watch_cost.percent_of_core(s, IDLE_INTERVAL) for s in seconds]
        series.append(Series.of(f"watch ({layout})", "CPU with inotify", "% of a core", idle))
    return [
        MetricResult(
            key="watch",
            title=(
                f"Watch: {WATCH_FILES} unchanged files, scanned every {IDLE_INTERVAL:g} s with "
                f"inotify (every {watch_cost.INTERVAL:g} s without)"
            ),
            series=tuple(series),
            targets=(
                Target.at_most(
                    "Watch: 1,000 files cost <= 0.1 % of a core",
                    median_where(series, "watch (folder)", "% of a core", "CPU with inotify"),
                    0.1,
                    "%",
                ),
            ),
            notes=(
                "process CPU (time.process_time) of poll() when a scan is due; the files are "
                "settled (mtime an hour ago) so none is hashed; 'folder' watches one folder of "
                "N files, 'files' lists the N paths; with inotify an idle watcher wakes only for "
                "its safety-net scan (a change wakes it at once), without it it scans every "
                "interval",
            ),
        )
    ]


METRICS: dict[str, tuple[str, Callable[[Setup], list[MetricResult]]]] = {
    "startup": ("Start-up and stop", run_startup_stop),
    "stop": ("Start-up and stop", run_startup_stop),
    "fatal": ("FATAL to exit and detection", run_fatal),
    "detection": ("FATAL to exit and detection", run_fatal),
    "idle": ("Idle cost", run_idle),
    "assembly": ("Assembly", run_assembly),
    "scaling": ("Scaling", run_scaling),
    "logs": ("Logs", run_logs),
    "probe": ("Probe cost", run_probe),
    "watch": ("Watch", run_watch),
}
