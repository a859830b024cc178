# Generated from _async/metering.py by scripts/unasync.py; do not edit: edit the async source.
"""The MeteringService client.

Same conventions as the vault client (request message or keyword fields; `timeout`, `token`).
Charge, RecordUsage and StreamUsage items get a fresh `request_id` when it is empty (the server
requires one, and it is what makes their retries safe) and the current `agent_run()` id when
`agent_run_id` is empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Unpack

from keyleash.client._base import SyncClientBase, named_request, run_stamper
from keyleash.client._transport import Requests, build_request
from keyleash.client.config import METERING_TARGET_ENV
from keyleash.client.fields import (
    ChargeFields,
    GetSpendFields,
    GetTenantModelPriceFields,
    ListBillingEventsFields,
    RecordUsageFields,
    SetTenantBudgetFields,
    SetTenantModelPriceFields,
)
from keyleash.metering.v1 import metering_pb2 as P
from keyleash.metering.v1 import metering_pb2_grpc


def _export_request(
    request: P.ExportBillingEventsRequest | P.BillingEventFilter | None,
) -> P.ExportBillingEventsRequest:
    if isinstance(request, P.BillingEventFilter):
        return P.ExportBillingEventsRequest(filter=request)
    return build_request(P.ExportBillingEventsRequest, request, {})


class SyncMeteringClient(SyncClientBase):
    """MeteringService client. `with SyncMeteringClient(...) as m: ...`"""

    TARGET_ENV: ClassVar[str] = METERING_TARGET_ENV

    def _make_stub(self, channel: Any) -> Any:
        return metering_pb2_grpc.MeteringServiceStub(channel)

    def charge(
        self,
        request: P.ChargeRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[ChargeFields],
    ) -> P.ChargeResponse:
        """Records what a call cost and settles its reservation; idempotent by request_id."""
        built = run_stamper(request_id=True)(build_request(P.ChargeRequest, request, fields))
        return self._invoker.unary("Charge", built, P.ChargeResponse, timeout, token)

    def batch_charge(
        self,
        requests: Iterable[P.ChargeRequest],
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> list[P.ChargeResponse]:
        """Records many charges in one message (1 to 1,000), all or none: one answer per
        request, in request order. agent_run_id comes from `agent_run()` where empty; each
        request needs its own request_id, so a retry after UNAVAILABLE records nothing twice."""
        stamp = run_stamper(request_id=True)
        built = P.BatchChargeRequest(requests=[stamp(r) for r in requests])
        response = self._invoker.unary("BatchCharge", built, P.BatchChargeResponse, timeout, token)
        return list(response.responses)

    def record_usage(
        self,
        request: P.RecordUsageRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[RecordUsageFields],
    ) -> P.RecordUsageResponse:
        """Records LLM token usage (priced by the server); idempotent by request_id."""
        built = run_stamper(request_id=True)(build_request(P.RecordUsageRequest, request, fields))
        return self._invoker.unary("RecordUsage", built, P.RecordUsageResponse, timeout, token)

    def stream_usage(
        self,
        requests: Requests[P.RecordUsageRequest],
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> Iterator[P.UsageAck]:
        """High-volume usage ingest (service credentials); each ack confirms durable commits."""
        return self._invoker.stream_stream(
            "StreamUsage", requests, run_stamper(request_id=True), P.UsageAck, timeout, token
        )

    def get_spend(
        self,
        request: P.GetSpendRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[GetSpendFields],
    ) -> P.GetSpendResponse:
        """Totals of a tenant, key (with descendants), agent or run over a time range."""
        built = build_request(P.GetSpendRequest, request, fields)
        return self._invoker.unary("GetSpend", built, P.GetSpendResponse, timeout, token)

    def list_billing_events(
        self,
        request: P.ListBillingEventsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[ListBillingEventsFields],
    ) -> P.ListBillingEventsResponse:
        """One page of billing events, oldest first."""
        built = build_request(P.ListBillingEventsRequest, request, fields)
        return self._invoker.unary(
            "ListBillingEvents", built, P.ListBillingEventsResponse, timeout, token
        )

    def iter_billing_events(
        self,
        request: P.ListBillingEventsRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[ListBillingEventsFields],
    ) -> Iterator[P.BillingEvent]:
        """Every billing event matching the filter, page after page."""
        built = build_request(P.ListBillingEventsRequest, request, fields)
        while True:
            page = self._invoker.unary(
                "ListBillingEvents", built, P.ListBillingEventsResponse, timeout, token
            )
            for event in page.events:
                yield event
            if not page.next_page_token:
                return
            built.page_token = page.next_page_token

    def export_billing_events(
        self,
        request: P.ExportBillingEventsRequest | P.BillingEventFilter | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> Iterator[P.BillingEvent]:
        """Streams every matching event (a request or just its filter). Not retried."""
        return self._invoker.unary_stream(
            "ExportBillingEvents", _export_request(request), P.BillingEvent, timeout, token
        )

    def set_tenant_budget(
        self,
        request: P.SetTenantBudgetRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[SetTenantBudgetFields],
    ) -> P.Tenant:
        """Sets a tenant's daily threshold or lifts its throttle (admin). Never retried."""
        built = build_request(P.SetTenantBudgetRequest, request, fields)
        return self._invoker.unary("SetTenantBudget", built, P.Tenant, timeout, token)

    def set_tenant_model_price(
        self,
        request: P.SetTenantModelPriceRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[SetTenantModelPriceFields],
    ) -> P.ModelPrice:
        """Sets (or clears) a tenant's own price for a model (admin). Never retried."""
        built = build_request(P.SetTenantModelPriceRequest, request, fields)
        return self._invoker.unary("SetTenantModelPrice", built, P.ModelPrice, timeout, token)

    def get_tenant_model_price(
        self,
        request: P.GetTenantModelPriceRequest | None = None,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
        **fields: Unpack[GetTenantModelPriceFields],
    ) -> P.ModelPrice:
        """The price a tenant pays for a model now, and its source (admin or service)."""
        built = build_request(P.GetTenantModelPriceRequest, request, fields)
        return self._invoker.unary("GetTenantModelPrice", built, P.ModelPrice, timeout, token)

    def get_tenant(
        self,
        request: P.GetTenantRequest | str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> P.Tenant:
        """A tenant's threshold, spend today and throttle state (a request or the tenant id)."""
        built = named_request(P.GetTenantRequest, request, {}, "tenant_id")
        return self._invoker.unary("GetTenant", built, P.Tenant, timeout, token)

    def batch_record_usage(
        self,
        tenant_id: str,
        requests: list[P.RecordUsageRequest],
        /,
        *,
        view: P.BillingEventView = P.BILLING_EVENT_VIEW_UNSPECIFIED,
        timeout: float | None = None,
        token: str | None = None,
    ) -> P.BatchRecordUsageResponse:
        """Records up to 1000 usage events of one tenant, all or nothing, durable on return
        (service or admin); each request needs its own request_id, so a retry is safe.
        `view=BILLING_EVENT_VIEW_BASIC` answers each event with its id, kind and amount only."""
        stamp = run_stamper(request_id=True)
        built = P.BatchRecordUsageRequest(
            tenant_id=tenant_id, requests=[stamp(r) for r in requests], view=view
        )
        return self._invoker.unary(
            "BatchRecordUsage", built, P.BatchRecordUsageResponse, timeout, token
        )

    def create_usage_webhook_secret(
        self,
        tenant_id: str,
        /,
        *,
        signing_secret: str = "",
        timeout: float | None = None,
        token: str | None = None,
    ) -> P.CreateUsageWebhookSecretResponse:
        """A tenant's usage webhook signing secret, shown once (admin)."""
        built = P.CreateUsageWebhookSecretRequest(
            tenant_id=tenant_id, signing_secret=signing_secret
        )
        return self._invoker.unary(
            "CreateUsageWebhookSecret", built, P.CreateUsageWebhookSecretResponse, timeout, token
        )

    def rotate_usage_webhook_secret(
        self,
        tenant_id: str,
        /,
        *,
        signing_secret: str = "",
        timeout: float | None = None,
        token: str | None = None,
    ) -> P.RotateUsageWebhookSecretResponse:
        """Replaces a tenant's usage webhook signing secret; the new one is shown once (admin)."""
        built = P.RotateUsageWebhookSecretRequest(
            tenant_id=tenant_id, signing_secret=signing_secret
        )
        return self._invoker.unary(
            "RotateUsageWebhookSecret", built, P.RotateUsageWebhookSecretResponse, timeout, token
        )

    def access_usage_webhook_secret(
        self,
        tenant_id: str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> P.AccessUsageWebhookSecretResponse:
        """The tenant's signing secret in clear, for the webhook receiver (service only)."""
        built = P.AccessUsageWebhookSecretRequest(tenant_id=tenant_id)
        return self._invoker.unary(
            "AccessUsageWebhookSecret", built, P.AccessUsageWebhookSecretResponse, timeout, token
        )

    def set_exchange_rate(
        self,
        base_currency_code: str,
        quote_currency_code: str,
        rate: str,
        /,
        *,
        timeout: float | None = None,
        token: str | None = None,
    ) -> P.ExchangeRate:
        """Puts base/quote = rate (an exact decimal string, e.g. "1.08") in force for every
        tenant from now on (admin). Never retried."""
        built = P.SetExchangeRateRequest(
            base_currency_code=base_currency_code,
            quote_currency_code=quote_currency_code,
            rate=rate,
        )
        return self._invoker.unary("SetExchangeRate", built, P.ExchangeRate, timeout, token)

    def list_exchange_rates(
        self, *, timeout: float | None = None, token: str | None = None
    ) -> P.ListExchangeRatesResponse:
        """Every exchange rate in force and the FX table's version (admin or service)."""
        return self._invoker.unary(
            "ListExchangeRates",
            P.ListExchangeRatesRequest(),
            P.ListExchangeRatesResponse,
            timeout,
            token,
        )
