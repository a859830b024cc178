"""Domain values into the contract's shared message types (the other way, with validation, is
keyleash_core.validation)."""

from __future__ import annotations

from keyleash.type.v1 import money_pb2
from keyleash_core.money import Money


def money_to_proto(value: Money) -> money_pb2.Money:
    return money_pb2.Money(currency_code=value.currency, micros=value.micros)
