"""Generate the blocking Python clients from the async ones.

`clients/python/keyleash/client/_async/*.py` is the source; `_sync/*.py` is derived from it line by
line with the word-bounded substitutions below (encode/httpcore does the same with its own
`scripts/unasync.py`), then its imports sorted and its lines formatted by ruff, as `./dev lint`
wants them. Edit only
`_async/`; after a change run `python scripts/unasync.py`. `--check` exits 1 naming the stale
files instead of writing them (tests/unit/test_unasync.py runs it).

What differs between the two I/O stacks (grpc.aio vs blocking grpc channels, their error types,
the retry sleep) lives in hand-written `_base.py` / `_transport.py`, in Async*/Sync* pairs that
the substitutions switch between.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "clients" / "python" / "keyleash" / "client"
ASYNC_DIR = CLIENT / "_async"
SYNC_DIR = CLIENT / "_sync"
HEADER = "# Generated from {source} by scripts/unasync.py; do not edit: edit the async source.\n"

# (pattern, replacement), applied in order to every line, each pattern bounded by \b.
SUBSTITUTIONS: list[tuple[str, str]] = [
    # The async package's imports of itself become the sync package's.
    (r"keyleash\.client\._async", "keyleash.client._sync"),
    # Public names: the blocking twin of each async client and of guard().
    (r"VaultClient", "SyncVaultClient"),
    (r"MeteringClient", "SyncMeteringClient"),
    (r"def guard\(", "def sync_guard("),
    (r"UsageWebhookSender", "SyncUsageWebhookSender"),
    # The I/O halves in _base.py / _transport.py.
    (r"AsyncClientBase", "SyncClientBase"),
    (r"AsyncRequests", "Requests"),
    (r"AsyncWebhookPoster", "SyncWebhookPoster"),
    # Python's async vocabulary.
    (r"AsyncIterator", "Iterator"),
    (r"asynccontextmanager", "contextmanager"),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"async def", "def"),
    (r"async with", "with"),
    (r"async for", "for"),
    (r"await ", ""),
]
COMPILED = [(re.compile(rf"\b{pattern}"), replacement) for pattern, replacement in SUBSTITUTIONS]


def unasync_line(line: str) -> str:
    for pattern, replacement in COMPILED:
        line = pattern.sub(replacement, line)
    return line


def ruff(text: str, path: Path, *command: str) -> str:
    """`text` after a ruff command that reads stdin (the pinned ruff, next to this interpreter)."""
    executable = Path(sys.executable).parent / "ruff"
    done = subprocess.run(
        [str(executable), *command, "--stdin-filename", str(path), "-"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return done.stdout


def tidy(text: str, path: Path) -> str:
    """Renamed imports sorted again, lines joined or split again: what ruff would accept."""
    sorted_imports = ruff(text, path, "check", "--select", "I", "--fix", "--exit-zero", "--quiet")
    return ruff(sorted_imports, path, "format")


def modules(folder: Path) -> set[Path]:
    """The modules of a package folder; each package's __init__.py is written by hand."""
    return {p for p in folder.glob("*.py") if p.name != "__init__.py"}


def generate() -> dict[Path, str]:
    """Each sync module's path and the text it should have."""
    out: dict[Path, str] = {}
    for source in sorted(modules(ASYNC_DIR)):
        target = SYNC_DIR / source.name
        lines = source.read_text().splitlines(keepends=True)
        header = HEADER.format(source=source.relative_to(CLIENT).as_posix())
        body = "".join(unasync_line(line) for line in lines)
        out[target] = tidy(header + body, target)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report stale files")
    check = parser.parse_args().check
    wanted = generate()
    orphans = sorted(modules(SYNC_DIR) - set(wanted))
    stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
    if check:
        problems = [p.relative_to(ROOT).as_posix() for p in stale + orphans]
        if problems:
            raise SystemExit(f"unasync: stale, run `python scripts/unasync.py`: {problems}")
        return
    for path in orphans:
        path.unlink()
    for path in stale:
        path.write_text(wanted[path])
    print(f"unasync: {len(stale)} of {len(wanted)} files in {SYNC_DIR} rewritten", file=sys.stderr)


if __name__ == "__main__":
    main()
