"""The committed generated code must match what the protos generate now."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "clients" / "python" / "keyleash"


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = sorted(
        p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.suffix in (".py", ".pyi")
    )
    assert fresh, "protoc generated nothing"
    stale = [
        str(rel)
        for rel in fresh
        if not (ROOT / "clients" / "python" / rel).exists()
        or not filecmp.cmp(tmp_path / rel, ROOT / "clients" / "python" / rel, shallow=False)
    ]
    assert not stale, f"regenerate with `python scripts/gen_protos.py`: stale {stale}"
    committed = {
        p.relative_to(GENERATED.parent)
        for p in GENERATED.rglob("*_pb2*.py*")
        if "__pycache__" not in p.parts  # bytecode of an earlier run is not generated code
    }
    assert committed <= set(fresh), f"generated files without a proto: {committed - set(fresh)}"
