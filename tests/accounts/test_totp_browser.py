"""The second factor in real headless Chromium (Playwright, Debian's chromium): an admin
sets it up by reading the key off /account/totp, signs out, and signs in with the code
step; a wrong code shows the message and keeps the step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from .conftest import PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    yield context.new_page()
    context.close()


def test_set_up_and_sign_in_with_a_code(server, accounts, page):
    accounts.user("root", ["admin"], [])
    page.goto(f"{server.url}/login")
    page.fill("#username", "root")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/home")
    page.click("text=Second factor")
    page.wait_for_url("**/account/totp")
    assert page.locator(".qr svg").is_visible()
    secret = page.inner_text("#secret").replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.fill("#code", totp.now())
    page.click("text=Turn on")
    assert "sign-in asks" in page.inner_text("body")
    page.goto(f"{server.url}/home")
    page.click("text=Sign out")
    page.wait_for_url("**/login")

    page.fill("#username", "root")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/code*")
    assert page.get_attribute("#code", "autocomplete") == "one-time-code"
    page.fill("#code", "000000")
    page.click("button[type=submit]")
    assert "Wrong code" in page.inner_text("[role=alert]")
    # The next step's code: the current one was used for the set-up (a code works once).
    page.fill("#code", totp.at(datetime.now(UTC) + timedelta(seconds=30)))
    page.click("button[type=submit]")
    page.wait_for_url("**/home")
    assert "Signed in as root" in page.inner_text("h1")
