"""`python -m bench.provision`: ProvisionAgent of the shipped `agent-per-vendor` template (six
vendor-locked keys, one transaction) against a vault process on devstores, one caller at a time;
prints p50/p99 and, as the floor measured in the same run, one plain MintKey. Never asserted."""

from __future__ import annotations

import argparse
import time
import uuid

import grpc

from bench.stats import percentile
from bench.system import start_system
from keyleash.vault.v1 import vault_pb2, vault_pb2_grpc


def _time(call: object, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.provision")
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args(argv)
    system = start_system(None, None)
    try:
        vault = system.start_service("vault", "vault_service", {})
        metadata = (("authorization", f"Bearer {system.admin_token}"),)
        with grpc.insecure_channel(vault.address) as channel:
            stub = vault_pb2_grpc.VaultServiceStub(channel)

            def provision() -> None:
                reply = stub.ProvisionAgent(
                    vault_pb2.ProvisionAgentRequest(
                        tenant_id="bench", agent_id="agent-" + uuid.uuid4().hex[:8],
                        template="policyTemplates/agent-per-vendor",
                        request_id=uuid.uuid4().hex,
                    ),
                    metadata=metadata,
                )  # fmt: skip
                assert len(reply.keys) == 6

            def mint() -> None:
                stub.MintKey(
                    vault_pb2.MintKeyRequest(tenant_id="bench", agent_id="one", scopes=["x"]),
                    metadata=metadata,
                )

            _time(provision, 20)  # warm-up
            _time(mint, 20)
            provisioned, minted = _time(provision, args.count), _time(mint, args.count)
        for label, samples in (
            ("ProvisionAgent (6 keys)", provisioned),
            ("MintKey (1 key)", minted),
        ):
            print(f"{label:24} p50 {percentile(samples, 50):7.2f} ms   "
                  f"p99 {percentile(samples, 99):7.2f} ms   n={len(samples)}")  # fmt: skip
    finally:
        system.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
