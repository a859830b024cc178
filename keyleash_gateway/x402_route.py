"""`/x402/{path}`: a resource that answers HTTP 402 (x402 v2) is paid from the tenant's wallet
connection, within the key's policy.

forward unpaid → 402 with PAYMENT-REQUIRED → the cheapest requirement the gateway can price →
Authorize its price (scope `x402.pay`, vendor `x402`, the requirement as attributes; a
requirement the policy's constraints refuse is skipped for the next one) → DENY: the agent gets
Keyleash's answer and nothing is signed → ALLOW: the SDK signs the payment, the request is
retried with PAYMENT-SIGNATURE, and PAYMENT-RESPONSE's settlement is charged (its transaction as
the vendor_request_id). A payment the server refused releases the hold; a retry that got no
answer keeps it (outcome unknown). Authorize/Charge request ids derive from the payment nonce,
itself derived from the call (Idempotency-Key when given), so a replay is decided, paid and
counted once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from x402.schemas import PaymentRequired

from keyleash.vault.v1 import vault_pb2
from keyleash_core.money import Money
from keyleash_core.reasons import DenyReason
from keyleash_gateway import answers
from keyleash_gateway.answers import Reply
from keyleash_gateway.keyleash import (
    AuthorizeCall,
    CallRefused,
    ChargeCall,
    ConnectionMissing,
    Keyleash,
    KeyleashUnavailable,
    Upstream,
)
from keyleash_gateway.proxy import VendorRequest, request_ids
from keyleash_gateway.upstream import Answer, NotSent, OutcomeUnknown, UpstreamClient
from keyleash_gateway.upstream import request_headers as forwarded_headers
from keyleash_gateway.vendors.base import bearer
from keyleash_gateway.x402_wallet import (
    ChallengeUnreadable,
    Priced,
    payable,
    payment_nonce,
    read_challenge,
    read_settlement,
    settled_price,
    signed_header,
)

log = logging.getLogger("keyleash.gateway")

VENDOR = "x402"
SCOPE = "x402.pay"
_AGENT_MAY_NOT_SEND = frozenset({"payment-signature", "x-payment", "x-keyleash-key"})


class X402Call:
    """One per process; safe for concurrent use."""

    def __init__(self, keyleash: Keyleash, upstream: UpstreamClient) -> None:
        self._keyleash = keyleash
        self._upstream = upstream

    async def handle(self, request: VendorRequest) -> Reply:
        key = bearer(request.header_map) or request.header_map.get("X-Keyleash-Key", "")
        if not key:
            return answers.denied(DenyReason.KEY_UNKNOWN, "send the vault key as a Bearer token")
        wallet = await self._wallet(key)
        if isinstance(wallet, Reply):
            return wallet
        url = wallet.base_url.rstrip("/") + request.path
        url += f"?{request.query}" if request.query else ""
        headers = [
            (k, v)
            for k, v in forwarded_headers(request.headers, request.header_map, {})
            if k.lower() not in _AGENT_MAY_NOT_SEND
        ]
        try:
            first = await self._upstream.send(request.method, url, headers, request.body)
        except (NotSent, OutcomeUnknown):
            return answers.not_sent(VENDOR)
        challenge_header = _header(first, "PAYMENT-REQUIRED")
        if first.status != 402 or not challenge_header:
            return Reply(first.status, first.body, first.headers)  # free, or not x402
        try:
            challenge = read_challenge(challenge_header)
        except ChallengeUnreadable as error:
            return answers.bad_request(str(error))
        paying = _Paying(key, request, url, headers, challenge)
        return await self._pay(paying, wallet)

    async def _wallet(self, key: str) -> Upstream | Reply:
        """The wallet connection, for a key that could be used now and holds scope x402.pay
        (else nothing is sent)."""
        try:
            validity, wallet = await asyncio.gather(
                self._keyleash.validate_key(key), self._keyleash.upstream(key, VENDOR)
            )
        except ConnectionMissing:
            return answers.denied(DenyReason.VENDOR_DENIED, "this key's tenant has no x402 wallet")
        except KeyleashUnavailable as error:
            log.warning("vault unavailable for an x402 call: %s", error)
            return answers.unavailable("Keyleash could not decide this call; nothing was sent")
        if not validity.valid:
            reason = vault_pb2.DenyReason.Name(validity.reason).removeprefix("DENY_REASON_")
            code = DenyReason(reason)
            return answers.denied(code, code.lower().replace("_", " "))
        if SCOPE not in validity.key.scopes:  # even the unpaid request needs the scope
            return answers.denied(DenyReason.SCOPE_DENIED, f"scope {SCOPE!r} is not granted")
        if not wallet.base_url:  # x402 has no public default: the paid API's origin is needed
            return answers.denied(
                DenyReason.VENDOR_DENIED, "this tenant's x402 connection has no base URL"
            )
        return wallet

    async def _pay(self, paying: _Paying, wallet: Upstream) -> Reply:
        options = payable(paying.challenge)
        if not options:
            return answers.denied(
                DenyReason.CONSTRAINT_DENIED,
                "no payment requirement of this 402 is in an asset the gateway can price",
            )
        decided = await self._authorize_first(paying, options)
        if isinstance(decided, Reply):
            return decided
        priced, call, decision = decided
        try:
            name, value = await signed_header(
                wallet.secret, paying.challenge, priced.requirement, call.attributes["x402_nonce"]
            )
        except Exception as error:  # the SDK refused to sign: nothing was paid
            await self._settle(call, decision, Money("USD", 0), "", "not_signed")
            log.warning(
                "x402 payment not signed for key %s: %s", decision.key_id, type(error).__name__
            )
            return answers.bad_request(
                "the x402 wallet connection could not sign this payment; nothing was paid"
            )
        try:
            paid = await self._upstream.send(
                paying.request.method,
                paying.url,
                [*paying.headers, (name, value)],
                paying.request.body,
            )
        except NotSent:
            await self._settle(call, decision, Money("USD", 0), "", "not_sent")
            return answers.not_sent(VENDOR)
        except OutcomeUnknown:
            log.warning(
                "x402 outcome unknown: key %s hold %s kept",
                decision.key_id,
                decision.reservation_id,
            )
            return answers.outcome_unknown(VENDOR)
        settlement = read_settlement(_header(paid, "PAYMENT-RESPONSE"))
        if paid.status < 400 and settlement is not None and settlement.success:
            amount = settled_price(priced, settlement)
            await self._settle(call, decision, amount, settlement.transaction, "settled")
        elif paid.status < 400 and settlement is None:
            # Served, but no settlement said whether it was paid: the hold stays (fail safe).
            log.warning(
                "x402 answer without PAYMENT-RESPONSE: key %s hold %s kept",
                decision.key_id, decision.reservation_id,
            )  # fmt: skip
        elif _nonce_spent(paid):
            # A replay of a payment that went through before (maybe with its outcome unknown
            # here): its price is owed, charged under the same request id, so counted once.
            await self._settle(call, decision, priced.price, "", "settled")
        else:
            await self._settle(call, decision, Money("USD", 0), "", "refused")
        return Reply(paid.status, paid.body, paid.headers)

    async def _authorize_first(
        self, paying: _Paying, options: list[Priced]
    ) -> tuple[Priced, AuthorizeCall, vault_pb2.AuthorizeResponse] | Reply:
        """The first requirement the policy allows; a constraint denial tries the next one."""
        identity = request_ids(
            paying.key, VENDOR, paying.request.header_map.get("Idempotency-Key", "")
        )
        denial: Reply | None = None
        for priced in options:
            call = _authorize_call(paying, priced, identity)
            try:
                decision = await self._keyleash.authorize(call)
            except CallRefused as refused:
                return answers.refused(refused.status, refused.code, refused.message)
            except KeyleashUnavailable as error:
                log.warning("vault unavailable for an x402 payment: %s", error)
                return answers.unavailable(
                    "Keyleash could not decide this payment; nothing was paid"
                )
            if decision.decision == vault_pb2.DECISION_ALLOW:
                return priced, call, decision
            denial = _denial(decision)
            if decision.reason != vault_pb2.DENY_REASON_CONSTRAINT_DENIED:
                return denial
        assert denial is not None
        return denial

    async def _settle(
        self,
        call: AuthorizeCall,
        decision: vault_pb2.AuthorizeResponse,
        amount: Money,
        transaction: str,
        outcome: str,
    ) -> None:
        log.info(
            "x402 key=%s run=%s %s %s payee=%s amount=%s nonce=%s settlement=%s outcome=%s",
            decision.key_id, call.agent_run_id or "-", call.method, call.path,
            call.attributes["x402_payee"], amount, call.attributes["x402_nonce"],
            transaction or "-", outcome,
        )  # fmt: skip
        if not decision.reservation_id and amount.micros == 0:
            return
        suffix = "-charge" if outcome == "settled" else "-release"
        await self._keyleash.charge(
            ChargeCall(
                request_id=call.request_id + suffix,
                key_id=decision.key_id,
                reservation_id=decision.reservation_id,
                amount=amount,
                vendor=VENDOR,
                endpoint=f"{call.method} {call.path}",
                agent_run_id=call.agent_run_id,
                vendor_request_id=transaction,
                cost_source="x402_settlement" if outcome == "settled" else "released",
                reason="gateway x402",
                attributes=call.attributes | {"x402_settlement": transaction, "outcome": outcome},
            )
        )


class _Paying:
    """One call being paid: the agent's request and the challenge it met."""

    def __init__(
        self,
        key: str,
        request: VendorRequest,
        url: str,
        headers: list[tuple[str, str]],
        challenge: PaymentRequired,
    ) -> None:
        self.key = key
        self.request = request
        self.url = url
        self.headers = headers
        self.challenge = challenge


