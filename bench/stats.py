"""Pure parts of the benchmark: percentiles, summaries, comparisons with targets, the table.

Nothing here measures time or talks to a server, so it is unit tested without timing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method; NaN for no samples."""
    if not 0 <= q <= 100:
        raise ValueError("q must be within 0..100")
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Measurement:
    """One scenario's result: how many operations completed in the window, and their latency."""

    name: str
    title: str
    unit: str  # what one operation is: "calls", "decisions", "rows"
    ops: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list, repr=False)
    errors: int = 0
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: dict[str, float] = field(default_factory=dict)
    note: str = ""
    # Whole machine over the window: "busy" (any process) and "steal" (the VM host took it) in
    # % of all cores; "others" (programs not measured here) in % of one core. Noisy if high.
    machine_percent: dict[str, float] = field(default_factory=dict)

    @property
    def throughput(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99_ms(self) -> float:
        return percentile(self.latencies_ms, 99)

    def cpu_percent(self) -> dict[str, float]:
        """CPU used during the window, in % of one core: the generator, then each server."""
        if self.seconds <= 0:
            return {}
        out = {"client": 100 * self.client_cpu_seconds / self.seconds}
        for name, used in self.server_cpu_seconds.items():
            out[name] = 100 * used / self.seconds
        return out

    def cpu_us_per_op(self) -> dict[str, float]:
        """CPU microseconds each process spent per completed operation."""
        if self.ops <= 0:
            return {}
        used = {"client": self.client_cpu_seconds, **self.server_cpu_seconds}
        return {name: 1e6 * seconds / self.ops for name, seconds in used.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "unit": self.unit,
            "ops": self.ops,
            "seconds": round(self.seconds, 3),
            "throughput": round(self.throughput, 1),
            "p50_ms": _round(self.p50_ms),
            "p99_ms": _round(self.p99_ms),
            "errors": self.errors,
            "cpu_percent": {k: round(v, 1) for k, v in self.cpu_percent().items()},
            "machine_percent": {k: round(v, 1) for k, v in self.machine_percent.items()},
            "cpu_us_per_op": {k: round(v, 1) for k, v in self.cpu_us_per_op().items()},
            "note": self.note,
        }


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


@dataclass(frozen=True)
class Target:
    """A goal for a ratio: kind "min" (ratio >= value), "max" (ratio <= value) or "report"."""

    kind: str
    value: float = 0.0

    def met(self, ratio: float) -> bool | None:
        if self.kind == "report" or math.isnan(ratio):
            return None
        if self.kind == "min":
            return ratio >= self.value
        if self.kind == "max":
            return ratio <= self.value
        raise ValueError(f"unknown target kind {self.kind!r}")

    def describe(self) -> str:
        if self.kind == "min":
            return f">= {self.value:g}x"
        if self.kind == "max":
            return f"<= {self.value:g}x"
        return "report"


@dataclass(frozen=True)
class Comparison:
    """`subject` compared with `baseline` (both scenario names) as a throughput ratio.

    mode "ratio": subject / baseline (higher is better); mode "slowdown": baseline / subject
    (how many times slower the subject is; lower is better).
    """

    subject: str
    baseline: str
    target: Target
    mode: str = "ratio"
    label: str = ""


def ratio(subject: float, baseline: float, mode: str = "ratio") -> float:
    """Throughput ratio; NaN when either side is missing or zero."""
    if subject <= 0 or baseline <= 0 or math.isnan(subject) or math.isnan(baseline):
        return math.nan
    if mode == "ratio":
        return subject / baseline
    if mode == "slowdown":
        return baseline / subject
    raise ValueError(f"unknown mode {mode!r}")


@dataclass(frozen=True)
class Evaluated:
    comparison: Comparison
    value: float
    met: bool | None

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.comparison.subject,
            "baseline": self.comparison.baseline,
            "mode": self.comparison.mode,
            "label": self.comparison.label,
            "value": _round(self.value),
            "target": self.comparison.target.describe(),
            "met": self.met,
        }


def evaluate(
    comparisons: Sequence[Comparison], results: Mapping[str, Measurement]
) -> list[Evaluated]:
    """Each comparison whose subject was measured; a missing baseline gives NaN ("n/a")."""
    out = []
    for c in comparisons:
        subject = results.get(c.subject)
        if subject is None:
            continue
        baseline = results.get(c.baseline)
        value = ratio(subject.throughput, baseline.throughput if baseline else math.nan, c.mode)
        out.append(Evaluated(c, value, c.target.met(value)))
    return out


def fmt_rate(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if value >= 100_000:
        return f"{value / 1000:,.0f}k"
    if value >= 10_000:
        return f"{value / 1000:,.1f}k"
    return f"{value:,.0f}"


def fmt_ms(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def fmt_met(met: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "-"}[met]


def render_table(
    results: Sequence[Measurement],
    evaluated: Sequence[Evaluated],
    memory: Mapping[str, float] | None = None,
) -> str:
    """The Markdown report: one row per scenario, then one row per comparison."""
    lines = [
        "| scenario | throughput | p50 ms | p99 ms | errors | CPU % of a core (client; servers)"
        " | box busy/steal %; others |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for m in results:
        cpu = m.cpu_percent()
        client = cpu.pop("client", math.nan)
        servers = ", ".join(f"{k} {v:.0f}" for k, v in cpu.items() if v >= 0.5)
        title = m.title + (f" ({m.note})" if m.note else "")
        box = (
            f"{m.machine_percent.get('busy', math.nan):.0f}/"
            f"{m.machine_percent.get('steal', math.nan):.0f}; "
            f"{m.machine_percent.get('others', math.nan):.0f}"
        )
        lines.append(
            f"| {title} | {fmt_rate(m.throughput)} {m.unit}/s | {fmt_ms(m.p50_ms)} | "
            f"{fmt_ms(m.p99_ms)} | {m.errors} | {client:.0f}; {servers or '-'} | {box} |"
        )
    lines += ["", "| comparison | ratio | target | met |", "|---|---:|---|---|"]
    names = {m.name: m.title for m in results}
    for e in evaluated:
        c = e.comparison
        word = "slowdown vs" if c.mode == "slowdown" else "vs"
        label = (
            c.label
            or f"{names.get(c.subject, c.subject)} {word} {names.get(c.baseline, c.baseline)}"
        )
        value = "n/a" if math.isnan(e.value) else f"{e.value:.2f}x"
        lines.append(f"| {label} | {value} | {c.target.describe()} | {fmt_met(e.met)} |")
    if memory:
        lines += ["", "| Redis memory | bytes |", "|---|---:|"]
        for name, size in memory.items():
            lines.append(f"| {name} | {size:,.0f} |")
    return "\n".join(lines) + "\n"
