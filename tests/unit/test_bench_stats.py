"""The pure parts of the benchmark harness: percentiles, ratios, targets, the table, profiles."""

from __future__ import annotations

import math

import pytest

from bench import profile
from bench.stats import (
    Comparison,
    Measurement,
    Target,
    evaluate,
    fmt_rate,
    percentile,
    ratio,
    render_table,
)


def m(name: str, ops: int, seconds: float = 1.0, lat: list[float] | None = None) -> Measurement:
    return Measurement(name, name.title(), "calls", ops, seconds, latencies_ms=lat or [1.0])


@pytest.mark.parametrize(
    ("samples", "q", "expected"),
    [
        ([5.0], 50, 5.0),
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([4.0, 3.0, 2.0, 1.0], 50, 2.0),  # order does not matter
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
        ([float(i) for i in range(1, 1001)], 99, 990.0),
    ],
)
def test_percentile_nearest_rank(samples: list[float], q: float, expected: float) -> None:
    assert percentile(samples, q) == expected


def test_percentile_of_nothing_is_nan_and_q_is_checked() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_measurement_throughput_and_cpu_percent() -> None:
    x = Measurement("a", "A", "calls", 500, 2.0, [1.0, 2.0, 3.0], client_cpu_seconds=1.0,
                    server_cpu_seconds={"vault": 2.0})  # fmt: skip
    assert x.throughput == 250
    assert (x.p50_ms, x.p99_ms) == (2.0, 3.0)
    assert x.cpu_percent() == {"client": 50.0, "vault": 100.0}
    assert x.to_json()["throughput"] == 250.0
    assert x.cpu_us_per_op() == {"client": 2000.0, "vault": 4000.0}
    assert Measurement("n", "N", "calls", 0, 1.0).cpu_us_per_op() == {}
    assert Measurement("z", "Z", "calls", 0, 0.0).throughput == 0.0


def test_ratio_modes_and_missing_sides() -> None:
    assert ratio(300, 100) == 3.0
    assert ratio(80, 100, "slowdown") == 1.25
    assert math.isnan(ratio(0, 100))
    assert math.isnan(ratio(100, math.nan))
    with pytest.raises(ValueError):
        ratio(1, 1, "sideways")


@pytest.mark.parametrize(
    ("target", "value", "met"),
    [
        (Target("min", 0.75), 0.75, True),
        (Target("min", 0.75), 0.74, False),
        (Target("max", 1.2), 1.2, True),
        (Target("max", 1.2), 1.21, False),
        (Target("report"), 5.0, None),
        (Target("min", 1.0), math.nan, None),
    ],
)
def test_target_met(target: Target, value: float, met: bool | None) -> None:
    assert target.met(value) is met


def test_target_describe() -> None:
    assert Target("min", 3.0).describe() == ">= 3x"
    assert Target("max", 1.3).describe() == "<= 1.3x"
    assert Target("report").describe() == "report"


def test_evaluate_skips_unmeasured_subjects_and_marks_missing_baselines() -> None:
    results = {"a": m("a", 75), "floor": m("floor", 100), "big": m("big", 50)}
    evaluated = evaluate(
        [
            Comparison("a", "floor", Target("min", 0.75)),
            Comparison("big", "a", Target("max", 1.2), "slowdown"),
            Comparison("a", "absent", Target("min", 1.0)),
            Comparison("absent", "floor", Target("min", 1.0)),
        ],
        results,
    )
    assert [(e.comparison.subject, e.comparison.baseline) for e in evaluated] == [
        ("a", "floor"), ("big", "a"), ("a", "absent"),
    ]  # fmt: skip
    assert evaluated[0].value == 0.75 and evaluated[0].met is True
    assert evaluated[1].value == 1.5 and evaluated[1].met is False
    assert math.isnan(evaluated[2].value) and evaluated[2].met is None
    assert evaluated[2].to_json()["value"] is None


def test_render_table_rows_and_comparisons() -> None:
    a = m("a", 7500, lat=[1.0, 2.0])
    floor = m("floor", 10000)
    a.server_cpu_seconds = {"vault": 0.9, "idle": 0.001}
    a.client_cpu_seconds = 0.5
    floor.machine_percent = {"busy": 95.4, "steal": 12.0, "others": 30.2}
    evaluated = evaluate([Comparison("a", "floor", Target("min", 0.8))], {"a": a, "floor": floor})
    table = render_table([a, floor], evaluated, {"idle key": 1104.0})
    lines = table.splitlines()
    assert lines[0].startswith("| scenario | throughput")
    assert "| A | 7,500 calls/s | 1.00 | 2.00 | 0 | 50; vault 90 | nan/nan; nan |" in lines
    assert "| A vs Floor | 0.75x | >= 0.8x | **no** |" in lines
    assert lines[3].endswith("| 95/12; 30 |")
    assert "| idle key | 1,104 |" in lines


def test_render_table_without_memory_and_with_nan() -> None:
    empty = Measurement("e", "E", "rows", 0, 1.0)
    table = render_table([empty], [], None)
    assert "| E | 0 rows/s | n/a | n/a | 0 |" in table
    assert "Redis memory" not in table


def test_fmt_rate() -> None:
    assert fmt_rate(950.4) == "950"
    assert fmt_rate(12_345) == "12.3k"
    assert fmt_rate(512_000) == "512k"
    assert fmt_rate(math.nan) == "n/a"


def test_profile_summary_self_and_inclusive() -> None:
    lines = [
        "main;serve;authorize;build_plan 30",
        "main;serve;authorize;evalsha 50",
        "main;serve;health 20",
        "",
        "garbage line",
    ]
    total, own, inclusive = profile.summarize(lines, top=3)
    assert total == 100
    assert own == [("evalsha", 50), ("build_plan", 30), ("health", 20)]
    assert dict(inclusive)["main"] == 100
    text = profile.render(total, own, inclusive)
    assert "| 50.0 | `evalsha` |" in text


def test_profile_counts_lines_of_one_function_together() -> None:
    assert profile.function_of("run (asyncio/events.py:80)") == "run (asyncio/events.py)"
    total, own, _ = profile.summarize(["a (x.py:1);b (y.py:2) 3", "a (x.py:1);b (y.py:9) 4"])
    assert total == 7 and own == [("b (y.py)", 7)]
