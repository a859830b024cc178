"""The receiver's pure parts, table-driven: Standard Webhooks verification (signatures made by
the reference package), event parsing, the answers, and the sender's backoff."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from keyleash.client._usage_delivery import Backoff, batches, error_of, should_retry
from keyleash_usage_hooks.answers import UsageHookError, error
from keyleash_usage_hooks.events import EventsInvalid, parse_events
from keyleash_usage_hooks.metering import request_id, usage_request
from keyleash_usage_hooks.signature import (
    HeadersInvalid,
    OutsideReplayWindow,
    SignatureInvalid,
    parse_delivery,
    verify,
)

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_" + "QUJD" * 8
NOW = 1_764_650_000
BODY = b'{"id":"e1","key_id":"k_1","model":"gpt-4o"}'


def headers(secret: str = SECRET, at: int = NOW, msg_id: str = "msg_1") -> dict[str, str]:
    when = datetime.fromtimestamp(at, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(at),
        "webhook-signature": Webhook(secret).sign(msg_id, when, BODY.decode()),
    }


def test_a_reference_signature_verifies_and_the_package_agrees() -> None:
    verify(parse_delivery(headers(), BODY), [SECRET], NOW, 300)
    verify(parse_delivery(headers(at=NOW - 300), BODY), [SECRET], NOW, 300)  # edge: inside


@pytest.mark.parametrize(
    ("given", "body", "error_type"),
    [
        (headers(OTHER), BODY, SignatureInvalid),
        (headers(), BODY + b" ", SignatureInvalid),
        (headers() | {"webhook-id": "msg_2"}, BODY, SignatureInvalid),
        (headers() | {"webhook-signature": "v1,!!!"}, BODY, SignatureInvalid),
        (headers() | {"webhook-signature": "v1a,xyz"}, BODY, SignatureInvalid),
        (headers(at=NOW - 301), BODY, OutsideReplayWindow),
        (headers(at=NOW + 301), BODY, OutsideReplayWindow),
        (headers() | {"webhook-timestamp": "12.5"}, BODY, HeadersInvalid),
        (headers() | {"webhook-id": ""}, BODY, HeadersInvalid),
        ({}, BODY, HeadersInvalid),
        (headers(), b"\xff\xfe", HeadersInvalid),
    ],
)
def test_refusals(given: dict[str, str], body: bytes, error_type: type[Exception]) -> None:
    with pytest.raises(error_type):
        verify(parse_delivery(given, body), [SECRET], NOW, 300)


def test_one_matching_signature_among_several_is_enough() -> None:
    mine = headers()["webhook-signature"]
    theirs = headers(OTHER)["webhook-signature"]
    both = headers() | {"webhook-signature": f"{theirs} {mine}"}
    verify(parse_delivery(both, BODY), [SECRET], NOW, 300)


def test_a_forged_old_delivery_is_401_not_400() -> None:
    """The window is checked after the signature: an unsigned request learns nothing."""
    with pytest.raises(SignatureInvalid):
        verify(parse_delivery(headers(OTHER, at=NOW - 3600), BODY), [SECRET], NOW, 300)


def _event(**fields: object) -> str:
    return json.dumps({"id": "e1", "key_id": "k_1", "model": "gpt-4o"} | fields)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "event object"),
        ("{", "not JSON"),
        ('{"events": {}}', "1 to 1000"),
        (json.dumps({"events": [json.loads(_event())] * 2}), "twice"),
        (_event(id=""), "id: required"),
        (_event(id="x" * 101), "at most 100"),
        (_event(key_id=5), "key_id: must be a string"),
        (_event(input_tokens=-1), "input_tokens"),
        (_event(output_tokens=True), "output_tokens"),
        (_event(cached_input_tokens=1.5), "cached_input_tokens"),
        (_event(time="yesterday"), "RFC 3339"),
        (_event(time="2026-12-02T05:00:00"), "UTC offset"),
        (_event(tenant="other"), "tenant of the URL"),
        (_event(extra=1), "extra: unknown field"),
        (_event(model="gpt-4o\n"), "model: at most 256 printable"),
        (_event(agent_run_id="run\x00"), "agent_run_id: at most 256 printable"),
        (_event(id="e\x1f"), "id: at most 100 printable"),
    ],
)
def test_bad_events_name_the_field(text: str, message: str) -> None:
    with pytest.raises(EventsInvalid, match=message):
        parse_events(text, "acme")


def test_text_fields_allow_any_character_from_the_space_up() -> None:
    (event,) = parse_events(_event(model="gpt-4o ~\x7f\u00e9\u4e2d", agent_run_id=" "), "acme")
    assert event.model == "gpt-4o ~\x7f\u00e9\u4e2d" and event.agent_run_id == " "


def test_an_event_becomes_a_tenant_scoped_usage_request() -> None:
    (event,) = parse_events(
        _event(input_tokens=3, output_tokens=4, cached_input_tokens=5, agent_run_id="r",
               time="2026-12-02T05:00:00.25+01:00", tenant="acme"),
        "acme",
    )  # fmt: skip
    request = usage_request("acme", event)
    assert request.request_id == request_id("acme", "e1") == "usage-hook/acme/e1"
    assert (request.input_tokens, request.output_tokens, request.cached_input_tokens) == (3, 4, 5)
    assert request.agent_run_id == "r" and request.model == "gpt-4o"
    four_utc = int(datetime(2026, 12, 2, 4, 0, tzinfo=UTC).timestamp())
    assert request.occur_time.seconds == four_utc and request.occur_time.nanos == 250_000_000
    (bare,) = parse_events(_event(), "acme")
    assert not usage_request("acme", bare).HasField("occur_time")


def test_error_answers_are_json_an_sdk_reads() -> None:
    reply = error(503, UsageHookError.UNAVAILABLE, "later")
    assert json.loads(reply.body) == {
        "error": {"type": "keyleash_usage_hook_error", "code": "UNAVAILABLE", "message": "later"}
    }
    assert ("Retry-After", "1") in reply.headers
    parsed = error_of(401, error(401, UsageHookError.INVALID_SIGNATURE, "no").body, "")
    assert (parsed.status, parsed.code) == (401, "INVALID_SIGNATURE")
    assert error_of(502, b"<html>", "").code == ""


def test_the_sender_batches_by_1000_and_retries_only_what_is_safe() -> None:
    bodies = batches([{"id": str(i), "key_id": "k", "model": "m"} for i in range(2001)])
    assert [len(json.loads(b)["events"]) for b in bodies] == [1000, 1000, 1]
    assert all(json.loads(batches([{"key_id": "k"}])[0])["events"][0]["id"] for _ in range(2))
    assert [should_retry(s) for s in (0, 503, 429, 500, 400, 401, 409, 422)] == [
        True, True, True, True, False, False, False, False,
    ]  # fmt: skip
    backoff = Backoff(initial=0.5, multiplier=2, maximum=3)
    assert [backoff.delay(n, "", rand=1.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
    assert backoff.delay(1, "2", rand=0.0) == 2.0 and backoff.delay(1, "60", rand=0.0) == 3.0


def test_every_usage_hook_error_code_is_documented() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    section = readme.split("## Usage webhooks", 1)[1].split("\n## ", 1)[0]
    assert [c.value for c in UsageHookError if f"`{c.value}`" not in section] == []
