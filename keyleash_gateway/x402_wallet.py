"""x402 payments as the gateway makes them: which requirement of a 402 challenge it can price,
what it costs in money, and the payment payload signed with the official `x402` SDK.

The wallet key is a connection secret (vendor "x402"): it lives in this process only while one
payment is signed, inside an eth-account LocalAccount, and is never logged or raised.

Prices: an asset is priced only when the SDK's own asset table knows it (USDC on the EVM
networks the SDK ships): 1 USDC = 1 USD, its atomic units (6 decimals) converted to micros,
rounded up. A requirement for any other asset is not payable (never priced at zero).

The payment nonce (EIP-3009's 32-byte `nonce`) is derived from the call's identity instead of
drawn at random, so a replayed challenge signs the same authorization: the chain (and the
facilitator) accept it once, and the Authorize/Charge request ids derived from the same nonce
make Keyleash decide and count it once.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from x402 import x402Client
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_response_header,
    encode_payment_signature_header,
)
from x402.mechanisms.evm.constants import X402_UPTO_PERMIT2_PROXY_ADDRESS
from x402.mechanisms.evm.default_assets import DEFAULT_ASSETS
from x402.mechanisms.evm.exact import ExactEvmClientScheme
from x402.mechanisms.evm.types import (
    ExactEIP3009Authorization,
    ExactEIP3009Payload,
    ExactPermit2TokenPermissions,
    UptoPermit2Authorization,
    UptoPermit2Payload,
    UptoPermit2Witness,
)
from x402.mechanisms.evm.upto import UptoEvmClientScheme
from x402.mechanisms.evm.upto.client import _sign_upto_permit2_authorization
from x402.mechanisms.evm.utils import normalize_address
from x402.schemas import PaymentRequired, PaymentRequirements, SettleResponse

from keyleash_core.money import Money

# exact: EIP-3009 transferWithAuthorization of the price; upto: a Permit2 witness transfer of
# at most the price, settled at what the server reports (the hold is the maximum).
SCHEMES = ("exact", "upto")
MICROS_PER_UNIT = 1_000_000


class ChallengeUnreadable(Exception):
    """A 402 without a v2 PAYMENT-REQUIRED header the SDK can decode."""


@dataclass(frozen=True)
class Priced:
    """One requirement of the challenge with its price in money."""

    requirement: PaymentRequirements
    price: Money
    asset_symbol: str


def read_challenge(header: str) -> PaymentRequired:
    try:
        challenge = decode_payment_required_header(header)
    except Exception:  # base64, JSON or schema: one answer for the agent
        raise ChallengeUnreadable(
            "the PAYMENT-REQUIRED header is not an x402 v2 challenge"
        ) from None
    if not isinstance(challenge, PaymentRequired):
        raise ChallengeUnreadable("x402 v1 challenges are not paid (v2 only)")
    return challenge


def _asset(network: str, address: str) -> dict[str, Any] | None:
    for known in DEFAULT_ASSETS.get(network, []):
        if str(known["asset"]).lower() == address.lower():
            return dict(known)
    return None


def price(requirement: PaymentRequirements) -> Priced | None:
    """The requirement's price in USD micros (rounded up), or None when it cannot be paid."""
    if requirement.scheme not in SCHEMES or not str(requirement.network).startswith("eip155:"):
        return None
    known = _asset(str(requirement.network), requirement.asset)
    if known is None or known.get("symbol") != "USDC" or not requirement.amount.isdigit():
        return None
    scale = 10 ** int(known["decimals"])
    micros = -(-int(requirement.amount) * MICROS_PER_UNIT // scale)
    return Priced(requirement, Money("USD", micros), "USDC")


def payable(challenge: PaymentRequired) -> list[Priced]:
    """The requirements the gateway can price, cheapest first (the server's order on ties)."""
    priced = [p for p in map(price, challenge.accepts) if p is not None]
    return sorted(priced, key=lambda p: p.price.micros)


def payment_nonce(call_identity: str, requirement: PaymentRequirements) -> str:
    """A 32-byte EIP-3009 nonce for this call and this requirement (0x-hex)."""
    parts = (
        "keyleash-x402-v1",
        call_identity,
        requirement.scheme,
        str(requirement.network),
        requirement.asset.lower(),
        requirement.pay_to.lower(),
        requirement.amount,
    )
    return "0x" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class _NoncedExactScheme(ExactEvmClientScheme):
    """The SDK's exact EVM scheme, signing with the nonce the gateway chose."""

    def __init__(self, signer: Any, nonce: str) -> None:
        super().__init__(signer)
        self._nonce = nonce

    def create_payment_payload(
        self, requirements: PaymentRequirements, extensions: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if (requirements.extra or {}).get("assetTransferMethod") == "permit2":
            raise ValueError("permit2 transfers are not paid by the gateway")
        authorization = ExactEIP3009Authorization(
            from_address=self._signer.address,
            to=requirements.pay_to,
            value=requirements.amount,
            valid_after="0",
            valid_before=str(int(time.time()) + (requirements.max_timeout_seconds or 3600)),
            nonce=self._nonce,
        )
        signature = self._sign_authorization(authorization, requirements)
        payload: dict[str, Any] = ExactEIP3009Payload(authorization, signature).to_dict()
        return payload


class _NoncedUptoScheme(UptoEvmClientScheme):
    """The SDK's upto EVM scheme (Permit2), signing with the gateway's nonce (as uint256)."""

    def __init__(self, signer: Any, nonce: str) -> None:
        super().__init__(signer)
        self._nonce = str(int(nonce, 16))

    def create_payment_payload(
        self, requirements: PaymentRequirements, extensions: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        facilitator = (requirements.extra or {}).get("facilitatorAddress")
        if not facilitator:
            raise ValueError("an upto requirement names its facilitatorAddress")
        timeout = requirements.max_timeout_seconds or 3600
        authorization = UptoPermit2Authorization(
            from_address=self._signer.address,
            permitted=ExactPermit2TokenPermissions(
                token=normalize_address(requirements.asset), amount=requirements.amount
            ),
            spender=X402_UPTO_PERMIT2_PROXY_ADDRESS,
            nonce=self._nonce,
            deadline=str(int(time.time()) + timeout),
            witness=UptoPermit2Witness(
                to=normalize_address(requirements.pay_to),
                facilitator=normalize_address(facilitator),
                valid_after="0",
            ),
        )
        signature = _sign_upto_permit2_authorization(self._signer, authorization, requirements)
        payload: dict[str, Any] = UptoPermit2Payload(authorization, signature).to_dict()
        return payload


async def signed_header(
    wallet_key: str, challenge: PaymentRequired, chosen: PaymentRequirements, nonce: str
) -> tuple[str, str]:
    """(header name, value) of the payment for `chosen`, signed by the SDK's x402Client."""
    try:
        account = Account.from_key(wallet_key)
    except Exception:  # never echo what was wrong with a secret
        raise ValueError("the x402 connection's secret is not an EVM private key") from None
    client = x402Client()
    scheme = _NoncedUptoScheme if chosen.scheme == "upto" else _NoncedExactScheme
    client.register(chosen.network, scheme(account, nonce))
    only = PaymentRequired(
        x402_version=2,
        resource=challenge.resource,
        accepts=[chosen],
        extensions=challenge.extensions,
    )
    payload = await client.create_payment_payload(only)
    return "PAYMENT-SIGNATURE", encode_payment_signature_header(payload)


def read_settlement(header: str) -> SettleResponse | None:
    if not header:
        return None
    try:
        return decode_payment_response_header(header)
    except Exception:
        return None


def settled_price(priced: Priced, settlement: SettleResponse) -> Money:
    """What was paid: the settled amount when the server reports one (upto), else the price."""
    if settlement.amount and settlement.amount.isdigit():
        settled = PaymentRequirements.model_validate(
            priced.requirement.model_dump() | {"amount": settlement.amount}
        )
        repriced = price(settled)
        if repriced is not None:
            return repriced.price
    return priced.price
