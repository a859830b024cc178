"""The usage webhook RPCs of MeteringService: proto <-> use case, nothing else.

A mixin of MeteringServicer (servicer.py), as alert_rpcs.py is: the signing secrets the receiver
(keyleash_usage_hooks) verifies deliveries with, and BatchRecordUsage, which it records them by.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, TypeAlias

from google.protobuf import timestamp_pb2

from keyleash.metering.v1 import metering_pb2
from keyleash_core.auth import ADMIN, SERVICE, Credential
from keyleash_core.errors import InvalidArgument, PermissionDenied
from keyleash_core.telemetry import CHARGE_SECONDS
from keyleash_core.validation import tenant_id as valid_tenant_id
from metering_service import convert
from metering_service.alerts.secrets import validate_secret
from metering_service.observe import count_recorded
from metering_service.store.usage_webhook_secrets import SecretRow
from metering_service.usecases.record_spend import Recorded, SpendRecorder
from metering_service.usecases.usage_webhook_secrets import UsageWebhookSecrets, secret_name

Context: TypeAlias = Any
MAX_BATCH = 1000
BASIC = metering_pb2.BILLING_EVENT_VIEW_BASIC


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def secret_to_proto(row: SecretRow) -> metering_pb2.UsageWebhookSecret:
    """What callers see of a secret: never the secret itself."""
    return metering_pb2.UsageWebhookSecret(
        name=secret_name(row.tenant_id),
        tenant_id=row.tenant_id,
        create_time=_timestamp(row.create_time),
        rotate_time=_timestamp(row.rotate_time),
    )


def _given(value: str) -> str:
    return validate_secret(value) if value else ""


class UsageHookRpcs:
    """CreateUsageWebhookSecret ... BatchRecordUsage; needs `_usage_secrets`, `_recorder`,
    `_credential`, `_now` and `_recorded`."""

    _usage_secrets: UsageWebhookSecrets
    _recorder: SpendRecorder

    def _credential(self, context: Context) -> Credential:
        raise NotImplementedError

    def _now(self) -> int:
        raise NotImplementedError

    async def CreateUsageWebhookSecret(
        self, request: metering_pb2.CreateUsageWebhookSecretRequest, context: Context
    ) -> metering_pb2.CreateUsageWebhookSecretResponse:
        credential = self._credential(context)
        tenant_id = valid_tenant_id(request.tenant_id, required=True)
        row, secret = await self._usage_secrets.create(
            credential, tenant_id, _given(request.signing_secret)
        )
        return metering_pb2.CreateUsageWebhookSecretResponse(
            secret=secret_to_proto(row), signing_secret=secret
        )

    async def RotateUsageWebhookSecret(
        self, request: metering_pb2.RotateUsageWebhookSecretRequest, context: Context
    ) -> metering_pb2.RotateUsageWebhookSecretResponse:
        credential = self._credential(context)
        tenant_id = valid_tenant_id(request.tenant_id, required=True)
        row, secret = await self._usage_secrets.rotate(
            credential, tenant_id, _given(request.signing_secret)
        )
        return metering_pb2.RotateUsageWebhookSecretResponse(
            secret=secret_to_proto(row), signing_secret=secret
        )

    async def AccessUsageWebhookSecret(
        self, request: metering_pb2.AccessUsageWebhookSecretRequest, context: Context
    ) -> metering_pb2.AccessUsageWebhookSecretResponse:
        credential = self._credential(context)
        tenant_id = valid_tenant_id(request.tenant_id, required=True)
        row, secret = await self._usage_secrets.access(credential, tenant_id)
        return metering_pb2.AccessUsageWebhookSecretResponse(
            secret=secret_to_proto(row), signing_secret=secret
        )

    async def BatchRecordUsage(
        self, request: metering_pb2.BatchRecordUsageRequest, context: Context
    ) -> metering_pb2.BatchRecordUsageResponse:
        started = time.perf_counter()
        credential = self._credential(context)
        if credential.kind not in (ADMIN, SERVICE):
            raise PermissionDenied("BatchRecordUsage is for service and admin credentials")
        tenant_id = valid_tenant_id(request.tenant_id, required=True)
        if not 1 <= len(request.requests) <= MAX_BATCH:
            raise InvalidArgument("requests", f"between 1 and {MAX_BATCH} usage events")
        now = self._now()
        specs = [convert.usage_spec(r, now) for r in request.requests]
        if len({s.request_id for s in specs}) != len(specs):
            raise InvalidArgument("requests", "request_ids must be unique within the batch")
        recorded = await self._recorder.record_many(credential, specs, tenant_id=tenant_id)
        CHARGE_SECONDS.record(time.perf_counter() - started, {"rpc": "BatchRecordUsage"})
        return self._batch_response(recorded, basic=request.view == BASIC)

    def _recorded(
        self,
        response: metering_pb2.RecordUsageResponse,
        recorded: Recorded,
        *,
        with_tenant: bool,
        basic: bool,
        counted: bool,
    ) -> metering_pb2.RecordUsageResponse:
        raise NotImplementedError

    def _batch_response(
        self, recorded: list[Recorded], *, basic: bool
    ) -> metering_pb2.BatchRecordUsageResponse:
        out = metering_pb2.BatchRecordUsageResponse()
        count_recorded(recorded)
        for one in recorded:  # filled in place: append() would copy each response again
            self._recorded(out.responses.add(), one, with_tenant=False, basic=basic, counted=True)
        duplicates = sum(r.duplicate for r in recorded)
        out.accepted, out.duplicates = len(recorded) - duplicates, duplicates
        last = recorded[-1].tenant
        if last is not None:
            out.tenant.CopyFrom(convert.tenant_to_proto(last, self._now()))
        return out
