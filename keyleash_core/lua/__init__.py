"""Lua scripts run atomically inside Redis; loaded by keyleash_core.redis_store.Scripts."""
