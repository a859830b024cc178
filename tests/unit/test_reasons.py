"""Every reason sent on the wire is a value of the service's proto enum.

Errors carry a `keyleash_core.reasons.ErrorReason` and decisions a `DenyReason`; these tests read
the code (as asyncpg's tests/test__sourcecode.py does) and fail when a package can send a reason
its service's proto lacks, or passes a reason as a free string.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from keyleash.metering.v1 import metering_pb2
from keyleash.vault.v1 import vault_pb2
from keyleash_core.reasons import DenyReason, ErrorReason

ROOT = Path(__file__).resolve().parents[2]


def proto_names(enum: object, prefix: str) -> set[str]:
    names = {name.removeprefix(prefix) for name in enum.keys()}  # type: ignore[attr-defined]
    return names - {"UNSPECIFIED"}


VAULT = proto_names(vault_pb2.ErrorReason, "ERROR_REASON_")
METERING = proto_names(metering_pb2.ErrorReason, "ERROR_REASON_")
# package -> the proto enums its errors can reach (the shared core serves both services)
REACHES = {
    "keyleash_core": (VAULT, METERING),
    "vault_service": (VAULT,),
    "metering_service": (METERING,),
}


def enum_members_used(source: str, enum_name: str) -> set[str]:
    """Names X of every `enum_name.X` in the source."""
    return {
        node.attr
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == enum_name
    }


def string_reasons(source: str) -> list[int]:
    """Lines where a call passes `reason=` a string literal (a reason outside the enums)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg == "reason"
        and isinstance(keyword.value, ast.Constant)
        and isinstance(keyword.value.value, str)
    ]


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_python_enums_are_the_protos_values() -> None:
    assert set(ErrorReason) <= VAULT | METERING
    assert VAULT | METERING <= {r.value for r in ErrorReason}
    assert {r.value for r in DenyReason} == proto_names(vault_pb2.DenyReason, "DENY_REASON_")


@pytest.mark.parametrize("package", sorted(REACHES))
def test_every_error_reason_a_package_sends_is_in_its_services_proto(package: str) -> None:
    missing = []
    for path in sources(package):
        for name in enum_members_used(path.read_text("utf-8"), "ErrorReason"):
            for proto in REACHES[package]:
                if name not in proto:
                    missing.append(f"{path.relative_to(ROOT)}: ErrorReason.{name}")
    assert missing == []


@pytest.mark.parametrize("package", sorted(REACHES))
def test_no_reason_is_a_free_string(package: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sources(package)
        for line in string_reasons(path.read_text("utf-8"))
    ]
    assert found == []


def test_the_decision_scripts_deny_only_with_contract_reasons() -> None:
    lua = "\n".join(p.read_text("utf-8") for p in (ROOT / "keyleash_core/redis/lua").glob("*.lua"))
    literals = set(re.findall(r"(?:deny\(|reason = )'([A-Z_]+)'", lua))
    assert literals, "the scan found no reason literal in the Lua scripts"
    assert literals <= {r.value for r in DenyReason}


def test_the_checks_can_fail() -> None:
    """Checks that cannot fail prove nothing: each one sees a violation in a made-up source."""
    assert string_reasons('raise NotFound("x", reason="NOPE")\n') == [1]
    assert enum_members_used("raise X(reason=ErrorReason.NOPE)\n", "ErrorReason") == {"NOPE"}
    assert "NOPE" not in VAULT | METERING
