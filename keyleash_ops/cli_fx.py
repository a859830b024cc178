"""`keyleash fx set|list`: the FX table caps convert with (admin token; rates are global)."""

from __future__ import annotations

import argparse

from keyleash.metering.v1 import metering_pb2
from keyleash_ops.cli_common import (
    EXIT_OK,
    connection_parent,
    guarded,
    metering_client,
    print_json,
    print_table,
)


def _rows(rates: list[metering_pb2.ExchangeRate]) -> list[list[str]]:
    return [[f"{r.base_currency_code}/{r.quote_currency_code}", r.rate, r.source] for r in rates]


def _set(args: argparse.Namespace) -> int:
    base, _, quote = args.pair.upper().partition("/")
    with metering_client(args) as metering:
        rate = metering.set_exchange_rate(base, quote, args.rate)
    if args.json:
        print_json(rate)
        return EXIT_OK
    print(f"{rate.base_currency_code}/{rate.quote_currency_code} = {rate.rate} in force "
          f"(FX table {rate.fx_table_version})")  # fmt: skip
    return EXIT_OK


def _list(args: argparse.Namespace) -> int:
    with metering_client(args) as metering:
        reply = metering.list_exchange_rates()
    rates = [
        r for r in reply.rates if not args.currency or args.currency.upper() in
        (r.base_currency_code, r.quote_currency_code)
    ]  # fmt: skip
    if args.json:
        print_json(metering_pb2.ListExchangeRatesResponse(
            rates=rates, fx_table_version=reply.fx_table_version))  # fmt: skip
        return EXIT_OK
    print(f"FX table {reply.fx_table_version}")
    print_table(["pair", "rate", "source"], _rows(rates))
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `keyleash fx`."""
    conn = connection_parent()
    fx = subparsers.add_parser("fx", help="exchange rates caps in other currencies convert with")
    actions = fx.add_subparsers(dest="action", metavar="ACTION", required=True)
    set_ = actions.add_parser("set", parents=[conn], help="put a rate in force (admin)")
    set_.add_argument("pair", metavar="BASE/QUOTE", help="e.g. EUR/USD")
    set_.add_argument("rate", help="units of QUOTE per BASE, an exact decimal, e.g. 1.08")
    set_.set_defaults(handler=guarded(_set))
    listing = actions.add_parser("list", parents=[conn], help="every rate in force")
    listing.add_argument("--currency", help="only pairs with this currency")
    listing.set_defaults(handler=guarded(_list))
