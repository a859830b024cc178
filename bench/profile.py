"""Summarises a py-spy collapsed-stack profile ("frame;frame;frame count" per line)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_LINE = re.compile(r":\d+\)$")


def function_of(frame: str) -> str:
    """`f (path.py:12)` -> `f (path.py)`: lines of one function count together."""
    return _LINE.sub(")", frame)


def summarize(
    lines: Iterable[str], top: int = 25
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(total samples, top frames by self samples, top frames by inclusive samples)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in lines:
        line = line.strip()
        if not line:
            continue
        stack, _, count_text = line.rpartition(" ")
        try:
            count = int(count_text)
        except ValueError:
            continue
        frames = [function_of(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return total, own.most_common(top), inclusive.most_common(top)


def render(total: int, own: list[tuple[str, int]], inclusive: list[tuple[str, int]]) -> str:
    def block(title: str, rows: list[tuple[str, int]]) -> list[str]:
        out = [f"## {title}", "", "| % samples | frame |", "|---:|---|"]
        for frame, count in rows:
            share = 100 * count / total if total else 0.0
            out.append(f"| {share:.1f} | `{frame}` |")
        return [*out, ""]

    return "\n".join([f"{total} samples", "", *block("self", own), *block("inclusive", inclusive)])
