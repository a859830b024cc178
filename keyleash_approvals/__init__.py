"""The approvals web endpoint: where a one-click approve/deny link from an alert lands.

`python -m keyleash_approvals` serves it; it holds a service credential and passes the link's
signed token to the Vault (ApproveApproval / DenyApproval), which verifies and spends it.
"""
