"""`keyleash demo --json`: the demo's transcript as one JSON document."""

from __future__ import annotations

import re
from typing import Any


def demo_document(
    tenant: str, calls: list[dict[str, Any]], transcript: str, error: str | None
) -> dict[str, Any]:
    """--json: the demo as one document: each step's title, its lines and its calls."""
    steps: list[dict[str, Any]] = []
    intro: list[str] = []
    for line in transcript.splitlines():
        header = re.match(r"^\[(\d+)\] (.*)$", line)
        if header:
            steps.append({"step": int(header[1]), "title": header[2], "lines": [], "calls": []})
        elif line.strip():
            (steps[-1]["lines"] if steps else intro).append(line.strip())
    for call in calls:
        for step in steps:
            if step["step"] == call["step"]:
                step["calls"].append({k: v for k, v in call.items() if k != "step"})
    document: dict[str, Any] = {"tenant": tenant, "ok": error is None, "intro": intro}
    document["steps"] = steps
    if error is not None:
        document["error"] = error
    return document
