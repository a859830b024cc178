"""`guard()`: Authorize → the caller's block → Charge, with a stable request_id.

    async with guard(vault, metering, key=secret, scope="stripe.charges.write",
                     estimated_cost=("USD", 2_000_000), vendor="stripe",
                     method="POST", path="/v1/charges", request_id=step_id) as call:
        reply = await stripe_charge(...)
        call.actual_cost = usd_micros(reply.amount)      # default: the estimate
        call.vendor_request_id = reply.id

- Authorize carries the estimated cost and request_id `"{request_id}:authorize"`; a DENY raises
  `RateLimited` (retryable after `retry_after`), `BudgetExhausted` (stop, do not retry),
  `KeyBlocked`, or `Denied`, and the block does not run.
- On normal exit, Charge records `call.actual_cost` against the reservation with request_id
  `"{request_id}:charge"`; the response is left in `call.charge`.
- When the block raises, a zero Charge with request_id `"{request_id}:release"` releases the
  hold, and the exception propagates.

Give the same `request_id` when an agent framework retries a step: the vault answers a retried
Authorize with its first decision and metering records each request_id once, so the step is
charged once however often it is retried. The release has its own id so that a retry succeeding
after a failed attempt still records its charge (a `:charge` id already used by a zero charge
would be refused as REQUEST_ID_REUSED). A retry must report the same actual cost and details: one
reporting others fails with AlreadyExists (REQUEST_ID_REUSED) and charges nothing more. Without
`request_id`, each guard generates one.

After a `Denied`, nothing was consumed, held or charged: retry it (after `retry_after`) with a new
request_id. The vault remembers a request_id's first decision, a DENY included, so the same id
would be denied again.

Credentials: each call uses its client's token; a client without one sends `key` as the bearer.

`guard()` is in `_async/guard.py`; `sync_guard()` is generated from it by scripts/unasync.py.
"""

from keyleash.client._async.guard import guard
from keyleash.client._guarded_call import GuardHandle, MoneyLike, to_money
from keyleash.client._sync.guard import sync_guard

__all__ = ["GuardHandle", "MoneyLike", "guard", "sync_guard", "to_money"]
