"""The FX RPCs of MeteringService (SetExchangeRate, ListExchangeRates): proto <-> use case.

A mixin of MeteringServicer (servicer.py), as alert_rpcs.py is.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from keyleash.metering.v1 import metering_pb2
from keyleash_core.auth import Credential
from keyleash_core.errors import InvalidArgument
from keyleash_core.fx import FxTable, Rate, parse_rate
from keyleash_core.money import is_currency_code
from metering_service.usecases.exchange_rates import ExchangeRates

Context: TypeAlias = Any


def rate_to_proto(rate: Rate, version: str) -> metering_pb2.ExchangeRate:
    return metering_pb2.ExchangeRate(
        base_currency_code=rate.base,
        quote_currency_code=rate.quote,
        rate=rate.decimal,
        source=rate.source,
        fx_table_version=version,
    )


def _currency(code: str, field: str) -> str:
    if not is_currency_code(code):
        raise InvalidArgument(field, f"{code!r} is not an ISO 4217 currency code Keyleash knows")
    return code


class FxRpcs:
    """SetExchangeRate and ListExchangeRates; needs `_exchange_rates` and `_credential`."""

    _exchange_rates: ExchangeRates

    def _credential(self, context: Context) -> Credential:
        raise NotImplementedError

    async def SetExchangeRate(
        self, request: metering_pb2.SetExchangeRateRequest, context: Context
    ) -> metering_pb2.ExchangeRate:
        credential = self._credential(context)
        base = _currency(request.base_currency_code, "base_currency_code")
        quote = _currency(request.quote_currency_code, "quote_currency_code")
        if base == quote:
            raise InvalidArgument("quote_currency_code", "must differ from base_currency_code")
        try:
            ppb = parse_rate(request.rate)
        except ValueError as error:
            raise InvalidArgument("rate", str(error)) from None
        table = await self._exchange_rates.set_rate(credential, base, quote, ppb)
        rate = table.rate(base, quote)
        assert rate is not None  # just set
        return rate_to_proto(rate, table.version)

    async def ListExchangeRates(
        self, request: metering_pb2.ListExchangeRatesRequest, context: Context
    ) -> metering_pb2.ListExchangeRatesResponse:
        table: FxTable = await self._exchange_rates.table(self._credential(context))
        rates = [rate_to_proto(table.rates[pair], table.version) for pair in sorted(table.rates)]
        return metering_pb2.ListExchangeRatesResponse(rates=rates, fx_table_version=table.version)
