"""Keyleash clients for agent runtimes: typed, async and sync, with the fiddly parts done right.

Integrate in five lines:

    from keyleash.client import MeteringClient, VaultClient, agent_run, guard

    async with VaultClient.from_env() as vault, MeteringClient.from_env() as metering:
        with agent_run("run-42"):
            async with guard(vault, metering, key=secret, scope="stripe.charges.write",
                             estimated_cost=("USD", 2_000_000), request_id=step_id) as call:
                call.actual_cost = ("USD", await pay())

What you get:

- `VaultClient` / `MeteringClient` (grpc.aio) and `SyncVaultClient` / `SyncMeteringClient`
  (blocking): one method per RPC (`mint_key`, `authorize`, `authorize_stream`, `validate_key`,
  `revoke_key`, `freeze_key`, `unfreeze_key`, `update_key_policy`, `get_key`, `list_keys`,
  `iter_keys`; `charge`, `record_usage`, `stream_usage`, `get_spend`, `list_billing_events`,
  `iter_billing_events`, `export_billing_events`, `set_tenant_budget`, `get_tenant`,
  `batch_record_usage`, `create_usage_webhook_secret`, `rotate_usage_webhook_secret`,
  `access_usage_webhook_secret`), taking the generated request message or its fields as
  keywords and returning the generated response.
- `keyleash.client.usage_hooks`: `UsageWebhookSender` / `SyncUsageWebhookSender` sign, post and
  retry usage events to the usage webhook receiver in one call (for LLM calls that bypass the
  gateway).
- `agent_run(run_id)`: stamps the run id on every call inside it (metadata `x-agent-run-id`,
  empty `agent_run_id` fields, OpenTelemetry baggage `agent_run_id`).
- `guard()` / `sync_guard()`: Authorize → your block → Charge, once per request_id.
- Typed exceptions (`keyleash.client.errors`) decoded from `grpc-status-details-bin`, each with
  `.retryable`; automatic retries with jittered backoff only where safe (`keyleash.client.retry`).

Constructor arguments: `target`, `token` (bearer; default `KEYLEASH_TOKEN`), `tls`,
`root_certificates` / `private_key` / `certificate_chain` (PEM bytes, PEM text or file paths),
`timeout` (seconds per call, default 10), `retry` (a RetryPolicy), `options` (gRPC channel
options), `channel` (an existing channel to use instead of opening one).

Environment, read by `from_env()`:

- `KEYLEASH_VAULT_TARGET`: vault address for VaultClient / SyncVaultClient, e.g. `localhost:50051`
- `KEYLEASH_METERING_TARGET`: metering address for the metering clients, e.g. `localhost:50052`
- `KEYLEASH_TOKEN`: bearer token (admin or service token, or a key secret `vk_...`); the
  constructors read it too when no `token` is given
- `KEYLEASH_TLS_CA`: path of a PEM CA bundle; when set, the channel uses TLS with it
- `KEYLEASH_TLS`: `1`/`true` for TLS with the system's roots (when KEYLEASH_TLS_CA is unset)
"""

from keyleash.client.connections import ConnectionsClient
from keyleash.client.errors import (
    AlreadyExists,
    BudgetExhausted,
    DeadlineExceeded,
    Denied,
    FailedPrecondition,
    FieldViolation,
    Internal,
    InvalidArgument,
    KeyBlocked,
    KeyleashError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    raise_for_decision,
)
from keyleash.client.guard import GuardHandle, guard, sync_guard, to_money
from keyleash.client.metering import MeteringClient, SyncMeteringClient
from keyleash.client.retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy
from keyleash.client.run import agent_run, current_run_id
from keyleash.client.vault import SyncVaultClient, VaultClient

__all__ = [
    "DEFAULT_RETRY",
    "NO_RETRY",
    "AlreadyExists",
    "BudgetExhausted",
    "ConnectionsClient",
    "DeadlineExceeded",
    "Denied",
    "FailedPrecondition",
    "FieldViolation",
    "GuardHandle",
    "Internal",
    "InvalidArgument",
    "KeyBlocked",
    "KeyleashError",
    "MeteringClient",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "ResourceExhausted",
    "RetryPolicy",
    "SyncMeteringClient",
    "SyncVaultClient",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "VaultClient",
    "agent_run",
    "current_run_id",
    "guard",
    "raise_for_decision",
    "sync_guard",
    "to_money",
]