def _authorize_call(paying: _Paying, priced: Priced, identity: str) -> AuthorizeCall:
    requirement = priced.requirement
    nonce = payment_nonce(identity, requirement)
    resource = paying.challenge.resource.url if paying.challenge.resource else paying.url
    return AuthorizeCall(
        key=paying.key,
        scope=SCOPE,
        vendor=VENDOR,
        method=paying.request.method,
        path=paying.request.path,
        estimate=priced.price,
        agent_run_id=paying.request.agent_run_id,
        attributes={
            "x402_scheme": requirement.scheme,
            "x402_network": str(requirement.network),
            "x402_asset": requirement.asset,
            "x402_asset_symbol": priced.asset_symbol,
            "x402_payee": requirement.pay_to,
            "x402_resource": resource,
            "x402_amount": requirement.amount,
            "x402_nonce": nonce,
        },
        request_id="x402-" + hashlib.sha256(nonce.encode()).hexdigest()[:40],
    )


def _nonce_spent(answer: Answer) -> bool:
    """The server refused the payment because its authorization was used already."""
    header = _header(answer, "PAYMENT-REQUIRED")
    if answer.status != 402 or not header:
        return False
    try:
        reason = read_challenge(header).error or ""
    except ChallengeUnreadable:
        return False
    return reason.endswith("nonce_already_used")


def _header(answer: Answer, name: str) -> str:
    wanted = name.lower()
    return next((v for k, v in answer.headers if k.lower() == wanted), "")


def _denial(decision: vault_pb2.AuthorizeResponse) -> Reply:
    code = DenyReason(vault_pb2.DenyReason.Name(decision.reason).removeprefix("DENY_REASON_"))
    retry = decision.retry_after.seconds + decision.retry_after.nanos / 1e9
    message = decision.message or code.lower().replace("_", " ")
    return answers.denied(code, message, retry, decision.approval)
