"""Vault domain logic: key format, policy checks, decision plans. Pure; the clock is injected."""
