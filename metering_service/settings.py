"""Metering settings, read once from KEYLEASH_* variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keyleash_core.settings import StoreSettings, env_int, env_str


@dataclass(frozen=True)
class MeteringSettings:
    """Everything the Metering service is configured with."""

    stores: StoreSettings
    listen: str
    max_batch_size: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MeteringSettings:
        return cls(
            stores=StoreSettings.from_env(env),
            listen=env_str(env, "KEYLEASH_METERING_LISTEN", "0.0.0.0:50052"),
            max_batch_size=env_int(env, "KEYLEASH_CHARGE_BATCH_SIZE", 512),
        )
