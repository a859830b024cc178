"""Metering settings, read once from KEYLEASH_* variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from keyleash_core.settings import StoreSettings, env_bool, env_float, env_int, env_str


@dataclass(frozen=True)
class AlertSettings:
    """The alert scanner and dispatcher (metering_service/alerts)."""

    enabled: bool
    poll_seconds: float
    # Rows recorded this long ago are re-read every pass, so late commits are not skipped.
    lag_seconds: float
    # A claimed delivery is retried after this long if its dispatcher died mid-POST.
    lease_seconds: float
    retry_base_ms: int
    max_attempts: int
    horizon_ms: int
    # Where the approvals endpoint (keyleash_approvals) is reached from outside; approval
    # alerts carry one-click links to it. Empty: no links.
    approvals_url: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> AlertSettings:
        return cls(
            enabled=env_bool(env, "KEYLEASH_ALERTS", True),
            poll_seconds=env_float(env, "KEYLEASH_ALERTS_POLL_SECONDS", 1.0),
            lag_seconds=env_float(env, "KEYLEASH_ALERTS_LAG_SECONDS", 300.0),
            lease_seconds=env_float(env, "KEYLEASH_ALERTS_LEASE_SECONDS", 30.0),
            retry_base_ms=env_int(env, "KEYLEASH_ALERTS_RETRY_BASE_MS", 1000),
            max_attempts=env_int(env, "KEYLEASH_ALERTS_MAX_ATTEMPTS", 40),
            horizon_ms=int(env_float(env, "KEYLEASH_ALERTS_HORIZON_HOURS", 24.0) * 3_600_000),
            approvals_url=env_str(env, "KEYLEASH_APPROVALS_PUBLIC_URL").rstrip("/"),
        )


@dataclass(frozen=True)
class MeteringSettings:
    """Everything the Metering service is configured with."""

    stores: StoreSettings
    listen: str
    max_batch_size: int
    billing_writers: int
    alerts: AlertSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MeteringSettings:
        return cls(
            stores=StoreSettings.from_env(env),
            listen=env_str(env, "KEYLEASH_METERING_LISTEN", "0.0.0.0:50052"),
            max_batch_size=env_int(env, "KEYLEASH_CHARGE_BATCH_SIZE", 512),
            billing_writers=env_int(env, "KEYLEASH_BILLING_WRITERS", 2),
            alerts=AlertSettings.from_env(env),
        )
