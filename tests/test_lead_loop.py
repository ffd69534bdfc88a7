"""The loop back to the agent: a lead acknowledges an agent's supervisor request and whispers to them, and the
agent's own screen (the real Textual app, driven by Pilot) shows "your lead is coming" and the whisper.

A real hub, the agent's real publisher, a real viewer; the call itself is a fake session (named so) since
only the banner's part of the screen is under test here.
"""

from __future__ import annotations

import asyncio
import threading
import time

from conftest import FLOOR_WAIT_S, FloorViewer, floor_token_file
from conftest import call_started as started

from monitor.events import CallEnded, SupervisorRequested
from monitor.floor.publisher import HubPublisher
from monitor.tui.app import AgentApp
from monitor.tui.feed import EventFeed

CALL = "c-0000f001"


class FakeSession:
    """A fake call: runs until stopped; the agent's keys are ignored."""

    def __init__(self) -> None:
        self.stopped = threading.Event()

    def run(self) -> CallEnded:
        self.stopped.wait(60)
        return CallEnded(CALL, 0.0, 0.0, 0.0, None, 0, 0, None)

    def stop(self) -> None:
        self.stopped.set()

    def dismiss(self, nudge_id: str) -> None:
        pass

    def request_supervisor(self, note: str = "") -> None:
        pass

    def bookmark(self, note: str = "") -> None:
        pass


def test_the_agent_sees_your_lead_is_coming_and_the_whisper_on_the_banner(tmp_path, start_hub):
    path = tmp_path / "tokens.toml"
    tokens = floor_token_file(path)
    hub = start_hub(path)
    publisher = HubPublisher(hub.url, tokens["alice"], "alice")
    publisher(started(CALL, "alice"))
    publisher(SupervisorRequested(CALL, 3.0, 3.0, "customer wants a refund"))
    viewer = FloorViewer(hub.url, tokens["viewer"])
    viewer.wait("the request", lambda v: v.calls.get(CALL, {}).get("supervisor_requests"))

    def lead_line(app: AgentApp) -> str:
        widget = app.query_one("#banner-lead")
        return str(widget.content) if widget.display else ""

    async def scenario() -> None:
        app = AgentApp(FakeSession(), EventFeed(), source_label="live", link=lambda: publisher.link,
                       lead=lambda: publisher.lead_note)
        async with app.run_test(size=(90, 24)) as pilot:
            assert lead_line(app) == ""
            viewer.send({"type": "ack", "call_id": CALL})
            await _until(pilot, lambda: "your lead is coming" in lead_line(app), "the acknowledgement on the banner")
            assert "lead" in lead_line(app)
            viewer.send({"type": "whisper", "call_id": CALL, "text": "offer the credit [b]now[/b]"})
            await _until(pilot, lambda: "offer the credit" in lead_line(app), "the whisper on the banner")
            assert "[b]now[/b]" in lead_line(app), "a whisper is text, never markup"
            await pilot.press("q")  # the call ends, the banner says so, then the screen closes
            await _until(pilot, lambda: app.return_code is not None, "the screen to close after q")
        assert app.failure is None, f"the fake call failed: {app.failure!r}"

    try:
        asyncio.run(scenario())
    finally:
        viewer.close()
        publisher.close(timeout=1.0)
    assert "viewer lead whispered to alice's call c-0000f001: offer the credit [b]now[/b]" in hub.output()


async def _until(pilot, predicate, what: str) -> None:  # noqa: ANN001
    end = time.monotonic() + FLOOR_WAIT_S
    while not predicate():
        assert time.monotonic() < end, f"never happened: {what}"
        await pilot.pause(0.05)
