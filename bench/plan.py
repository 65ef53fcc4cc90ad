"""Run sizes: the full run, --quick (under two minutes) and --tiny (for the smoke test)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    """How many programs, pairs and seconds each metric uses."""

    name: str
    pairs: int
    warmup: int
    n_startup: int
    n_fatal: int
    n_idle: int
    idle_seconds: float
    idle_pairs: int
    assembly_roles: int
    assembly_programs: int
    scaling_ns: tuple[int, ...]
    scaling_pairs: int
    scaling_idle_seconds: float
    log_lines: int
    log_pairs: int
    probe_calls: int


FULL = Plan(
    name="full",
    pairs=7,
    warmup=1,
    n_startup=20,
    n_fatal=20,
    n_idle=50,
    idle_seconds=60.0,
    idle_pairs=5,
    assembly_roles=50,
    assembly_programs=10,
    scaling_ns=(10, 100, 500),
    scaling_pairs=5,
    scaling_idle_seconds=10.0,
    log_lines=1_000_000,
    log_pairs=3,
    probe_calls=30,
)

QUICK = Plan(
    name="quick",
    pairs=5,
    warmup=1,
    n_startup=20,
    n_fatal=20,
    n_idle=50,
    idle_seconds=10.0,
    idle_pairs=1,
    assembly_roles=50,
    assembly_programs=10,
    # N = 500 alone takes ~20 s a run (supervisord spawns 500 programs in one pass): full run only.
    scaling_ns=(10, 50, 200),
    scaling_pairs=1,
    scaling_idle_seconds=1.0,
    log_lines=200_000,
    log_pairs=1,
    probe_calls=15,
)

TINY = Plan(
    name="tiny",
    pairs=1,
    warmup=0,
    n_startup=3,
    n_fatal=2,
    n_idle=3,
    idle_seconds=0.5,
    idle_pairs=1,
    assembly_roles=3,
    assembly_programs=2,
    scaling_ns=(2, 4),
    scaling_pairs=1,
    scaling_idle_seconds=0.2,
    log_lines=2_000,
    log_pairs=1,
    probe_calls=2,
)

PLANS = {p.name: p for p in (FULL, QUICK, TINY)}
