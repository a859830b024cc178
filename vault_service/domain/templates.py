"""Policy templates as plain data: a tenant's, stored as JSON in Postgres, and the starters
Keyleash ships (starter_templates.json, read once), with the curated vendor lists they use.
Pure: no I/O beyond reading the shipped file at import."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keyleash_core.policy import Policy

SHIPPED_FILE = Path(__file__).with_name("starter_templates.json")
SHIPPED_PREFIX = "policyTemplates/"


@dataclass(frozen=True)
class VendorKey:
    """One key of a provisioned agent: locked to `vendor`, narrowing the template's policy."""

    vendor: str
    scopes: tuple[str, ...]
    policy: Policy


@dataclass(frozen=True)
class Template:
    name: str  # "tenants/{t}/policyTemplates/{id}" or "policyTemplates/{id}"
    display_name: str
    description: str
    scopes: tuple[str, ...]
    policy: Policy
    ttl_ms: int  # 0: the server default
    vendor_keys: tuple[VendorKey, ...] = ()
    create_time_ms: int = 0  # 0: shipped

    @property
    def shipped(self) -> bool:
        return self.name.startswith(SHIPPED_PREFIX)

    def to_json(self) -> str:
        """The stored form (the name is the row's key, not part of it)."""
        return json.dumps(
            {
                "display_name": self.display_name,
                "description": self.description,
                "scopes": list(self.scopes),
                "policy": json.loads(self.policy.to_json()),
                "ttl_ms": self.ttl_ms,
                "vendor_keys": [
                    {"vendor": v.vendor, "scopes": list(v.scopes),
                     "policy": json.loads(v.policy.to_json())}
                    for v in self.vendor_keys
                ],
            },
            sort_keys=True,
        )  # fmt: skip

    @classmethod
    def from_json(cls, name: str, text: str, create_time_ms: int = 0) -> Template:
        data = json.loads(text)
        return cls(
            name=name,
            display_name=str(data.get("display_name", "")),
            description=str(data.get("description", "")),
            scopes=tuple(data.get("scopes", ())),
            policy=_policy(data.get("policy")),
            ttl_ms=int(data.get("ttl_ms", 0)),
            vendor_keys=tuple(
                VendorKey(str(v["vendor"]), tuple(v.get("scopes", ())), _policy(v.get("policy")))
                for v in data.get("vendor_keys", ())
            ),
            create_time_ms=create_time_ms,
        )


def _policy(data: Any) -> Policy:
    empty = json.loads(Policy().to_json())
    return Policy.from_json(json.dumps(empty | (data or {})))


def _load_shipped() -> tuple[dict[str, tuple[str, ...]], dict[str, Template]]:
    data = json.loads(SHIPPED_FILE.read_text("utf-8"))
    vendor_lists = {name: tuple(vendors) for name, vendors in data["vendor_lists"].items()}
    templates = {
        SHIPPED_PREFIX + template_id: Template.from_json(
            SHIPPED_PREFIX + template_id, json.dumps(body)
        )
        for template_id, body in data["templates"].items()
    }
    return vendor_lists, templates


# Curated vendor lists ("cloud", "ai", ...) and the shipped templates, by name.
VENDOR_LISTS, SHIPPED = _load_shipped()
