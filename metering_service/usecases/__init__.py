"""Metering's use cases, one behaviour per module:

- `record_spend`: Charge, RecordUsage and StreamUsage: price, commit (group commit), then settle
  the hold in Redis (`settle.lua`, planned by `domain/settle.py`) exactly once per new event.
- `key_access`: which key a credential may record or read spend for.
- `model_prices`: the price a tenant pays for a model; SetTenantModelPrice, GetTenantModelPrice.
- `tenant_budgets`: SetTenantBudget and GetTenant (the daily threshold and the throttle).
- `read_spend`: GetSpend, ListBillingEvents and ExportBillingEvents, narrowed to the caller.
"""
