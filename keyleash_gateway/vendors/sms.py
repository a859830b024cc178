"""SMS arithmetic (pure): how many segments a text takes, and what one costs per country.

GSM-7 texts take 160 septets in one segment, 153 per segment when concatenated (the user data
header takes 7); characters of the extension table take two septets. Any character outside
GSM-7 makes the whole text UCS-2: 70 UTF-16 units in one segment, 67 when concatenated.
"""

from __future__ import annotations

import math

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

# USD micros per outbound SMS segment, by E.164 prefix (longest wins). Versioned: change the
# version with the numbers. Unknown destinations get the conservative DEFAULT.
PRICE_TABLE = "twilio-sms-2026-12"
SEGMENT_PRICES = {
    "+1": 8_300,  # United States, Canada
    "+44": 52_400,  # United Kingdom
    "+49": 98_300,  # Germany
    "+33": 89_700,  # France
    "+34": 85_100,  # Spain
    "+61": 51_500,  # Australia
    "+81": 82_700,  # Japan
    "+91": 83_200,  # India
}
DEFAULT_SEGMENT_PRICE = 150_000


def segments(text: str) -> int:
    """SMS segments `text` is sent in (at least 1: an empty body is still one message)."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        septets = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        return 1 if septets <= 160 else math.ceil(septets / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def segment_price(number: str) -> int:
    """USD micros per segment to an E.164 number."""
    for length in range(min(len(number), 5), 1, -1):
        price = SEGMENT_PRICES.get(number[:length])
        if price is not None:
            return price
    return DEFAULT_SEGMENT_PRICE
