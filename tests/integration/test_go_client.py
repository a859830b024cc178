"""The Go client: build clients/go/example offline (GOPATH mode) and run it against the servers.

Needs Debian's Go toolchain and Go gRPC packages; without them this test FAILS (it is not
skipped), so a CI image that lacks them is noticed:

    apt-get install -y golang-go golang-google-grpc-dev golang-google-protobuf-dev \
        golang-github-golang-protobuf-1-5-dev protoc-gen-go protoc-gen-go-grpc protobuf-compiler
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from keyleash.client import MeteringClient, VaultClient
from keyleash.vault.v1 import vault_pb2
from tests.conftest import ADMIN_TOKEN, System

ROOT = Path(__file__).resolve().parents[2]
APT_LINE = (
    "apt-get install -y golang-go golang-google-grpc-dev golang-google-protobuf-dev "
    "golang-github-golang-protobuf-1-5-dev protoc-gen-go protoc-gen-go-grpc protobuf-compiler"
)


async def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    # Asynchronously: the servers answer from this test's event loop.
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode()


async def build_example(out: Path) -> Path:
    if shutil.which("go") is None:
        pytest.fail(f"`go` is not on PATH: install Debian's Go packages: {APT_LINE}")
    code, output = await run("bash", str(ROOT / "clients" / "go" / "build.sh"), str(out))
    assert code == 0, f"clients/go/build.sh failed:\n{output}"
    return out / "example"


@pytest.mark.timeout(300)
async def test_go_example_mints_authorizes_and_charges(
    tmp_path: Path, system: System, tenant: str
) -> None:
    go_example = await build_example(tmp_path)
    targets = ["-vault", system.vault_address, "-metering", system.metering_address]
    code, output = await run(
        str(go_example),
        *targets,
        "-tenant",
        tenant,
        "-estimate-micros",
        "2000000",
        "-actual-micros",
        "1500000",
        env={"KEYLEASH_TOKEN": ADMIN_TOKEN},
    )
    assert code == 0, output
    assert f"1. mint: root key in tenant {tenant} tenants/{tenant}/keys/" in output
    assert "2. authorize: ALLOW (estimate 2.000000 USD, reservation " in output
    assert "3. charge: 1.500000 USD recorded as event " in output
    assert "kind KIND_CHARGE" in output and "duplicate false" in output

    async with (
        VaultClient(system.vault_address, token=ADMIN_TOKEN) as vault,
        MeteringClient(system.metering_address, token=ADMIN_TOKEN) as metering,
    ):
        spend = await metering.get_spend(tenant_id=tenant)
        assert [(t.currency_code, t.micros) for t in spend.totals] == [("USD", 1_500_000)]

        # With a parent key's secret instead of the admin token, it mints a child of that key.
        parent = await vault.mint_key(
            tenant_id=tenant,
            agent_id="parent",
            scopes=["api.call"],
            policy=vault_pb2.Policy(
                rate_limits=[vault_pb2.RateLimit(limit=100, window={"seconds": 60})],
                spend_caps=[
                    vault_pb2.SpendCap(
                        limit={"currency_code": "USD", "micros": 10_000_000},
                        window=vault_pb2.SpendCap.WINDOW_CALENDAR_DAY,
                    )
                ],
            ),
        )
        code, output = await run(
            str(go_example), *targets, "-token", parent.secret, "-actual-micros", "250000"
        )
        assert code == 0, output
        assert "1. mint: child key of the token's key" in output
        assert "2. authorize: ALLOW" in output and "3. charge: 0.250000 USD" in output
        children = [
            k async for k in vault.iter_keys(tenant_id=tenant, parent_key_id=parent.key.key_id)
        ]
        assert len(children) == 1
        spend = await metering.get_spend(key_name=parent.key.name)
        assert [(t.currency_code, t.micros) for t in spend.totals] == [("USD", 250_000)]
