"""The endpoint's port to the Vault: redeem a signed link (ApproveApproval / DenyApproval with
its token) under the service credential. Vault refusals become LinkAnswer errors with the HTTP
status a browser or an SDK can act on; an unreachable Vault is 503 (nothing was decided)."""

from __future__ import annotations

from keyleash.client import (
    FailedPrecondition,
    InvalidArgument,
    KeyleashError,
    NotFound,
    PermissionDenied,
    VaultClient,
)
from keyleash.vault.v1 import vault_pb2
from keyleash_approvals.settings import ApprovalsSettings
from keyleash_core.approval_links import LinkAction, peek_link


class LinkFailed(Exception):
    """The link was not redeemed: `status` (HTTP), `code` (stable), `message` (for people)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


_STATUSES: list[tuple[type[KeyleashError], int, str]] = [
    (PermissionDenied, 403, "LINK_REFUSED"),
    (FailedPrecondition, 409, "ALREADY_DECIDED"),
    (NotFound, 404, "NOT_FOUND"),
    (InvalidArgument, 400, "INVALID_LINK"),
]


class VaultPort:
    def __init__(self, settings: ApprovalsSettings) -> None:
        self._vault = VaultClient(
            settings.vault_target,
            token=settings.service_token,
            timeout=settings.keyleash_timeout_seconds,
        )

    async def redeem(self, action: LinkAction, token: str, reason: str) -> vault_pb2.Approval:
        try:
            if action is LinkAction.APPROVE:
                return await self._vault.approve_approval(
                    vault_pb2.ApproveApprovalRequest(
                        name=_claimed_name(token), link_token=token, reason=reason
                    )
                )
            return await self._vault.deny_approval(
                vault_pb2.DenyApprovalRequest(
                    name=_claimed_name(token), link_token=token, reason=reason
                )
            )
        except KeyleashError as error:
            for kind, status, code in _STATUSES:
                if isinstance(error, kind):
                    raise LinkFailed(status, code, error.message) from None
            raise LinkFailed(503, "UNAVAILABLE", "Keyleash could not decide; try again") from None

    async def close(self) -> None:
        await self._vault.close()


def _claimed_name(token: str) -> str:
    claim = peek_link(token)
    if claim is None:
        raise LinkFailed(400, "INVALID_LINK", "this is not an approval link")
    return claim.approval_name
