"""Versioned SQL migrations, applied in order at start-up by keyleash_core.postgres."""
