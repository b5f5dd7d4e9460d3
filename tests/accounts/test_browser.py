"""The sign-in flow in real headless Chromium (driven over the DevTools protocol): the form
posts with its CSRF token, the session cookie is invisible to scripts (HttpOnly), the home
page shows the user's links, and signing out works."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """Just enough of the DevTools protocol: evaluate script, wait for a URL."""

    def __init__(self, ws) -> None:
        self.ws, self.ids = ws, 0

    async def call(self, method: str, **params) -> dict:
        self.ids += 1
        await self.ws.send(json.dumps({"id": self.ids, "method": method, "params": params}))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
            if reply.get("id") == self.ids:
                assert "error" not in reply, reply
                return reply["result"]

    async def eval(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression,
                                 returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await self.eval(expression):
                    return
            except AssertionError:
                pass  # navigating: the context is being replaced
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}")


@pytest.fixture
def chromium() -> str:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 20
            while not port_file.exists() or not port_file.read_text().strip():
                assert time.monotonic() < deadline and proc.poll() is None, "no chromium"
                time.sleep(0.05)
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
                pages = [t for t in json.load(r) if t["type"] == "page"]
            yield pages[0]["webSocketDebuggerUrl"]
        finally:
            proc.terminate()
            proc.wait(10)


def test_sign_in_and_out_in_a_browser(server, accounts, chromium):
    accounts.user("carol", ["curator"], ["alpha"])

    async def scenario() -> dict:
        async with connect(chromium, max_size=None) as ws:
            page = Page(ws)
            await page.call("Page.navigate", url=f"{server.url}/login")
            await page.wait_for("document.querySelector('#password') !== null")
            # Wrong password first: the same page comes back with the generic message.
            await page.eval("""(() => {
                document.querySelector('#username').value = 'carol';
                document.querySelector('#password').value = 'not the password';
                document.querySelector('form').submit(); })()""")
            await page.wait_for("document.body.innerText.includes('Wrong user name')")
            await page.eval("""(() => {
                document.querySelector('#username').value = 'carol';
                document.querySelector('#password').value = 'correct horse battery';
                document.querySelector('form').submit(); })()""")
            # The URL changes before the new document is parsed: wait for the page as well.
            await page.wait_for("location.pathname === '/home' && document.readyState !== 'loading'"
                                " && document.querySelector('form[action=\"/logout\"]') !== null")
            seen = {
                "heading": await page.eval("document.querySelector('h1').innerText"),
                "links": await page.eval(
                    "[...document.querySelectorAll('li a')].map(a => a.getAttribute('href'))"),
                "script_cookies": await page.eval("document.cookie"),
                "me": await page.eval(
                    "fetch('/api/v1/auth/me').then(r => r.json()).then(j => j.name)"),
            }
            await page.eval("document.querySelector('form[action=\"/logout\"]').submit()")
            await page.wait_for("location.pathname === '/login'")
            seen["me_after"] = await page.eval("fetch('/api/v1/auth/me').then(r => r.status)")
            return seen

    # In a thread of its own: Playwright's browser tests (which run after this one or
    # before, in one session) keep an event loop running in the main thread.
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(asyncio.run, scenario()).result(60)
    assert seen["heading"] == "Signed in as carol"
    # The studio, the pulse dashboard, and changing one's own password.
    assert seen["links"] == ["/studio", "/curate/alpha/pulse", "/account/password"]
    assert "hb_session" not in seen["script_cookies"]  # HttpOnly
    assert seen["me"] == "carol"
    assert seen["me_after"] == 401
