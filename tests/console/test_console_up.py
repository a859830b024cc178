"""`keyleash up` serves the console too; an operator signs in there with the banner's token."""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.integration.test_keyleash_up import keyleash_up


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


@pytest.mark.timeout(120)
def test_up_serves_the_console_and_its_sign_in(tmp_path: Path) -> None:
    with keyleash_up(tmp_path / "state", tmp_path) as up:
        banner = up.banner()
        match = re.search(r"console on (http://\S+:\d+) ", banner.text)
        assert match, banner.text
        console = match.group(1)
        with urllib.request.urlopen(f"{console}/signin", timeout=10) as page:
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        opener = urllib.request.build_opener(_NoRedirect)
        form = urllib.parse.urlencode({"token": banner.admin_token}).encode()
        with pytest.raises(urllib.error.HTTPError) as signed_in:
            opener.open(f"{console}/signin", data=form, timeout=10)
        assert signed_in.value.code == 303
        cookie = signed_in.value.headers["Set-Cookie"]
        signed_in.value.close()
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert banner.admin_token not in cookie
