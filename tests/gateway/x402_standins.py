"""A paid resource built with the x402 SDK's own FastAPI middleware, served by uvicorn on a
local port, and a facilitator stand-in that verifies the signed EIP-3009 authorization by
recovering its signer (eth-keys, the SDK's own EIP-712 hash) and settles without a chain: a
nonce settles once, like the token contract's authorizationState."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.datatypes import Signature
from fastapi import FastAPI, Request, Response
from x402 import x402ResourceServer
from x402.http.middleware.fastapi import payment_middleware, set_settlement_overrides
from x402.mechanisms.evm.constants import ERR_NONCE_ALREADY_USED
from x402.mechanisms.evm.eip712 import hash_eip3009_authorization
from x402.mechanisms.evm.exact import ExactEvmServerScheme
from x402.mechanisms.evm.types import ExactEIP3009Authorization, UptoPermit2Payload
from x402.mechanisms.evm.upto import UptoEvmServerScheme
from x402.mechanisms.evm.upto.client import _build_upto_permit2_typed_data
from x402.schemas import (
    PaymentPayload,
    PaymentRequirements,
    SettleResponse,
    SupportedKind,
    SupportedResponse,
    VerifyResponse,
)

NETWORK = "eip155:84532"  # Base Sepolia: USDC in the SDK's asset table
PAYEE = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
PRICES = {"cheap": "$0.002", "pricey": "$6.00", "slow": "$0.002"}
METERED_MAX, METERED_USED = "$0.01", "3000"  # upto: at most 0.01 USDC, 0.003 used
OTHER_PAYEE = "0x3333333333333333333333333333333333333333"
FACILITATOR_ADDRESS = "0x1111111111111111111111111111111111111111"


@dataclass
class Facilitator:
    """The FacilitatorClient protocol of the SDK, in process."""

    verified: list[str] = field(default_factory=list)  # nonces whose signature checked out
    settled: dict[str, str] = field(default_factory=dict)  # nonce -> transaction
    payers: list[str] = field(default_factory=list)  # the recovered signer of each settlement
    refuse_settlement: bool = False
    settled_one: asyncio.Event = field(default_factory=asyncio.Event)

    def get_supported(self) -> SupportedResponse:
        upto_extra = {"facilitatorAddress": FACILITATOR_ADDRESS}
        return SupportedResponse(
            kinds=[
                SupportedKind(x402_version=2, scheme="exact", network=NETWORK),
                SupportedKind(x402_version=2, scheme="upto", network=NETWORK, extra=upto_extra),
            ]
        )

    async def verify(self, payload: Any, requirements: Any) -> VerifyResponse:
        payer = _signer(payload, requirements)
        if payer is None:
            return VerifyResponse(is_valid=False, invalid_reason="invalid_signature")
        amount, payee, nonce = _terms(payload)
        if int(amount) < int(requirements.amount):
            return VerifyResponse(is_valid=False, invalid_reason="insufficient_amount")
        if payee.lower() != requirements.pay_to.lower():
            return VerifyResponse(is_valid=False, invalid_reason="wrong_payee")
        if nonce in self.settled:
            return VerifyResponse(is_valid=False, invalid_reason=ERR_NONCE_ALREADY_USED)
        self.verified.append(nonce)
        return VerifyResponse(is_valid=True, payer=payer)

    async def settle(self, payload: Any, requirements: Any) -> SettleResponse:
        _, _, nonce = _terms(payload)
        if self.refuse_settlement or nonce in self.settled:
            return SettleResponse(
                success=False, error_reason="settlement_refused", transaction="", network=NETWORK
            )
        transaction = "0x" + hashlib.sha256(nonce.encode()).hexdigest()
        self.settled[nonce] = transaction
        self.settled_one.set()
        payer = _signer(payload, requirements)
        self.payers.append(str(payer))
        return SettleResponse(
            success=True,
            transaction=transaction,
            network=NETWORK,
            payer=payer,
            amount=requirements.amount,
        )


def _terms(payload: PaymentPayload) -> tuple[str, str, str]:
    """(amount, payee, nonce as 0x-hex) of an exact or upto payload."""
    if payload.accepted.scheme == "upto":
        given = payload.payload["permit2Authorization"]
        nonce = "0x" + int(given["nonce"]).to_bytes(32, "big").hex()
        return given["permitted"]["amount"], given["witness"]["to"], nonce
    given = payload.payload["authorization"]
    return given["value"], given["to"], given["nonce"]


def _signer(payload: PaymentPayload, requirements: PaymentRequirements) -> str | None:
    """The address that signed the authorization (the SDK's EIP-712 typed data), or None."""
    if payload.accepted.scheme == "upto":
        return _upto_signer(payload, requirements)
    given = payload.payload["authorization"]
    authorization = ExactEIP3009Authorization(
        from_address=given["from"],
        to=given["to"],
        value=given["value"],
        valid_after=given["validAfter"],
        valid_before=given["validBefore"],
        nonce=given["nonce"],
    )
    digest = hash_eip3009_authorization(
        authorization,
        int(str(requirements.network).split(":")[1]),
        requirements.asset,
        requirements.extra["name"],
        requirements.extra["version"],
    )
    raw = bytes.fromhex(payload.payload["signature"].removeprefix("0x"))
    try:
        signature = Signature(raw[:64] + bytes([raw[64] - 27 if raw[64] >= 27 else raw[64]]))
        signer = signature.recover_public_key_from_msg_hash(digest).to_checksum_address()
    except Exception:
        return None
    return str(signer) if signer.lower() == given["from"].lower() else None


def _upto_signer(payload: PaymentPayload, requirements: PaymentRequirements) -> str | None:
    parsed = UptoPermit2Payload.from_dict(payload.payload)
    chain_id = int(str(requirements.network).split(":")[1])
    domain, fields, _primary, message = _build_upto_permit2_typed_data(
        parsed.permit2_authorization, chain_id
    )
    types = {
        name: [{"name": f.name, "type": f.type} for f in group] for name, group in fields.items()
    }
    signable = encode_typed_data(domain_data=domain, message_types=types, message_data=message)
    try:
        signer = Account.recover_message(signable, signature=payload.payload["signature"])
    except Exception:
        return None
    claimed = parsed.permit2_authorization.from_address
    return str(signer) if signer.lower() == claimed.lower() else None


@dataclass
class PaidResource:
    url: str
    facilitator: Facilitator
    seen: list[dict[str, str]]  # headers of every request the resource received
    slow_answers: asyncio.Event  # /paid/slow answers once this is set


def resource_app(
    facilitator: Facilitator, seen: list[dict[str, str]], slow_answers: asyncio.Event
) -> FastAPI:
    server = x402ResourceServer(facilitator)
    server.register(NETWORK, ExactEvmServerScheme())  # type: ignore[no-untyped-call, arg-type]
    server.register(NETWORK, UptoEvmServerScheme())  # type: ignore[no-untyped-call, arg-type]
    routes: Any = {
        f"GET /paid/{name}": {
            "accepts": {"scheme": "exact", "payTo": PAYEE, "price": price, "network": NETWORK}
        }
        for name, price in PRICES.items()
    }
    routes["GET /choice"] = {  # the cheaper offer pays someone else
        "accepts": [
            {"scheme": "exact", "payTo": OTHER_PAYEE, "price": "$0.001", "network": NETWORK},
            {"scheme": "exact", "payTo": PAYEE, "price": "$0.002", "network": NETWORK},
        ]
    }
    routes["GET /metered"] = {
        "accepts": {"scheme": "upto", "payTo": PAYEE, "price": METERED_MAX, "network": NETWORK}
    }
    app = FastAPI()
    pay = payment_middleware(routes, server)

    @app.middleware("http")
    async def record_then_pay(request: Request, call_next: Any) -> Any:
        seen.append(dict(request.headers))
        return await pay(request, call_next)

    @app.get("/paid/{name}")
    async def paid(name: str) -> dict[str, str]:
        if name == "slow":
            await slow_answers.wait()
        return {"report": f"the {name} answer"}

    @app.get("/metered")
    async def metered(response: Response) -> dict[str, str]:
        set_settlement_overrides(response, {"amount": METERED_USED})  # used less than the max
        return {"report": "metered"}

    @app.get("/choice")
    async def choice() -> dict[str, str]:
        return {"report": "chosen"}

    @app.get("/free")
    async def free() -> dict[str, str]:
        return {"report": "free"}

    return app


class _Server(uvicorn.Server):
    """uvicorn's server, saying when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.up = asyncio.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        self.up.set()


@asynccontextmanager
async def serve_resource() -> AsyncIterator[PaidResource]:
    facilitator = Facilitator()
    seen: list[dict[str, str]] = []
    slow_answers = asyncio.Event()
    config = uvicorn.Config(
        resource_app(facilitator, seen, slow_answers), host="127.0.0.1", port=0, log_level="warning",
        lifespan="off", access_log=False,
    )  # fmt: skip
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    up = asyncio.create_task(server.up.wait())
    await asyncio.wait([task, up], return_when=asyncio.FIRST_COMPLETED)
    if not up.done():
        up.cancel()
        task.result()  # it failed to start: say why
        raise RuntimeError("the paid resource did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield PaidResource(f"http://127.0.0.1:{port}", facilitator, seen, slow_answers)
    finally:
        server.should_exit = True
        await task
