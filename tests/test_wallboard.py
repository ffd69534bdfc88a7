"""The hub's web wallboard in Debian's headless Chromium (Playwright), against a real hub and agents
publishing schema-1 events: the board a team lead's wall screen shows, as they would see it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FloorAgent as Agent
from conftest import calm_floor, escalate, floor_token_file

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
WAIT_MS = 30_000  # a shared 2-core machine: generous waits, never sleeps

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)",
)


@pytest.fixture(scope="module")
def floor_tokens(tmp_path_factory):
    path = tmp_path_factory.mktemp("floor") / "floor-tokens.toml"
    return path, floor_token_file(path)


@pytest.fixture
def hub(floor_tokens, start_hub):
    return start_hub(floor_tokens[0])


@pytest.fixture
def page():
    """A fresh page in headless Debian chromium; fails the test on any script error in the page."""
    sync_api = pytest.importorskip("playwright.sync_api")
    sync_api.expect.set_options(timeout=WAIT_MS)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 800})
            tab.set_default_timeout(WAIT_MS)
            errors = []
            tab.on("pageerror", lambda error: errors.append(str(error)))
            yield tab
            assert not errors, f"script errors in the wallboard: {errors}"
        finally:
            browser.close()


def test_wallboard_ranks_live_opens_a_call_and_acknowledges_and_whispers(hub, floor_tokens, page):
    from playwright.sync_api import expect

    tokens = floor_tokens[1]
    alice, bob = calm_floor(hub, tokens)
    try:
        page.goto(f"http://127.0.0.1:{hub.port}/#token={tokens['viewer']}")
        rows = page.locator("#board tbody tr[data-call-id]")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_have_attribute("data-call-id", "c-0000aaaa")
        expect(rows.nth(1)).to_have_attribute("data-call-id", "c-0000bbbb")
        expect(page.locator("#link")).to_have_attribute("data-state", "connected")
        expect(rows.nth(1).locator(".heat")).to_have_text("· calm")
        expect(page.locator("#alerts")).to_be_hidden()
        assert "token" not in page.url  # read from the fragment, then taken off the address bar

        escalate(bob)
        expect(rows.nth(0)).to_have_attribute("data-call-id", "c-0000bbbb")
        expect(rows.nth(0).locator(".heat")).to_have_text("▲▲▲ CRITICAL")  # a word and a mark, not colour alone
        expect(rows.nth(0).locator(".col-last")).to_have_text("this is useless get me your manager right now")
        expect(page.locator("#alerts")).to_be_visible()
        expect(page.locator("#alerts .alert").first).to_contain_text("bob")
        expect(page.locator("#alerts .alert").first).to_contain_text("call the supervisor")

        alice.supervisor(31.0, "refund over the limit")
        request = page.locator('#alerts .alert[data-kind="supervisor_request"]')
        expect(request).to_contain_text("alice asked for a supervisor: refund over the limit")
        # rows stay one line high on a 1280-px screen, however long the last line
        alice.says(32.0, "customer", "and another thing " * 12)
        expect(rows.nth(1).locator(".col-last")).to_contain_text("and another thing")
        heights = rows.evaluate_all("rs => rs.map(r => r.getBoundingClientRect().height)")
        line = page.locator("#board tbody td.col-agent").first.evaluate("td => parseFloat(getComputedStyle(td).lineHeight)")
        assert max(heights) < 2 * line, (heights, line)

        request.click()  # opens alice's call: its transcript, live
        expect(page.locator("#call")).to_be_visible()
        expect(page.locator("#call-head")).to_contain_text("alice")
        expect(page.locator("#transcript")).to_contain_text("my parcel is late again")
        alice.says(33.0, "customer", "are you still there")
        expect(page.locator("#transcript")).to_contain_text("are you still there")
        page.click("#call-ack-button")
        (ack,) = alice.lead_messages(1)
        assert (ack["kind"], ack["call_id"]) == ("ack", "c-0000aaaa")
        expect(request).to_have_count(0)  # acknowledged for every lead
        page.fill("#whisper-text", "offer the credit <b>now</b>")
        page.press("#whisper-text", "Enter")
        (whisper,) = alice.lead_messages(1)
        assert whisper["text"] == "offer the credit <b>now</b>"  # text, shown as text on the agent's screen
        page.keyboard.press("Escape")
        expect(page.locator("#call")).to_be_hidden()
        rows.nth(0).focus()
        page.keyboard.press("Enter")  # Enter opens a row as a click does
        expect(page.locator("#call-head")).to_contain_text("bob")
        page.keyboard.press("Escape")

        page.reload()  # the token is remembered for the session
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_have_attribute("data-call-id", "c-0000bbbb")
    finally:
        alice.close()
        bob.close()


def test_wallboard_asks_for_a_token_and_survives_a_hub_restart(hub, floor_tokens, page, start_hub):
    from playwright.sync_api import expect

    tokens = floor_tokens[1]
    page.goto(f"http://127.0.0.1:{hub.port}/#token=not-a-real-token")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#login-error")).to_contain_text("refused")
    expect(page.locator("#link")).to_have_attribute("data-state", "refused")

    page.fill("#token", tokens["viewer"])
    page.click("#login button")
    expect(page.locator("#link")).to_have_attribute("data-state", "connected")
    expect(page.locator("#login")).to_be_hidden()

    port = hub.port
    hub.stop()
    expect(page.locator("#link")).to_have_attribute("data-state", "down")
    expect(page.locator("#link")).to_contain_text("hub down, retrying")
    again = start_hub(floor_tokens[0], port=port)
    bob = Agent(again.url, tokens["bob"], "bob", "c-0000bbbb")
    expect(page.locator("#link")).to_have_attribute("data-state", "connected")
    expect(page.locator('#board tbody tr[data-call-id="c-0000bbbb"]')).to_have_count(1)
    bob.close()
