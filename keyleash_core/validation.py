"""Request validation both services share: each failure names the field (google.rpc.BadRequest)."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import duration_pb2, timestamp_pb2

from keyleash.type.v1 import money_pb2
from keyleash_core.errors import InvalidArgument
from keyleash_core.keyrecord import TENANT_ID_RULE, is_tenant_id, parse_key_name
from keyleash_core.money import MAX_ABS_MICROS, Money, is_currency_code

MAX_TEXT = 1024
MAX_LIST = 100
# 0001-01-01 and 9999-12-31: the range google.protobuf.Timestamp allows.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799


def text(value: str, path: str, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    if required and not value:
        raise InvalidArgument(path, "required")
    if len(value) > limit:
        raise InvalidArgument(path, f"at most {limit} characters")
    if "\x00" in value:
        raise InvalidArgument(path, "must not contain NUL characters")
    return value


def tenant_id(value: str, path: str = "tenant_id", *, required: bool = False) -> str:
    """A tenant id (keyleash_core.keyrecord.TENANT_ID_PATTERN), or "" when optional and unset."""
    if not value and not required:
        return ""
    if not value:
        raise InvalidArgument(path, "required")
    if not is_tenant_id(value):
        raise InvalidArgument(path, f"a tenant id: {TENANT_ID_RULE} characters")
    return value


def key_name(value: str, path: str = "name", *, any_tenant: bool = False) -> tuple[str, str]:
    """(tenant_id, key_id) of a key name "tenants/{tenant_id}/keys/{key_id}" (with
    `any_tenant`, "tenants/-/keys/{key_id}" too)."""
    parsed = parse_key_name(value, any_tenant=any_tenant)
    if parsed is None:
        raise InvalidArgument(
            path,
            'a key name "tenants/{tenant_id}/keys/{key_id}"; a tenant id has '
            + TENANT_ID_RULE
            + " characters",
        )
    return parsed


def strings(values: Sequence[str], path: str, *, limit: int = MAX_LIST) -> tuple[str, ...]:
    if len(values) > limit:
        raise InvalidArgument(path, f"at most {limit} entries")
    return tuple(text(v, f"{path}[{i}]", required=True, limit=256) for i, v in enumerate(values))


def money(value: money_pb2.Money, path: str, *, allow_negative: bool = False) -> Money:
    if not is_currency_code(value.currency_code):
        raise InvalidArgument(
            f"{path}.currency_code",
            f"{value.currency_code!r} is not an ISO 4217 currency code Keyleash knows (e.g. USD)",
        )
    if abs(value.micros) > MAX_ABS_MICROS:
        raise InvalidArgument(f"{path}.micros", f"at most {MAX_ABS_MICROS} in absolute value")
    if value.micros < 0 and not allow_negative:
        raise InvalidArgument(f"{path}.micros", "must not be negative")
    return Money(value.currency_code, value.micros)


def duration_ms(value: duration_pb2.Duration, path: str) -> int:
    if value.seconds < 0 or value.nanos < 0 or value.nanos >= 1_000_000_000:
        raise InvalidArgument(path, "must be a positive duration")
    if value.seconds > 10 * 366 * 24 * 3600:
        raise InvalidArgument(path, "at most ten years")
    return value.seconds * 1000 + value.nanos // 1_000_000


def timestamp_ms(value: timestamp_pb2.Timestamp, path: str) -> int:
    """Milliseconds since the epoch of a valid Timestamp (0 <= nanos < 1e9, years 1..9999)."""
    if not 0 <= value.nanos < 1_000_000_000:
        raise InvalidArgument(path, "nanos must be between 0 and 999,999,999")
    if not MIN_TIMESTAMP_SECONDS <= value.seconds <= MAX_TIMESTAMP_SECONDS:
        raise InvalidArgument(path, "must be between years 1 and 9999")
    return value.seconds * 1000 + value.nanos // 1_000_000
