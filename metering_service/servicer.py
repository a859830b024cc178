"""MeteringService over gRPC: translates proto <-> domain, nothing else."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, TypeAlias, TypeVar

from keyleash.metering.v1 import metering_pb2, metering_pb2_grpc
from keyleash_core import page_tokens
from keyleash_core.auth import SERVICE, Credential, credential_of
from keyleash_core.errors import InvalidArgument, PermissionDenied
from keyleash_core.settings import StoreSettings
from keyleash_core.streams import batches
from keyleash_core.telemetry import (
    CHARGE_SECONDS,
    agent_run_id_of,
)
from keyleash_core.validation import tenant_id as valid_tenant_id
from keyleash_core.validation import text
from keyleash_core.wire import money_to_proto
from metering_service import convert
from metering_service.alert_rpcs import AlertRpcs
from metering_service.alerts.subscriptions import AlertSubscriptions
from metering_service.fx_rpcs import FxRpcs
from metering_service.observe import count_recorded
from metering_service.pricing import ModelPrice
from metering_service.store.billing import EventFilter
from metering_service.usage_hook_rpcs import UsageHookRpcs
from metering_service.usecases.exchange_rates import ExchangeRates
from metering_service.usecases.model_prices import ModelPrices
from metering_service.usecases.read_spend import SpendReader
from metering_service.usecases.record_spend import EventSpec, Recorded, SpendRecorder
from metering_service.usecases.tenant_budgets import TenantBudgetAdmin
from metering_service.usecases.usage_webhook_secrets import UsageWebhookSecrets

# grpc ships no type information; the context is grpc.aio.ServicerContext.
Context: TypeAlias = Any
Response = TypeVar("Response", metering_pb2.ChargeResponse, metering_pb2.RecordUsageResponse)
# StreamUsage commits at most this many requests per ack.
STREAM_BATCH = 256
MAX_CHARGE_BATCH = 1000


def _run_id(context: Context) -> str:
    """The agent run from baggage or x-agent-run-id, when the request does not name one."""
    return agent_run_id_of(context)


class MeteringServicer(AlertRpcs, UsageHookRpcs, FxRpcs, metering_pb2_grpc.MeteringServiceServicer):
    """Thin adapter from the generated service to the metering use cases."""

    def __init__(
        self,
        *,
        recorder: SpendRecorder,
        reader: SpendReader,
        budgets: TenantBudgetAdmin,
        prices: ModelPrices,
        alerts: AlertSubscriptions,
        usage_secrets: UsageWebhookSecrets,
        settings: StoreSettings,
        exchange_rates: ExchangeRates,
    ) -> None:
        self._exchange_rates = exchange_rates
        self._alerts = alerts
        self._usage_secrets = usage_secrets
        self._recorder = recorder
        self._reader = reader
        self._budgets = budgets
        self._prices = prices
        self._settings = settings

    def _credential(self, context: Context) -> Credential:
        return credential_of(context, self._settings)

    def _now(self) -> int:
        return self._recorder.clock.now_ms()

    async def Charge(
        self, request: metering_pb2.ChargeRequest, context: Context
    ) -> metering_pb2.ChargeResponse:
        started = time.perf_counter()
        credential = self._credential(context)
        spec = convert.charge_spec(request, self._now(), _run_id(context))
        recorded = await self._recorder.record(credential, spec)
        CHARGE_SECONDS.record(time.perf_counter() - started, {"rpc": "Charge"})
        return self._recorded(metering_pb2.ChargeResponse(), recorded)

    async def BatchCharge(
        self, request: metering_pb2.BatchChargeRequest, context: Context
    ) -> metering_pb2.BatchChargeResponse:
        started = time.perf_counter()
        credential = self._credential(context)
        if not 1 <= len(request.requests) <= MAX_CHARGE_BATCH:
            raise InvalidArgument("requests", f"between 1 and {MAX_CHARGE_BATCH} charges")
        now, run = self._now(), _run_id(context)
        specs = [_batch_charge_spec(r, i, now, run) for i, r in enumerate(request.requests)]
        if len({s.request_id for s in specs}) != len(specs):
            raise InvalidArgument("requests", "request_ids must be unique within the batch")
        recorded = await self._recorder.record_many(credential, specs)
        CHARGE_SECONDS.record(time.perf_counter() - started, {"rpc": "BatchCharge"})
        count_recorded(recorded)
        out = metering_pb2.BatchChargeResponse()
        for one in recorded:  # filled in place: a list of responses would be copied again
            self._recorded(out.responses.add(), one, counted=True)
        return out

    async def RecordUsage(
        self, request: metering_pb2.RecordUsageRequest, context: Context
    ) -> metering_pb2.RecordUsageResponse:
        started = time.perf_counter()
        credential = self._credential(context)
        spec = convert.usage_spec(request, self._now(), _run_id(context))
        recorded = await self._recorder.record(credential, spec)
        CHARGE_SECONDS.record(time.perf_counter() - started, {"rpc": "RecordUsage"})
        return self._recorded(metering_pb2.RecordUsageResponse(), recorded)

    def _recorded(
        self,
        response: Response,
        recorded: Recorded,
        *,
        with_tenant: bool = True,
        basic: bool = False,
        counted: bool = False,
    ) -> Response:
        """Fills a ChargeResponse or RecordUsageResponse (same fields); `with_tenant=False`
        leaves the tenant out (BatchRecordUsage sends it once for the whole batch); `basic`:
        the event in BILLING_EVENT_VIEW_BASIC; `counted`: the caller counts it (_count)."""
        if not counted:
            count_recorded([recorded])
        if basic:
            convert.fill_basic_event(response.event, recorded.event)
        else:
            response.event.CopyFrom(convert.event_to_proto(recorded.event))
        response.duplicate = recorded.duplicate
        if with_tenant and recorded.tenant is not None:
            response.tenant.CopyFrom(convert.tenant_to_proto(recorded.tenant, self._now()))
        return response

    async def StreamUsage(
        self, request_iterator: AsyncIterator[metering_pb2.RecordUsageRequest], context: Context
    ) -> AsyncIterator[metering_pb2.UsageAck]:
        credential = self._credential(context)
        if credential.kind != SERVICE:
            raise PermissionDenied("StreamUsage is for service credentials")
        run_id = _run_id(context)
        async for batch in batches(
            request_iterator, max_batch=STREAM_BATCH, read_ahead=STREAM_BATCH * 4
        ):
            yield await self._commit_usage(credential, batch, run_id)

    async def _commit_usage(
        self,
        credential: Credential,
        batch: list[metering_pb2.RecordUsageRequest],
        run_id: str,
    ) -> metering_pb2.UsageAck:
        now = self._now()
        specs = [convert.usage_spec(r, now, run_id) for r in batch]
        recorded = await self._recorder.record_many(credential, specs)
        count_recorded(recorded)  # counted like the other RPCs' events (it never was)
        duplicates = sum(r.duplicate for r in recorded)
        return metering_pb2.UsageAck(
            request_ids=[s.request_id for s in specs],
            accepted=len(recorded) - duplicates,
            duplicates=duplicates,
        )

    async def GetSpend(
        self, request: metering_pb2.GetSpendRequest, context: Context
    ) -> metering_pb2.GetSpendResponse:
        credential = self._credential(context)
        subject = request.WhichOneof("subject")
        if subject is None:
            raise InvalidArgument("subject", "one of tenant_id, key_name, agent_id, agent_run_id")
        value = text(getattr(request, subject), subject, required=True, limit=256)
        if subject == "tenant_id":
            valid_tenant_id(value, required=True)
        tenant = valid_tenant_id(request.subject_tenant_id, "subject_tenant_id")
        start_us, end_us = convert.window(
            request.start_time,
            request.HasField("start_time"),
            request.end_time,
            request.HasField("end_time"),
        )
        if end_us is None:
            end_us = self._now() * 1000 + 1
        totals, count = await self._reader.spend(
            credential, subject, value, EventFilter(start_us=start_us, end_us=end_us), tenant
        )
        return metering_pb2.GetSpendResponse(
            totals=[money_to_proto(t) for t in totals], event_count=count
        )

    async def ListBillingEvents(
        self, request: metering_pb2.ListBillingEventsRequest, context: Context
    ) -> metering_pb2.ListBillingEventsResponse:
        credential = self._credential(context)
        f = convert.event_filter(request.filter)
        size = convert.page_size(request.page_size)
        order_by = text(request.order_by, "order_by", limit=64)
        newest = page_tokens.newest_first(order_by, "occur_time")
        after = convert.parse_page_token(
            request.filter, newest, text(request.page_token, "page_token", limit=512)
        )
        events = await self._reader.list_events(credential, f, after, size + 1, newest)
        token = ""
        if len(events) > size:
            events = events[:size]
            token = convert.page_token(request.filter, newest, events[-1])
        return metering_pb2.ListBillingEventsResponse(
            events=[convert.event_to_proto(e) for e in events], next_page_token=token
        )

    async def ExportBillingEvents(
        self, request: metering_pb2.ExportBillingEventsRequest, context: Context
    ) -> AsyncIterator[metering_pb2.BillingEvent]:
        credential = self._credential(context)
        f = convert.event_filter(request.filter)
        async for event in self._reader.export_events(credential, f):
            yield convert.event_to_proto(event)

    async def SetTenantBudget(
        self, request: metering_pb2.SetTenantBudgetRequest, context: Context
    ) -> metering_pb2.Tenant:
        credential = self._credential(context)
        tenant_id = valid_tenant_id(request.tenant_id, required=True)
        threshold = None
        if request.HasField("daily_threshold") and request.daily_threshold.micros != 0:
            threshold = convert.money(request.daily_threshold, "daily_threshold")
            if threshold.micros < 0:
                raise InvalidArgument("daily_threshold.micros", "must not be negative")
        view = await self._budgets.set_budget(
            credential, tenant_id, threshold, request.lift_throttle
        )
        return convert.tenant_to_proto(view, self._now())

    async def GetTenant(
        self, request: metering_pb2.GetTenantRequest, context: Context
    ) -> metering_pb2.Tenant:
        credential = self._credential(context)
        tenant_id = valid_tenant_id(request.tenant_id, required=True)
        view = await self._budgets.get_tenant(credential, tenant_id)
        return convert.tenant_to_proto(view, self._now())

    async def SetTenantModelPrice(
        self, request: metering_pb2.SetTenantModelPriceRequest, context: Context
    ) -> metering_pb2.ModelPrice:
        credential = self._credential(context)
        tenant_id = valid_tenant_id(request.tenant_id, required=True)
        model = text(request.model, "model", required=True, limit=256)
        price = None
        if not request.clear:
            price = ModelPrice(
                model=model,
                input_per_million_micros=_per_million(request.input_per_million_micros, "input"),
                output_per_million_micros=_per_million(request.output_per_million_micros, "output"),
                cached_input_per_million_micros=_per_million(
                    request.cached_input_per_million_micros, "cached_input"
                ),
                effective="",
            )
        in_force, source = await self._prices.set_tenant_price(credential, tenant_id, price, model)
        return _price_to_proto(tenant_id, model, in_force, source)

    async def GetTenantModelPrice(
        self, request: metering_pb2.GetTenantModelPriceRequest, context: Context
    ) -> metering_pb2.ModelPrice:
        tenant_id = valid_tenant_id(request.tenant_id, required=True)
        model = text(request.model, "model", required=True, limit=256)
        price, source = await self._prices.tenant_price(self._credential(context), tenant_id, model)
        return _price_to_proto(tenant_id, model, price, source)


def _price_to_proto(
    tenant_id: str, model: str, price: ModelPrice, source: str
) -> metering_pb2.ModelPrice:
    return metering_pb2.ModelPrice(
        tenant_id=tenant_id if source.startswith("tenant:") else "",
        model=model,
        input_per_million_micros=price.input_per_million_micros,
        output_per_million_micros=price.output_per_million_micros,
        cached_input_per_million_micros=price.cached_input_per_million_micros,
        source=source,
    )


def _per_million(value: int, kind: str) -> int:
    if not 0 <= value <= 10**12:
        raise InvalidArgument(f"{kind}_per_million_micros", "between 0 and 1e12")
    return value


def _batch_charge_spec(
    request: metering_pb2.ChargeRequest, index: int, now_ms: int, run: str
) -> EventSpec:
    """One charge of a batch checked as Charge checks it; its errors name the item."""
    try:
        return convert.charge_spec(request, now_ms, run)
    except InvalidArgument as error:
        bad = error.violations[0]
        raise InvalidArgument(f"requests[{index}].{bad.field}", bad.description) from None
