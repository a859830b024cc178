"""`python -m vault_service.audit`: run only the audit drainer, as its own process.

Every vault process already drains (KEYLEASH_AUDIT_DRAIN=on, the default); this entry point is for
deployments that set it off on the vaults and scale the drainer separately.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from keyleash_core.redis.scripts import close_redis, create_redis
from keyleash_core.settings import SettingsError
from keyleash_core.stores import StartupError, connect_stores
from vault_service.audit.drainer import AuditDrainer
from vault_service.settings import VaultSettings


async def main() -> None:
    settings = VaultSettings.from_env(os.environ)
    stores = await connect_stores(settings.stores, pool_size=4)
    client = create_redis(
        settings.stores.redis_url,
        timeout_seconds=settings.stores.store_timeout_seconds,
        client_name="keyleash-audit-drainer",
        cluster=settings.stores.redis_cluster,
    )
    drainer = AuditDrainer(
        client,
        stores.pool,
        retention_days=settings.audit_retention_days,
        batch_size=settings.audit_batch_size,
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    drainer.start()
    print("audit drainer running", flush=True)
    await stop.wait()
    await drainer.stop()
    await close_redis(client)
    await stores.aclose()


if __name__ == "__main__":
    logging.basicConfig(level=os.environ.get("KEYLEASH_LOG_LEVEL", "INFO").upper())
    try:
        asyncio.run(main())
    except (SettingsError, StartupError) as error:
        print(f"audit drainer: {error}", file=sys.stderr)
        raise SystemExit(2) from None
