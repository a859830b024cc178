"""The egress gateway: agents hold only a vault key; every vendor call is authorized before it
is forwarded with the tenant's real secret, and charged from the vendor's own answer."""
