"""The direction of dependencies, enforced (in the spirit of asyncpg's tests/test__sourcecode.py).

keyleash_core is the runtime both services share: it imports neither service, nor the operations
package, nor the agents' client. The two services do not import each other, no service imports
the operations package, and the gateway and the console reach the services only through their gRPC clients. Imports inside functions count too (they once hid a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> the top-level names (or dotted prefixes) it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "keyleash_core": ("vault_service", "metering_service", "keyleash_ops", "keyleash.client"),
    "vault_service": ("metering_service", "keyleash_ops", "keyleash.client"),
    "metering_service": ("vault_service", "keyleash_ops", "keyleash.client"),
    # The gateway is a client of both services over gRPC, never of their insides.
    "keyleash_gateway": ("vault_service", "metering_service", "keyleash_ops"),
    # So is the MCP server: agents' tools over the Python client, acting with the agent's key.
    "keyleash_mcp": ("vault_service", "metering_service", "keyleash_ops", "keyleash_core"),
    # So is the usage webhook receiver (of Metering), and it shares nothing with the gateway.
    "keyleash_usage_hooks": (
        "vault_service",
        "metering_service",
        "keyleash_ops",
        "keyleash_gateway",
    ),
    # So is the approvals endpoint: it passes signed links to the Vault over gRPC.
    "keyleash_approvals": ("vault_service", "metering_service", "keyleash_ops"),
    # So is the console; and it is no part of the gateway either.
    "keyleash_console": ("vault_service", "metering_service", "keyleash_ops", "keyleash_gateway"),
}


def imported_modules(source: str) -> list[tuple[int, str]]:
    """Every module an import statement names (absolute imports), with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    problems = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in imported_modules(path.read_text("utf-8")):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return problems


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_nothing_above_it(package: str) -> None:
    assert violations(package, FORBIDDEN[package]) == []


def test_the_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    """A check that cannot fail is no check: an import hidden in a function is found."""
    source = "def start():\n    from vault_service.server import create_server\n"
    assert (2, "vault_service.server") in imported_modules(source)
    assert (1, "keyleash.client") in imported_modules("import keyleash.client\n")
    assert (1, "keyleash.client") in imported_modules("from keyleash import client\n")
