"""The gateway's kept connection secrets: used only under the version Authorize confirms."""

from __future__ import annotations

from keyleash_gateway.keyleash import Upstream
from keyleash_gateway.secrets_cache import SecretsCache


def upstream(version: str, secret: str = "sk_1") -> Upstream:
    return Upstream("http://up", secret, "k1", "tenants/t/connections/c", version)


def test_a_kept_secret_is_usable_only_under_its_own_nonempty_version() -> None:
    cache = SecretsCache()
    cache.keep("vk_a", "stripe", upstream("v1"))
    kept = cache.kept("vk_a", "stripe")
    assert kept is not None and cache.usable(kept, "v1") is kept
    assert cache.usable(kept, "v2") is None
    assert cache.usable(kept, "") is None
    assert cache.kept("vk_a", "twilio") is None and cache.kept("vk_b", "stripe") is None


def test_a_secret_without_a_version_is_not_kept_and_drops_the_old_one() -> None:
    cache = SecretsCache()
    cache.keep("vk_a", "stripe", upstream("v1"))
    cache.keep("vk_a", "stripe", upstream("", "sk_2"))
    assert cache.kept("vk_a", "stripe") is None


def test_the_cache_is_bounded_and_forgets_the_least_recently_kept() -> None:
    cache = SecretsCache(max_entries=2)
    for key in ("vk_a", "vk_b", "vk_c"):
        cache.keep(key, "stripe", upstream("v1"))
    assert cache.kept("vk_a", "stripe") is None
    assert cache.kept("vk_b", "stripe") is not None and cache.kept("vk_c", "stripe") is not None
    cache.forget("vk_b", "stripe")
    assert cache.kept("vk_b", "stripe") is None
