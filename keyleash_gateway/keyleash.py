"""The gateway's port to Keyleash: Authorize, the connection secret, Charge, over the project's
gRPC clients with the service credential. Every failure to reach Keyleash is one exception, so
the use case fails closed in one place."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyleash.client import (
    AlreadyExists,
    ConnectionsClient,
    FailedPrecondition,
    InvalidArgument,
    KeyleashError,
    MeteringClient,
    NotFound,
    RetryPolicy,
    VaultClient,
)
from keyleash.metering.v1 import metering_pb2
from keyleash.type.v1 import money_pb2
from keyleash.vault.v1 import vault_pb2
from keyleash_core.money import Money
from keyleash_gateway.answers import GatewayError
from keyleash_gateway.charge_outbox import ChargeOutbox
from keyleash_gateway.charge_retries import RETRYABLE, ChargeRetries
from keyleash_gateway.coalescing import Coalescer
from keyleash_gateway.settings import GatewaySettings
from keyleash_gateway.vendors.base import LlmUsage

log = logging.getLogger("keyleash.gateway")

# How long a charge sent after the answer (with a state dir) waits for others to share its
# BatchCharge: the ledger shows a call this much later, at most (plus Metering's commit).
CHARGE_LINGER_SECONDS = 0.005


class KeyleashUnavailable(Exception):
    """Vault or Metering did not answer usefully: nothing may be forwarded (503)."""


class CallRefused(Exception):
    """Vault refused the request itself (not a decision): the agent's fault, nothing forwarded.
    `status` is the HTTP answer: 400 for a malformed call (e.g. an unknown currency), 409 for an
    Idempotency-Key reused with a different request."""

    def __init__(self, status: int, code: GatewayError, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ConnectionMissing(Exception):
    """The key's tenant has no connection for the vendor (403)."""


@dataclass(frozen=True)
class Upstream:
    """Where and with what to forward: held in memory for one call only."""

    base_url: str
    secret: str
    key_id: str
    connection_name: str
    version: str = ""  # the tenant's connections version read before the secret (secrets_cache)


@dataclass(frozen=True)
class AuthorizeCall:
    key: str
    scope: str
    vendor: str
    method: str
    path: str
    estimate: Money | None
    agent_run_id: str
    attributes: dict[str, str]
    request_id: str


@dataclass(frozen=True)
class ChargeCall:
    request_id: str
    key_id: str
    reservation_id: str
    amount: Money
    vendor: str
    endpoint: str
    agent_run_id: str
    vendor_request_id: str
    cost_source: str
    reason: str
    attributes: dict[str, str]
    usage: LlmUsage | None = None  # LLM routes: the tokens the amount was priced with


def _usage_fields(usage: LlmUsage | None) -> dict[str, Any]:
    """Charge fields and attributes recording what an LLM amount was priced with."""
    if usage is None:
        return {}
    tokens = usage.tokens
    return {
        "model": usage.model,
        "input_tokens": tokens.input,
        "output_tokens": tokens.output,
        "cached_input_tokens": tokens.cached_input,
    }


def _usage_attributes(usage: LlmUsage | None) -> dict[str, str]:
    if usage is None:
        return {}
    return {
        "cache_write_input_tokens": str(usage.tokens.cache_write_input),
        "reasoning_tokens": str(usage.reasoning_tokens),
        "price_table": usage.table_version,
        "usage": "reported" if usage.reported else "estimated",
    }


def _money(value: Money) -> money_pb2.Money:
    return money_pb2.Money(currency_code=value.currency, micros=value.micros)


