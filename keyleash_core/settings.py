"""Reading KEYLEASH_* settings: only the settings modules call these; nothing else reads the
environment."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


class SettingsError(Exception):
    """A setting is missing or malformed; the message names the variable."""


_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def env_str(env: Mapping[str, str], name: str, default: str = "") -> str:
    return env.get(name, default).strip()


def env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "on", "yes"):
        return True
    if raw in ("0", "false", "off", "no"):
        return False
    raise SettingsError(f"{name} must be on or off, got {raw!r}")


def env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def env_sha256_list(env: Mapping[str, str], name: str) -> frozenset[str]:
    raw = env.get(name, "").strip()
    hashes = frozenset(part.strip().lower() for part in raw.split(",") if part.strip())
    for digest in hashes:
        if not _SHA256_HEX.match(digest):
            raise SettingsError(f"{name} must be comma-separated hex SHA-256 digests")
    return hashes


@dataclass(frozen=True)
class TlsSettings:
    """Server TLS: PEM contents read at start. With client_ca, clients must present a
    certificate signed by it (mutual TLS)."""

    certificate_chain: bytes
    private_key: bytes
    client_ca: bytes | None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TlsSettings | None:
        cert = env_str(env, "KEYLEASH_TLS_CERT_FILE")
        key = env_str(env, "KEYLEASH_TLS_KEY_FILE")
        client_ca = env_str(env, "KEYLEASH_TLS_CLIENT_CA_FILE")
        if not cert and not key:
            if client_ca:
                raise SettingsError("KEYLEASH_TLS_CLIENT_CA_FILE needs KEYLEASH_TLS_CERT_FILE")
            return None
        if not (cert and key):
            raise SettingsError("KEYLEASH_TLS_CERT_FILE and KEYLEASH_TLS_KEY_FILE go together")
        return cls(
            certificate_chain=_read(cert, "KEYLEASH_TLS_CERT_FILE"),
            private_key=_read(key, "KEYLEASH_TLS_KEY_FILE"),
            client_ca=_read(client_ca, "KEYLEASH_TLS_CLIENT_CA_FILE") if client_ca else None,
        )


def _read(path: str, name: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise SettingsError(f"{name}: cannot read {path}: {error.strerror}") from None


@dataclass(frozen=True)
class StoreSettings:
    """Settings both services share: the stores, credentials and the secret-hashing pepper."""

    redis_url: str
    database_url: str
    admin_token_hashes: frozenset[str]
    service_token_hashes: frozenset[str]
    key_pepper: bytes
    store_timeout_seconds: float
    metrics_port: int
    tls: TlsSettings | None = None
    reuse_port: bool = False
    redis_cluster: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StoreSettings:
        redis_url = env_str(env, "KEYLEASH_REDIS_URL")
        database_url = env_str(env, "KEYLEASH_DATABASE_URL")
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise SettingsError("KEYLEASH_REDIS_URL must be set to a redis:// URL")
        if not database_url.startswith(("postgresql://", "postgres://")):
            raise SettingsError("KEYLEASH_DATABASE_URL must be set to a postgresql:// URL")
        redis_cluster = env_bool(env, "KEYLEASH_REDIS_CLUSTER", False)
        if redis_cluster:
            _check_cluster_url(redis_url)
        pepper = env_str(env, "KEYLEASH_KEY_PEPPER")
        if len(pepper) < 16:
            raise SettingsError(
                "KEYLEASH_KEY_PEPPER must be set to a secret of at least 16 characters "
                "(keys are stored as HMAC-SHA-256 under it)"
            )
        return cls(
            redis_url=redis_url,
            database_url=database_url,
            admin_token_hashes=env_sha256_list(env, "KEYLEASH_ADMIN_TOKEN_SHA256"),
            service_token_hashes=env_sha256_list(env, "KEYLEASH_SERVICE_TOKEN_SHA256"),
            key_pepper=pepper.encode(),
            store_timeout_seconds=env_float(env, "KEYLEASH_STORE_TIMEOUT_SECONDS", 2.0),
            metrics_port=env_int(env, "KEYLEASH_METRICS_PORT", 0),
            tls=TlsSettings.from_env(env),
            reuse_port=env_bool(env, "KEYLEASH_REUSE_PORT", False),
            redis_cluster=redis_cluster,
        )


def _check_cluster_url(url: str) -> None:
    """A Redis Cluster is reached over TCP and has only database 0."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise SettingsError(
            "KEYLEASH_REDIS_CLUSTER=on needs a redis:// or rediss:// KEYLEASH_REDIS_URL "
            "(a cluster has no unix socket)"
        )
    if parsed.path.strip("/") not in ("", "0"):
        raise SettingsError(
            "KEYLEASH_REDIS_CLUSTER=on needs database 0 in KEYLEASH_REDIS_URL (a cluster has "
            "no other)"
        )
