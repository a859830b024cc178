"""Composition root of the Metering service: stores, domain, servicer, interceptors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import grpc

from keyleash.metering.v1 import metering_pb2, metering_pb2_grpc
from keyleash_core.clock import Clock, SystemClock
from keyleash_core.fx.store import FxRates
from keyleash_core.grpc_server import BuiltServer, start_grpc_server
from keyleash_core.stores import connect_stores
from keyleash_core.telemetry import server_interceptors, setup_metrics
from metering_service.alerts.store import AlertStore
from metering_service.alerts.subscriptions import AlertSubscriptions
from metering_service.alerts.worker import AlertWorker
from metering_service.pricing import load_price_table
from metering_service.servicer import MeteringServicer
from metering_service.settings import MeteringSettings
from metering_service.store.hot import Settlements
from metering_service.store.keys import KeyDirectory
from metering_service.store.prices import TenantPrices
from metering_service.store.reservations import ReservationOwners
from metering_service.store.tenants import TenantBudgets
from metering_service.store.usage_webhook_secrets import UsageWebhookSecretStore
from metering_service.store.writer import GroupCommitWriter
from metering_service.usecases.exchange_rates import ExchangeRates
from metering_service.usecases.key_access import KeyAccess
from metering_service.usecases.model_prices import ModelPrices
from metering_service.usecases.read_spend import SpendReader
from metering_service.usecases.record_spend import SpendRecorder
from metering_service.usecases.tenant_budgets import TenantBudgetAdmin
from metering_service.usecases.usage_webhook_secrets import UsageWebhookSecrets

ERROR_DOMAIN = "metering.keyleash"
SERVICE_NAME = metering_pb2.DESCRIPTOR.services_by_name["MeteringService"].full_name


async def create_server(
    settings: MeteringSettings, address: str | None = None, *, clock: Clock | None = None
) -> BuiltServer:
    """Connects the stores and starts the server on `address` (port 0 picks a free port)."""
    setup_metrics(settings.stores.metrics_port)
    stores = await connect_stores(settings.stores)
    writer = GroupCommitWriter(
        stores.pool, max_batch_size=settings.max_batch_size, writers=settings.billing_writers
    )
    clock = clock or SystemClock()
    access = KeyAccess(KeyDirectory(stores.pool), settings.stores.key_pepper)
    tenants = TenantBudgets(stores.pool, stores.redis, stores.scripts)
    prices = ModelPrices(load_price_table(), TenantPrices(stores.pool))
    fx = FxRates(stores.pool)
    recorder = SpendRecorder(
        access=access,
        writer=writer,
        settlements=Settlements(stores.scripts),
        tenants=tenants,
        prices=prices,
        reservations=ReservationOwners(stores.pool, stores.redis),
        clock=clock,
        fx=fx,
    )
    servicer = MeteringServicer(
        recorder=recorder,
        reader=SpendReader(stores.pool, access),
        budgets=TenantBudgetAdmin(tenants, clock),
        prices=prices,
        alerts=AlertSubscriptions(AlertStore(stores.pool), settings.stores.key_pepper),
        usage_secrets=UsageWebhookSecrets(
            UsageWebhookSecretStore(stores.pool), settings.stores.key_pepper
        ),
        settings=settings.stores,
        exchange_rates=ExchangeRates(fx),
    )
    worker = AlertWorker(stores.pool, settings.alerts, settings.stores.key_pepper, clock)

    def register(server: grpc.aio.Server) -> Iterable[str]:
        metering_pb2_grpc.add_MeteringServiceServicer_to_server(servicer, server)
        return [SERVICE_NAME]

    async def close() -> None:
        await worker.close()
        await writer.close()
        await stores.aclose()

    writer.start()
    if settings.alerts.enabled:
        worker.start()
    try:
        return await start_grpc_server(
            address or settings.listen,
            register,
            domain=ERROR_DOMAIN,
            interceptors=server_interceptors(),
            on_close=close,
            tls=settings.stores.tls,
            reuse_port=settings.stores.reuse_port,
        )
    except BaseException:
        await close()
        raise


async def start_from_env(env: Mapping[str, str]) -> BuiltServer:
    return await create_server(MeteringSettings.from_env(env))
