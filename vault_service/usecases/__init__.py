"""The vault's use cases, one behaviour per module:

- `authorize`: Authorize and AuthorizeStream decide here (pure checks, then one Lua script).
- `key_chains`: a secret -> its key and ancestors (hashing, the process cache, loading Redis
  from Postgres), and ValidateKey.
- `permissions`: who may act on which key (admin, an ancestor key holder, the key itself).
- `manage_keys`: mint, change a policy, freeze/unfreeze and revoke a subtree, get and list.
- `list_decisions`: ListAuthorizations, the recorded decisions a caller may read.
"""
