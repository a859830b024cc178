"""The vendors the gateway knows, by the first path segment of the route (`/{vendor}/...`)."""

from __future__ import annotations

from keyleash_gateway.vendors import anthropic, openai, resend, stripe, twilio
from keyleash_gateway.vendors.base import Vendor

VENDORS: dict[str, Vendor] = {
    "stripe": stripe,
    "resend": resend,
    "twilio": twilio,
    "openai": openai,
    "anthropic": anthropic,
}

__all__ = ["VENDORS", "Vendor"]
