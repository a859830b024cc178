"""The blocking clients in keyleash/client/_sync must be what scripts/unasync.py makes of _async."""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keyleash.client import (
    MeteringClient,
    SyncMeteringClient,
    SyncVaultClient,
    VaultClient,
    guard,
    sync_guard,
)

ROOT = Path(__file__).resolve().parents[2]


def test_generated_sync_clients_are_not_stale() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "unasync.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def _public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    return {
        name: member
        for name, member in vars(cls).items()
        if callable(member) and not name.startswith("_")
    }


@pytest.mark.parametrize(
    ("async_cls", "sync_cls"),
    [(VaultClient, SyncVaultClient), (MeteringClient, SyncMeteringClient)],
)
def test_each_async_method_has_a_blocking_twin(async_cls: type, sync_cls: type) -> None:
    async_methods = _public_methods(async_cls)
    sync_methods = _public_methods(sync_cls)
    assert sorted(sync_methods) == sorted(async_methods)
    for name, method in sync_methods.items():
        assert not inspect.iscoroutinefunction(method), name
        assert not inspect.isasyncgenfunction(method), name
        parameters = inspect.signature(method).parameters.keys()
        assert parameters == inspect.signature(async_methods[name]).parameters.keys(), name


def test_sync_guard_is_the_blocking_guard() -> None:
    parameters = inspect.signature(sync_guard).parameters.keys()
    assert parameters == inspect.signature(guard).parameters.keys()
