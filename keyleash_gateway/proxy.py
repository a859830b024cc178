"""The gateway's one use case: authorize → forward → charge, for one vendor request.

Fail closed: nothing is forwarded unless Vault answered ALLOW and handed over the secret. The
hold Authorize placed is settled from the vendor's answer, released (charge 0) when the vendor
definitely did nothing, and kept when the outcome is unknown, until a retry with the same
Idempotency-Key settles it (its Authorize and Charge request_ids are derived from that key, so
Vault decides it once and Metering counts it once).

A streamed answer (text/event-stream) is relayed chunk by chunk as it arrives (streaming.py)
and charged when it ends, from what the vendor's meter read in it; any other answer is read
whole and charged before it is released, so an answer the agent saw is a charge Keyleash holds:
on the gateway's disk with a state directory (sent to Metering in the background), else
recorded by Metering (charge_retries.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from keyleash.vault.v1 import vault_pb2
from keyleash_core.reasons import DenyReason
from keyleash_gateway import answers
from keyleash_gateway.answers import Reply
from keyleash_gateway.keyleash import (
    AuthorizeCall,
    CallRefused,
    ConnectionMissing,
    Keyleash,
    KeyleashUnavailable,
    Upstream,
)
from keyleash_gateway.secrets_cache import SecretsCache
from keyleash_gateway.settling import CallCharges, Forward
from keyleash_gateway.streaming import ReplySink, StreamEnd, relay
from keyleash_gateway.tenant_prices import TenantPrices
from keyleash_gateway.upstream import (
    NotSent,
    Opened,
    OutcomeUnknown,
    UpstreamClient,
    request_headers,
)
from keyleash_gateway.vendors import VENDORS, Vendor
from keyleash_gateway.vendors.base import (
    BadRequestBody,
    Endpoint,
    Lookup,
    UnknownEndpoint,
    UnknownModel,
    form_fields,
)
from keyleash_gateway.vendors.twilio_status import ChargedMessage, callback_url

log = logging.getLogger("keyleash.gateway")


@dataclass(frozen=True)
class VendorRequest:
    """One request as the agent sent it to /{vendor}/{path}."""

    vendor: str
    method: str
    path: str  # the upstream path, starting with "/"
    query: str  # raw, without "?"
    headers: list[tuple[str, str]]
    header_map: Mapping[str, str]  # case-insensitive view of the same headers
    body: bytes
    agent_run_id: str


def request_ids(key: str, vendor: str, idempotency_key: str) -> str:
    """The base of this call's Authorize/Charge request_ids: derived from the agent's
    Idempotency-Key (so its retries are decided and charged once), else fresh."""
    if not idempotency_key:
        return "gw-" + os.urandom(16).hex()
    digest = hashlib.sha256(
        "\x1f".join(("keyleash-gateway-v1", key, vendor, idempotency_key)).encode()
    )
    return "gw-" + digest.hexdigest()[:40]


class ProxyCall:
    """Authorize → forward → charge. One per process; safe for concurrent use."""

    def __init__(self, keyleash: Keyleash, upstream: UpstreamClient, public_url: str = "") -> None:
        self._keyleash = keyleash
        self._upstream = upstream
        self._public_url = public_url
        self._charges = CallCharges(keyleash)
        self._prices = TenantPrices(keyleash)
        self._secrets = SecretsCache()

    async def handle(self, request: VendorRequest, sink: ReplySink | None = None) -> Reply | None:
        """The answer for the agent, or None when a streamed answer was relayed into `sink`."""
        vendor = VENDORS.get(request.vendor)
        if vendor is None:
            return answers.unknown_vendor(request.vendor)
        key = vendor.vault_key(request.header_map)
        if not key:
            return answers.denied(
                DenyReason.KEY_UNKNOWN,
                f"send the vault key where the {vendor.name} SDK puts its API key",
            )
        content_type = request.header_map.get("Content-Type", "")
        try:
            endpoint = vendor.describe(
                request.method, request.path, request.query, content_type, request.body
            )
        except UnknownEndpoint:
            return answers.denied(
                DenyReason.ENDPOINT_DENIED,
                f"{request.method} {request.path} is not in the gateway's {vendor.name} "
                "endpoint table",
            )
        except UnknownModel as error:
            return answers.denied(
                DenyReason.MODEL_UNKNOWN,
                f"model {str(error)!r} is not in the gateway's price table: it cannot be priced",
            )
        except BadRequestBody as error:
            return answers.bad_request(str(error))
        if endpoint.lookup is not None:
            completed = await self._complete(vendor, endpoint.lookup, key)
            if isinstance(completed, Reply):
                return completed
            endpoint = completed
        if endpoint.llm is not None:
            priced = await self._prices.priced_or_reply(endpoint, key)
            if isinstance(priced, Reply):
                return priced
            endpoint = priced
        base_id = request_ids(key, vendor.name, request.header_map.get("Idempotency-Key", ""))
        call = AuthorizeCall(
            key=key,
            scope=endpoint.scope,
            vendor=vendor.name,
            method=request.method,
            path=request.path,
            estimate=endpoint.estimate,
            agent_run_id=request.agent_run_id,
            attributes=dict(endpoint.attributes),
            request_id=base_id,
        )
        return await self._decide_and_forward(vendor, endpoint, request, call, sink)

    async def _complete(self, vendor: Vendor, lookup: Lookup, key: str) -> Endpoint | Reply:
        """The endpoint priced from the upstream object it acts on, or the answer to give
        instead. The read goes upstream only for a key that could be used now."""
        try:
            refusal = await self._keyleash.key_refusal(key)
            if refusal is not None:
                code = DenyReason(
                    vault_pb2.DenyReason.Name(refusal.reason).removeprefix("DENY_REASON_")
                )
                return answers.denied(code, code.lower().replace("_", " "))
            upstream = await self._keyleash.upstream(key, vendor.name)
        except ConnectionMissing:
            return answers.denied(
                DenyReason.VENDOR_DENIED, f"this key's tenant has no {vendor.name} connection"
            )
        except KeyleashUnavailable as error:
            log.warning("vault unavailable pricing %s %s: %s", vendor.name, lookup.path, error)
            return answers.unavailable("Keyleash could not price this call; nothing was sent")
        url = (upstream.base_url or vendor.default_base_url).rstrip("/") + lookup.path
        headers = list(vendor.upstream_auth({}, upstream.secret).items())
        try:
            answer = await self._upstream.send("GET", url, headers, b"")
        except (NotSent, OutcomeUnknown):
            return answers.not_sent(vendor.name)
        if answer.status != 200:
            return Reply(answer.status, answer.body, answer.headers)  # e.g. Stripe's 404
        try:
            return lookup.complete(answer.body)
        except BadRequestBody as error:
            return answers.bad_request(str(error))

    async def _decide_and_forward(
        self,
        vendor: Vendor,
        endpoint: Endpoint,
        request: VendorRequest,
        call: AuthorizeCall,
        sink: ReplySink | None,
    ) -> Reply | None:
        # A secret kept from an earlier call saves a Vault call when Authorize's connections
        # version confirms it (secrets_cache.py); else both lookups run at once, the secret
        # being used only on ALLOW.
        kept = self._secrets.kept(call.key, vendor.name)
        if kept is None:
            results: Sequence[object] = await asyncio.gather(
                self._keyleash.authorize(call),
                self._keyleash.upstream(call.key, vendor.name),
                return_exceptions=True,
            )
        else:  # one lookup: awaited as it is (a gather would wrap it in a task, ~10 us)
            results = [await _outcome(self._keyleash.authorize(call))]
        decision = results[0]
        if isinstance(decision, CallRefused):
            return answers.refused(decision.status, decision.code, decision.message)
        if isinstance(decision, BaseException):
            if not isinstance(decision, KeyleashUnavailable):
                raise decision
            log.warning("vault unavailable for %s %s: %s", vendor.name, request.path, decision)
            return answers.unavailable("Keyleash could not decide this call; nothing was sent")
        assert isinstance(decision, vault_pb2.AuthorizeResponse)
        if decision.decision != vault_pb2.DECISION_ALLOW:
            return _denial(decision)
        upstream = (
            results[1] if kept is None else self._secrets.usable(kept, decision.connections_version)
        )
        if upstream is None:
            upstream = await self._read_secret(call.key, vendor.name)
        if isinstance(upstream, BaseException):
            self._secrets.forget(call.key, vendor.name)
            await self._charges.release(call, decision, vendor, endpoint, "connection unavailable")
            if isinstance(upstream, ConnectionMissing):
                return answers.denied(
                    DenyReason.VENDOR_DENIED, f"this key's tenant has no {vendor.name} connection"
                )
            if isinstance(upstream, KeyleashUnavailable):
                return answers.unavailable("Keyleash could not hand over the vendor secret")
            raise upstream
        assert isinstance(upstream, Upstream)
        if upstream is not kept:  # a secret just read: keep it (under its own version)
            self._secrets.keep(call.key, vendor.name, upstream)
        forward = Forward(vendor, endpoint, call, decision)
        return await self._forward(forward, request, upstream, sink)

    async def _read_secret(self, key: str, vendor: str) -> Upstream | BaseException:
        try:
            return await self._keyleash.upstream(key, vendor)
        except (ConnectionMissing, KeyleashUnavailable) as error:
            return error

    async def _forward(
        self, forward: Forward, request: VendorRequest, upstream: Upstream, sink: ReplySink | None
    ) -> Reply | None:
        vendor, endpoint, call, decision = forward.parts
        base = (upstream.base_url or vendor.default_base_url).rstrip("/")
        url = base + request.path + (f"?{request.query}" if request.query else "")
        headers = request_headers(
            request.headers,
            request.header_map,
            vendor.upstream_auth(request.header_map, upstream.secret),
        )
        body = endpoint.upstream_body
        if body is None:
            body = self._with_status_callback(vendor, endpoint, request, call, decision, upstream)
        try:
            async with self._upstream.open(request.method, url, headers, body) as opened:
                if opened.streamed and sink is not None:
                    await self._stream(forward, opened, sink)
                    return None
                answer = await opened.read_all()
        except NotSent as error:
            await self._charges.release(call, decision, vendor, endpoint, f"not sent: {error}")
            return answers.not_sent(vendor.name)
        except OutcomeUnknown as error:
            log.warning(
                "outcome unknown: key %s %s %s (%s); hold %s kept until a retry settles it",
                decision.key_id, request.method, request.path, error, decision.reservation_id,
            )  # fmt: skip
            return answers.outcome_unknown(vendor.name)
        cost = vendor.cost(endpoint, answer.status, answer.body)
        await self._charges.settle(
            forward, answer.status, answer.latency_ms, cost, StreamEnd.COMPLETE
        )
        return Reply(answer.status, answer.body, answer.headers)

    async def _stream(self, forward: Forward, opened: Opened, sink: ReplySink) -> None:
        """Relays the stream, then charges what the vendor's meter read in it, in a task of
        its own: the agent already has the whole answer, and its connection is free for its
        next request at once. A cancelled handler (the agent left) still gets its charge."""
        meter = forward.vendor.stream_meter(forward.endpoint, opened.status)
        end = StreamEnd.CLIENT_GONE
        try:
            end = await relay(opened, meter, sink)
        finally:
            cost = meter.cost(end is StreamEnd.COMPLETE)
            self._charges.settle_later(forward, opened.status, opened.latency_ms, cost, end)

    async def drain(self) -> None:
        """Waits for the charges of streams that have ended (at shutdown)."""
        await self._charges.drain()

    def _with_status_callback(
        self,
        vendor: Vendor,
        endpoint: Endpoint,
        request: VendorRequest,
        call: AuthorizeCall,
        decision: vault_pb2.AuthorizeResponse,
        upstream: Upstream,
    ) -> bytes:
        """Twilio messages: ask Twilio to report the final status to the gateway (which then
        corrects the estimate), unless the agent asked for its own callback."""
        wanted = vendor.name == "twilio" and endpoint.name == "messages.create"
        if not (wanted and self._public_url and endpoint.estimate is not None):
            return request.body
        if "StatusCallback" in form_fields(request.body):
            return request.body
        charged = ChargedMessage(
            upstream.connection_name,
            decision.key_id,
            call.request_id + "-charge",
            endpoint.estimate.micros,
            call.agent_run_id,
        )
        extra = urlencode({"StatusCallback": callback_url(self._public_url, charged)})
        return request.body + (b"&" if request.body else b"") + extra.encode()


async def _outcome(awaitable: Awaitable[object]) -> object:
    """What `gather(..., return_exceptions=True)` would give for one awaitable."""
    try:
        return await awaitable
    except Exception as error:
        return error


def _denial(decision: vault_pb2.AuthorizeResponse) -> Reply:
    # A reason the contract lacks raises here (a bug), never an answer with a made-up code.
    code = DenyReason(vault_pb2.DenyReason.Name(decision.reason).removeprefix("DENY_REASON_"))
    retry = decision.retry_after.seconds + decision.retry_after.nanos / 1e9
    message = decision.message or code.lower().replace("_", " ")
    return answers.denied(code, message, retry, decision.approval)
