"""Lua scripts run atomically inside Redis; loaded by keyleash_core.redis.scripts.Scripts."""
