"""Twilio's signed status callbacks: verify, learn the final price, record the correction.

A callback that does not carry a valid X-Twilio-Signature for the connection it names is refused
(403) and changes nothing; one that does is acknowledged (204) whatever it says, so Twilio does
not retry it, and a correction is charged at most once (its request_id derives from the charge).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from keyleash_core.money import Money
from keyleash_core.reasons import DenyReason
from keyleash_gateway import answers
from keyleash_gateway.answers import Reply
from keyleash_gateway.keyleash import ChargeCall, ConnectionMissing, Keyleash, KeyleashUnavailable
from keyleash_gateway.upstream import NotSent, OutcomeUnknown, UpstreamClient
from keyleash_gateway.vendors import twilio
from keyleash_gateway.vendors.base import json_object
from keyleash_gateway.vendors.twilio_status import (
    FINAL,
    ChargedMessage,
    correction,
    parse_callback_query,
    signature_valid,
)

log = logging.getLogger("keyleash.gateway")
ACK = Reply(204, b"")


class TwilioStatusCallbacks:
    def __init__(self, keyleash: Keyleash, upstream: UpstreamClient, public_url: str) -> None:
        self._keyleash = keyleash
        self._upstream = upstream
        self._public_url = public_url

    async def handle(
        self, path_qs: str, query: str, signature: str, form: Mapping[str, str]
    ) -> Reply:
        charged = parse_callback_query(query)
        if charged is None or not signature or not self._public_url:
            return answers.denied(
                DenyReason.KEY_UNKNOWN, "not a status callback this gateway asked for"
            )
        try:
            upstream = await self._keyleash.upstream_by_name(charged.connection, "twilio")
        except ConnectionMissing:
            return answers.denied(
                DenyReason.VENDOR_DENIED, "the callback names no twilio connection"
            )
        except KeyleashUnavailable:
            return answers.unavailable("Keyleash could not verify this callback; retry")
        token = upstream.secret.rpartition(":")[2]
        if not signature_valid(token, self._public_url + path_qs, form, signature):
            return Reply(
                403,
                b'{"error": "invalid X-Twilio-Signature"}',
                [("Content-Type", "application/json")],
            )
        status = form.get("MessageStatus", "")
        message_sid, account = form.get("MessageSid", ""), form.get("AccountSid", "")
        if status not in FINAL or not message_sid:
            return ACK
        base = (upstream.base_url or twilio.default_base_url).rstrip("/")
        url = f"{base}/2010-04-01/Accounts/{account}/Messages/{message_sid}.json"
        auth = twilio.upstream_auth(
            {}, upstream.secret if ":" in upstream.secret else f"{account}:{token}"
        )
        try:
            answer = await self._upstream.send("GET", url, list(auth.items()), b"")
        except (NotSent, OutcomeUnknown) as error:
            log.warning("twilio message %s not read for its price: %s", message_sid, error)
            return answers.unavailable("the message's price could not be read; retry")
        message = json_object(answer.body) if answer.status == 200 else {}
        delta = correction(charged, status, message)
        if delta is not None:
            await self._record(charged, message_sid, status, delta)
        return ACK

    async def _record(
        self, charged: ChargedMessage, message_sid: str, status: str, delta: Money
    ) -> None:
        await self._keyleash.charge(
            ChargeCall(
                request_id=charged.charge_request_id + "-correction",
                key_id=charged.key_id,
                reservation_id="",
                amount=delta,
                vendor="twilio",
                endpoint="POST /Messages.json status callback",
                agent_run_id=charged.agent_run_id,
                vendor_request_id=message_sid,
                cost_source="vendor_response",
                reason="twilio status callback: price correction",
                attributes={"correction_of": charged.charge_request_id, "message_status": status},
            )
        )
