"""The MCP server: one tool per use case in tools.py, the caller's vault key from the transport
(the Bearer header over streamable HTTP; KEYLEASH_TOKEN for a stdio server, which serves one
agent). Failures are tool results with isError set and a message that says what to do."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field

from keyleash.client.errors import KeyleashError
from keyleash_mcp.tools import (
    ApprovalAsk,
    BudgetExhausted,
    ChildKeySpec,
    KeyleashTools,
    StoppedKey,
    WrongArguments,
)
from keyleash_mcp.views import tool_error_message

T = TypeVar("T")
# Where a call's vault key comes from: the request (HTTP) or the process (stdio).
KeySource = Callable[[Context], str]

INSTRUCTIONS = (
    "Keyleash governs what this agent may spend. Check budget_status before costly work; mint "
    "sub-agents their own narrower keys with mint_child_key; an answer starting with STOP means "
    "stop that work and tell a human, never retry it."
)
RunId = Annotated[
    str, Field(default="", max_length=256, description="an agent run id; empty: the whole key")
]
ChildName = Annotated[
    str,
    Field(
        min_length=3,
        max_length=200,
        description='a descendant key: its id "k_…" or name "tenants/{t}/keys/{k}"',
    ),
]
Reason = Annotated[str, Field(min_length=1, max_length=500, description="why, for the audit")]


def bearer_key(ctx: Context) -> str:
    """The vault key of an HTTP caller (`Authorization: Bearer vk_…`)."""
    scheme, _, token = ((ctx.headers or {}).get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ToolError("STOP: no vault key: send it as `Authorization: Bearer vk_…`")
    return token.strip()


def fixed_key(key: str) -> KeySource:
    """The one vault key of a stdio server."""
    return lambda _ctx: key


async def _answer(action: Awaitable[T]) -> T:
    """A use case's result, or a ToolError the agent can act on (never a traceback)."""
    try:
        return await action
    except BudgetExhausted as exhausted:
        raise ToolError(f"{exhausted}\n{json.dumps(exhausted.status)}") from None
    except StoppedKey as stopped:
        raise ToolError(
            f"STOP: this vault key can no longer be used ({stopped.reason}): do not retry; "
            "ask a human operator."
        ) from None
    except WrongArguments as wrong:
        raise ToolError(f"invalid arguments: {wrong}. Fix them before calling again.") from None
    except KeyleashError as error:
        raise ToolError(tool_error_message(error)) from None


def build_server(tools: KeyleashTools, key_of: KeySource) -> MCPServer:
    server: MCPServer = MCPServer("keyleash", instructions=INSTRUCTIONS, version="1")
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=read_only)
    async def budget_status(ctx: Context, agent_run_id: RunId = "") -> dict[str, Any]:
        """What this key, its ancestors and (with agent_run_id) the run have left on every
        rate and spend limit; reading consumes nothing. Answers STOP when a spend limit has
        nothing left."""
        return await _answer(tools.budget_status(key_of(ctx), agent_run_id))

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False))
    async def mint_child_key(ctx: Context, spec: ChildKeySpec) -> dict[str, Any]:
        """Mint a key for a sub-agent, within this key's rights (scopes a subset, caps and
        rates at most this key's, expiry no later). Returns the child's secret once."""
        return await _answer(tools.mint_child_key(key_of(ctx), spec))

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
    async def freeze_child_key(ctx: Context, key: ChildName, reason: Reason) -> dict[str, Any]:
        """Freeze a descendant key (and so its subtree) at once; an ancestor can unfreeze it."""
        return await _answer(tools.freeze_child_key(key_of(ctx), key, reason))

    @server.tool(annotations=ToolAnnotations(destructive_hint=True, open_world_hint=False))
    async def revoke_child_key(ctx: Context, key: ChildName, reason: Reason) -> dict[str, Any]:
        """Revoke a descendant key and its whole subtree, irreversibly."""
        return await _answer(tools.revoke_child_key(key_of(ctx), key, reason))

    @server.tool(annotations=ToolAnnotations(destructive_hint=False, open_world_hint=False))
    async def request_approval(ctx: Context, ask: ApprovalAsk) -> dict[str, Any]:
        """Ask a human to raise the cap that stopped you, for the rest of its window (the day,
        the month, the run). Returns the pending request; poll approval_status."""
        return await _answer(tools.request_approval(key_of(ctx), ask))

    @server.tool(annotations=read_only)
    async def approval_status(
        ctx: Context,
        approval: Annotated[
            str, Field(min_length=10, max_length=200, description='"tenants/{t}/approvals/{id}"')
        ],
    ) -> dict[str, Any]:
        """Whether a human approved (and how much), denied, or let the request expire."""
        return await _answer(tools.approval_status(key_of(ctx), approval))

    @server.tool(annotations=read_only)
    async def spend_report(
        ctx: Context,
        agent_run_id: RunId = "",
        recent: Annotated[int, Field(ge=1, le=100, description="how many decisions")] = 20,
    ) -> dict[str, Any]:
        """What this key's subtree (or one run) has spent, and its newest decisions."""
        return await _answer(tools.spend_report(key_of(ctx), agent_run_id, recent))

    return server
