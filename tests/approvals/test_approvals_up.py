"""`keyleash up` serves the approvals endpoint too: the banner names it and it answers; a fixed
listen port also sets the public URL the alerts' links are minted for."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from keyleash_approvals.embedded import prepare_env
from tests.integration.test_keyleash_up import keyleash_up


@pytest.mark.timeout(120)
def test_up_serves_the_approvals_endpoint(tmp_path: Path) -> None:
    with keyleash_up(tmp_path / "state", tmp_path) as up:
        banner = up.banner()
        match = re.search(r"approval links listening on (\S+:\d+)", banner.text)
        assert match, banner.text
        with urllib.request.urlopen(f"http://{match.group(1)}/healthz", timeout=10) as answer:
            assert answer.status == 200


def test_a_fixed_port_sets_the_links_public_url_unless_one_is_given() -> None:
    env = {"KEYLEASH_APPROVALS_LISTEN": "0.0.0.0:8091"}
    prepare_env(env)
    assert env["KEYLEASH_APPROVALS_PUBLIC_URL"] == "http://localhost:8091"
    given = {"KEYLEASH_APPROVALS_PUBLIC_URL": "https://approve.example.com"}
    prepare_env(given)
    assert given == {"KEYLEASH_APPROVALS_LISTEN": "0.0.0.0:8091",
                     "KEYLEASH_APPROVALS_PUBLIC_URL": "https://approve.example.com"}  # fmt: skip
    picked = {"KEYLEASH_APPROVALS_LISTEN": "127.0.0.1:0"}
    prepare_env(picked)
    assert "KEYLEASH_APPROVALS_PUBLIC_URL" not in picked  # the port is known only once bound