class Keyleash:
    """Vault + Metering as the gateway uses them. Owns its clients."""

    def __init__(self, settings: GatewaySettings) -> None:
        retry = RetryPolicy(max_attempts=2, deadline=settings.keyleash_timeout_seconds)
        common = {
            "token": settings.service_token,
            "timeout": settings.keyleash_timeout_seconds,
            "retry": retry,
        }
        self._vault = VaultClient(settings.vault_target, **common)  # type: ignore[arg-type]
        self._connections = ConnectionsClient(settings.vault_target, **common)  # type: ignore[arg-type]
        self._metering = MeteringClient(settings.metering_target, **common)  # type: ignore[arg-type]
        # Calls in flight at the same time leave as one AuthorizeBatch / BatchCharge
        # (coalescing.py).
        self._authorize: Coalescer[vault_pb2.AuthorizeRequest, vault_pb2.AuthorizeResponse] = (
            Coalescer(self._vault.authorize, self._vault.authorize_batch)
        )
        outbox = ChargeOutbox(Path(settings.state_dir)) if settings.state_dir else None
        # With an outbox charges leave after the answer: they linger to travel together.
        self._charge: Coalescer[metering_pb2.ChargeRequest, metering_pb2.ChargeResponse] = (
            Coalescer(
                self._metering.charge,
                self._metering.batch_charge,
                linger=CHARGE_LINGER_SECONDS if outbox else 0.0,
            )
        )
        self._retries = ChargeRetries(self._charge, outbox=outbox)

    def start(self) -> None:
        """At start: sends again the charges a previous process left waiting (its outbox)."""
        self._retries.resume()

    async def close(self) -> None:
        await self._retries.close()
        for client in (self._vault, self._connections, self._metering):
            await client.close()

    async def authorize(self, call: AuthorizeCall) -> vault_pb2.AuthorizeResponse:
        request = vault_pb2.AuthorizeRequest(
            key=call.key,
            scope=call.scope,
            vendor=call.vendor,
            method=call.method,
            path=call.path,
            agent_run_id=call.agent_run_id,
            attributes=call.attributes,
            request_id=call.request_id,
        )
        if call.estimate is not None:
            request.estimated_cost.CopyFrom(_money(call.estimate))
        try:
            return await self._authorize(request)
        except InvalidArgument as error:
            raise CallRefused(400, GatewayError.INVALID_REQUEST, str(error.message)) from None
        except AlreadyExists:
            raise CallRefused(
                409,
                GatewayError.IDEMPOTENCY_KEY_REUSED,
                "this Idempotency-Key was used for a different request; nothing was sent",
            ) from None
        except KeyleashError as error:
            raise KeyleashUnavailable(f"Authorize: {error.code}: {error.reason}") from None

    async def key_refusal(self, key: str) -> vault_pb2.ValidateKeyResponse | None:
        """None when the key could be used now; else ValidateKey's answer (why not)."""
        answer = await self.validate_key(key)
        return None if answer.valid else answer

    async def validate_key(self, key: str) -> vault_pb2.ValidateKeyResponse:
        """ValidateKey's answer (valid, or why not; with the key's record when known)."""
        try:
            return await self._vault.validate_key(key)
        except InvalidArgument:
            return vault_pb2.ValidateKeyResponse(
                valid=False, reason=vault_pb2.DENY_REASON_KEY_UNKNOWN
            )
        except KeyleashError as error:
            raise KeyleashUnavailable(f"ValidateKey: {error.code}: {error.reason}") from None

    async def upstream(self, key: str, vendor: str) -> Upstream:
        try:
            access = await self._connections.access_connection_secret(key, vendor)
        except NotFound as error:
            raise ConnectionMissing(error.reason) from None
        except KeyleashError as error:
            raise KeyleashUnavailable(
                f"AccessConnectionSecret: {error.code}: {error.reason}"
            ) from None
        return Upstream(
            base_url=access.connection.base_url,
            secret=access.secret,
            key_id=access.key_id,
            connection_name=access.connection.name,
            version=access.connections_version,
        )

    async def upstream_by_name(self, name: str, vendor: str) -> Upstream:
        """The named connection's secret, for verifying the vendor's own callbacks."""
        try:
            access = await self._connections.access_connection_secret("", vendor, name=name)
        except NotFound as error:
            raise ConnectionMissing(error.reason) from None
        except KeyleashError as error:
            raise KeyleashUnavailable(f"AccessConnectionSecret: {error.code}") from None
        return Upstream(access.connection.base_url, access.secret, "", access.connection.name)

    async def tenant_model_price(
        self, tenant_id: str, model: str
    ) -> metering_pb2.ModelPrice | None:
        """The price Metering prices the tenant's usage of `model` with now (its source says
        whether it is the tenant's own); None when Metering's table lacks the model."""
        try:
            return await self._metering.get_tenant_model_price(tenant_id=tenant_id, model=model)
        except FailedPrecondition:
            return None
        except KeyleashError as error:
            raise KeyleashUnavailable(
                f"GetTenantModelPrice: {error.code}: {error.reason}"
            ) from None

    async def charge(self, call: ChargeCall) -> None:
        """Records the cost. With a state directory it returns once the charge is on disk and
        sends it in the background; without one it waits for Metering. A charge not recorded
        leaves its hold counted, which errs on the side of the cap, and a passing failure is
        sent again in the background until Metering records it (charge_retries.py)."""
        request = metering_pb2.ChargeRequest(
            request_id=call.request_id,
            key_id=call.key_id,
            reservation_id=call.reservation_id,
            amount=_money(call.amount),
            vendor=call.vendor,
            endpoint=call.endpoint,
            reason=call.reason,
            agent_run_id=call.agent_run_id,
            vendor_request_id=call.vendor_request_id,
            cost_source=call.cost_source,
            attributes=call.attributes | _usage_attributes(call.usage),
            **_usage_fields(call.usage),
        )
        if self._retries.durable:
            await self._retries.add(request, fresh=True)
            return
        try:
            await self._charge(request)
        except RETRYABLE as error:
            log.warning(
                "charge %s for key %s not recorded now (%s); its hold stays and it is sent again",
                call.request_id, call.key_id, error.code,
            )  # fmt: skip
            await self._retries.add(request)
        except KeyleashError as error:
            log.warning(
                "charge %s for key %s not recorded (%s %s); its hold stays",
                call.request_id, call.key_id, error.code, error.reason,
            )  # fmt: skip

    @property
    def charges_waiting(self) -> int:
        """Charges not recorded yet that are being sent again."""
        return self._retries.waiting
