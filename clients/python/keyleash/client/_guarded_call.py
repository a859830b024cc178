"""What `guard()` and `sync_guard()` share: the handle, the three requests, money."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2

MoneyLike = money_pb2.Money | tuple[str, int]


def to_money(value: MoneyLike) -> money_pb2.Money:
    """A Money from a Money or a (currency_code, micros) pair."""
    if isinstance(value, money_pb2.Money):
        return value
    currency, micros = value
    return money_pb2.Money(currency_code=currency, micros=int(micros))


@dataclass
class GuardHandle:
    """What the guarded block sees; set `actual_cost` (and optionally the rest) before leaving."""

    request_id: str
    decision: vault_pb2.AuthorizeResponse
    estimated_cost: money_pb2.Money
    actual_cost: MoneyLike
    vendor_request_id: str = ""
    cost_source: str = ""
    reason: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    charge: metering_pb2.ChargeResponse | None = None

    @property
    def key_id(self) -> str:
        return self.decision.key_id

    @property
    def reservation_id(self) -> str:
        return self.decision.reservation_id


@dataclass(frozen=True)
class GuardedCall:
    """One guarded step: builds its Authorize, Charge and release requests."""

    key: str
    scope: str
    estimated_cost: money_pb2.Money
    vendor: str
    method: str
    path: str
    attributes: Mapping[str, str]
    request_id: str

    def authorize_request(self) -> vault_pb2.AuthorizeRequest:
        return vault_pb2.AuthorizeRequest(
            key=self.key,
            scope=self.scope,
            vendor=self.vendor,
            method=self.method,
            path=self.path,
            estimated_cost=self.estimated_cost,
            attributes=dict(self.attributes),
            request_id=f"{self.request_id}:authorize",
        )

    def handle(self, decision: vault_pb2.AuthorizeResponse) -> GuardHandle:
        return GuardHandle(self.request_id, decision, self.estimated_cost, self.estimated_cost)

    def charge_request(self, handle: GuardHandle) -> metering_pb2.ChargeRequest:
        estimated = handle.actual_cost is handle.estimated_cost
        return metering_pb2.ChargeRequest(
            request_id=f"{self.request_id}:charge",
            key_id=handle.key_id,
            reservation_id=handle.reservation_id,
            amount=to_money(handle.actual_cost),
            vendor=self.vendor,
            endpoint=f"{self.method} {self.path}".strip(),
            reason=handle.reason,
            vendor_request_id=handle.vendor_request_id,
            cost_source=handle.cost_source or ("estimate" if estimated else "reported"),
            attributes={**self.attributes, **handle.attributes},
        )

    def release_request(self, handle: GuardHandle) -> metering_pb2.ChargeRequest | None:
        if not handle.reservation_id:
            return None
        return metering_pb2.ChargeRequest(
            request_id=f"{self.request_id}:release",
            key_id=handle.key_id,
            reservation_id=handle.reservation_id,
            amount=money_pb2.Money(currency_code=self.estimated_cost.currency_code, micros=0),
            vendor=self.vendor,
            endpoint=f"{self.method} {self.path}".strip(),
            reason="guarded block failed; hold released",
            cost_source="release",
        )


def new_call(
    key: str,
    scope: str,
    estimated_cost: MoneyLike,
    vendor: str,
    method: str,
    path: str,
    attributes: Mapping[str, str] | None,
    request_id: str | None,
) -> GuardedCall:
    """A GuardedCall with its cost as Money and a request_id (a fresh one when none is given)."""
    return GuardedCall(
        key,
        scope,
        to_money(estimated_cost),
        vendor,
        method,
        path,
        dict(attributes or {}),
        request_id or uuid.uuid4().hex,
    )


def bearer_for(client: Any, key: str) -> str | None:
    """The call's token: None (use the client's own) when the client has one, else `key`."""
    return None if client.token else key
