"""AIP-132 `order_by` of the time-ordered lists, and page tokens bound to filter and order."""

from __future__ import annotations

import pytest

from keyleash_core import page_tokens
from keyleash_core.errors import InvalidArgument


@pytest.mark.parametrize(
    ("order_by", "newest"),
    [
        ("", False),
        ("occur_time", False),
        ("occur_time asc", False),
        (" OCCUR_TIME   DESC ", True),
        ("occur_time desc", True),
    ],
)
def test_order_by_reads_the_time_field_either_way(order_by: str, newest: bool) -> None:
    assert page_tokens.newest_first(order_by, "occur_time") is newest


@pytest.mark.parametrize(
    "order_by", ["decision_time desc", "occur_time desc extra", "occur_time up", "amount", ","]
)
def test_any_other_order_is_invalid(order_by: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        page_tokens.newest_first(order_by, "occur_time")
    assert 'order_by: "occur_time" or "occur_time desc"' in str(caught.value)


def test_a_token_is_bound_to_its_filter_and_order() -> None:
    oldest, newest = page_tokens.filter_tag("f", False), page_tokens.filter_tag("f", True)
    token = page_tokens.encode(["2026-12-02T00:00:00+00:00", "d1"], newest)
    assert page_tokens.decode(token, newest) == ["2026-12-02T00:00:00+00:00", "d1"]
    with pytest.raises(InvalidArgument):
        page_tokens.decode(token, oldest)
