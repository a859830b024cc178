"""Generate the Python code for protos/ into clients/python (or another folder).

The import path of the generated code equals the proto package (`keyleash.vault.v1.vault_pb2`),
because protoc runs with `-I protos` over files laid out by package (AIP-191).
Besides protoc's messages and their `.pyi`, mypy-protobuf's `protoc-gen-mypy_grpc` writes typed
stubs for the gRPC modules (`*_pb2_grpc.pyi`), so `VaultServiceStub(channel)` is checked by mypy.
Run: python scripts/gen_protos.py [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc_tools  # type: ignore[import-untyped]  # grpcio-tools ships no types or stubs
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
DEFAULT_OUT = ROOT / "clients" / "python"
# mypy-protobuf's plugin, next to the interpreter running this script (the venv's bin/), so it
# is found without the venv on PATH (the staleness test runs this script by sys.executable).
MYPY_GRPC_PLUGIN = Path(sys.executable).parent / "protoc-gen-mypy_grpc"
PACKAGE_DOC = '"""Generated from protos/{path}.proto by scripts/gen_protos.py; do not edit."""\n'


def proto_files() -> list[Path]:
    return sorted(PROTOS.rglob("*.proto"))


def generate(out: Path) -> None:
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    files = [str(p.relative_to(PROTOS)) for p in proto_files()]
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={MYPY_GRPC_PLUGIN}",
        f"--mypy_grpc_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    # Packages for every generated folder, so `import keyleash.vault.v1` works without namespace
    # package surprises; the top-level keyleash/__init__.py is hand-written and left alone.
    for proto in proto_files():
        rel = proto.parent.relative_to(PROTOS)
        for depth in range(2, len(rel.parts) + 1):
            package_dir = out / Path(*rel.parts[:depth])
            init = package_dir / "__init__.py"
            if not init.exists():
                init.write_text(PACKAGE_DOC.format(path="/".join(rel.parts[:depth]) + "/*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    generate(out)
    print(f"generated {len(proto_files())} protos into {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
