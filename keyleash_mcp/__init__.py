"""Keyleash as tools for LLM agents, over MCP (the official `mcp` SDK): stdio (`keyleash mcp`,
the vault key from KEYLEASH_TOKEN) and streamable HTTP (`keyleash mcp --http`, each caller's vault
key as its Bearer header).

server.py (the MCP server and its tools, thin) -> tools.py (the use cases, over the Python client,
always with the caller's own key) -> views.py (pure: quotas and errors as tool results).
"""
