"""Container hygiene without a docker engine: the image installs runtime dependencies only and
runs as non-root; the build context leaves local state out; docker-compose.yml is valid YAML
whose variables are the ones the README exports and the services read."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from scripts.runtime_lock import runtime_lock

ROOT = Path(__file__).resolve().parents[2]
DEV_TOOLS = ("pytest", "mypy", "ruff", "hypothesis", "grpcio-tools", "PyYAML", "limits", "py-spy")
_VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")


def _sources() -> str:
    """The text of every Python module the services and the CLI are made of."""
    packages = ("keyleash_core", "vault_service", "metering_service", "keyleash_ops")
    return "\n".join(p.read_text() for pkg in packages for p in (ROOT / pkg).rglob("*.py"))


def test_runtime_lock_is_the_runtime_part_of_requirements_lock() -> None:
    committed = (ROOT / "requirements-runtime.lock").read_text()
    assert committed == runtime_lock(), "run scripts/runtime_lock.py > requirements-runtime.lock"
    pins = {line.split("==")[0] for line in committed.splitlines() if "==" in line}
    assert {"grpcio", "redis", "asyncpg", "protobuf"} <= pins
    assert not pins & set(DEV_TOOLS)


def test_image_installs_runtime_dependencies_only_and_runs_as_non_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install (.*)", dockerfile)
    assert "-r requirements-runtime.lock" in installs
    assert not any("requirements.lock" in line or "[dev]" in line for line in installs)
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    for source in re.findall(r"^COPY (\S+)", dockerfile, re.MULTILINE):
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is missing"


def test_build_context_leaves_local_state_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", ".git", "node_modules", "results"} <= ignored


def test_compose_file_is_valid_and_its_variables_are_known() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert set(services) == {
        "redis", "postgres", "vault", "metering", "gateway", "usage-hooks", "approvals", "console"
    }  # fmt: skip
    for name in ("vault", "metering"):
        service = services[name]
        assert service["build"] == "." and service["command"] == ["python", "-m", f"{name}_service"]
        assert set(service["depends_on"]) == {"redis", "postgres"}
    sources = _sources()
    for name in ("vault", "metering"):
        for variable in services[name]["environment"]:
            assert variable.startswith("KEYLEASH_") and variable in sources, variable
    # Interpolated variables: each has a default, or stops compose with a message (":?"), and
    # the README's compose section exports the required ones.
    readme = (ROOT / "README.md").read_text()
    for variable, rule in _VARIABLE.findall(text):
        assert rule, f"${{{variable}}} has neither a default nor an error message"
        if rule.startswith(":?"):
            assert f"export {variable}=" in readme, variable
    assert set(compose["volumes"]) == {"redis-data", "postgres-data", "gateway-state"}
    assert "gateway-state:/var/lib/keyleash-gateway" in services["gateway"]["volumes"]
    assert services["gateway"]["environment"]["KEYLEASH_GATEWAY_STATE_DIR"] == (
        "/var/lib/keyleash-gateway"
    )
