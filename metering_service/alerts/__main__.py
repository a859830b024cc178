"""`python -m metering_service.alerts`: the alert scanner and dispatcher alone, from KEYLEASH_*
settings (as many as wanted: deliveries are claimed with SKIP LOCKED, facts are unique)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

from keyleash_core.clock import SystemClock
from keyleash_core.settings import SettingsError
from keyleash_core.stores import StartupError, connect_stores
from keyleash_core.telemetry import setup_logging
from metering_service.alerts.worker import AlertWorker
from metering_service.settings import MeteringSettings


async def main() -> None:
    settings = MeteringSettings.from_env(os.environ)
    stores = await connect_stores(settings.stores, pool_size=4)
    worker = AlertWorker(stores.pool, settings.alerts, settings.stores.key_pepper, SystemClock())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    worker.start()
    logging.getLogger("keyleash").info("alerts dispatcher running")
    print("alerts: running", flush=True)
    try:
        await stop.wait()
    finally:
        await worker.close()
        await stores.aclose()


if __name__ == "__main__":
    setup_logging(os.environ)
    try:
        asyncio.run(main())
    except (SettingsError, StartupError) as error:
        print(f"alerts: {error}", file=sys.stderr)
        raise SystemExit(2) from None
