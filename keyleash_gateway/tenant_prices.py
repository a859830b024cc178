"""The price an LLM call is held and charged at: the tenant's own when it has one (Metering's
GetTenantModelPrice: the price RecordUsage prices the tenant's usage with), else the shipped
table's that the vendor module already priced the endpoint from.

Two caches keep this off the hot path. A key's tenant never changes, so it is learnt once per
key (ValidateKey, keyed by a digest of the secret, never the secret). A tenant's price is reused
for PRICE_CACHE_SECONDS, the same bound as Metering's own cache of tenant prices: a price an
admin sets or clears applies to calls authorized from then on within that bound, and each call
is held and charged at one price, the one in force when it was authorized (so its charge is
exactly its tokens x that price, to the micro).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from keyleash_core.llm_prices import ModelPrice
from keyleash_gateway import answers
from keyleash_gateway.answers import Reply
from keyleash_gateway.keyleash import Keyleash, KeyleashUnavailable
from keyleash_gateway.vendors import llm
from keyleash_gateway.vendors.base import Endpoint

log = logging.getLogger("keyleash.gateway")

PRICE_CACHE_SECONDS = 5.0
MAX_KEYS = 100_000
MAX_PRICES = 10_000


class TenantPrices:
    """One per process; safe for concurrent use (a cold cache may ask Metering twice)."""

    def __init__(
        self,
        keyleash: Keyleash,
        cache_seconds: float = PRICE_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keyleash = keyleash
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._tenants: OrderedDict[bytes, str] = OrderedDict()
        self._prices: dict[tuple[str, str], tuple[float, ModelPrice | None, str]] = {}

    async def priced_or_reply(self, endpoint: Endpoint, key: str) -> Endpoint | Reply:
        """`priced`, or the 503 answer when Keyleash could not say (nothing is forwarded)."""
        try:
            return await self.priced(endpoint, key)
        except KeyleashUnavailable as error:
            log.warning("keyleash unavailable pricing %s: %s", endpoint.name, error)
            return answers.unavailable("Keyleash could not price this call; nothing was sent")

    async def priced(self, endpoint: Endpoint, key: str) -> Endpoint:
        """The endpoint at the tenant's own price, or unchanged (not an LLM call, the table's
        price, a key the Vault does not know: Authorize then refuses it). KeyleashUnavailable
        when Vault or Metering did not answer (nothing is forwarded)."""
        call = endpoint.llm
        if call is None:
            return endpoint
        tenant_id = await self._tenant_of(key)
        if not tenant_id:
            return endpoint
        price, source = await self._price(tenant_id, call.price)
        if price is None:
            return endpoint
        return llm.with_tenant_price(endpoint, price, source)

    async def _tenant_of(self, key: str) -> str:
        digest = hashlib.sha256(key.encode()).digest()
        tenant_id = self._tenants.get(digest)
        if tenant_id is not None:
            self._tenants.move_to_end(digest)
            return tenant_id
        answer = await self._keyleash.validate_key(key)
        tenant_id = answer.key.tenant_id if answer.HasField("key") else ""
        if tenant_id:
            self._tenants[digest] = tenant_id
            if len(self._tenants) > MAX_KEYS:
                self._tenants.popitem(last=False)
        return tenant_id

    async def _price(self, tenant_id: str, table: ModelPrice) -> tuple[ModelPrice | None, str]:
        """The tenant's own price for the table's model (a dated snapshot uses its model's) and
        its source, or None when the tenant pays the table's."""
        cached = self._prices.get((tenant_id, table.model))
        if cached is not None and self._monotonic() - cached[0] < self._cache_seconds:
            return cached[1], cached[2]
        answer = await self._keyleash.tenant_model_price(tenant_id, table.model)
        own, source = None, ""
        if answer is not None and answer.source.startswith("tenant:"):
            own = ModelPrice(
                model=table.model,
                input_per_million_micros=answer.input_per_million_micros,
                output_per_million_micros=answer.output_per_million_micros,
                cached_input_per_million_micros=answer.cached_input_per_million_micros,
                effective="",
                max_output_tokens=table.max_output_tokens,
            )
            source = answer.source
        if len(self._prices) > MAX_PRICES:
            self._prices.clear()
        self._prices[(tenant_id, table.model)] = (self._monotonic(), own, source)
        return own, source
