"""Snapshots of the agent's screen in its main states (pytest-textual-snapshot).

The pipeline is not what these test (test_tui.py runs the real one): scripted events go through
the TUI's own sink into the real app, with a named fake session standing in for the call, so
every picture is the same on every run. Update after a deliberate change to the screen with
`pytest tests/test_tui_snapshots.py --snapshot-update` and look at the SVGs before checking them in.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from textual.widgets import RichLog
from textual.widgets._toast import Toast, ToastRack

from monitor.events import (
    Bookmark,
    CallEnded,
    CallStarted,
    Event,
    Metrics,
    Nudge,
    NudgeCleared,
    RoleMetrics,
    SupervisorRequested,
    TranscriptFinal,
    TranscriptPartial,
    Word,
)
from monitor.tui.app import AgentApp
from monitor.tui.banner import NudgeBanner
from monitor.tui.feed import EventFeed
from monitor.tui.statusline import StatusLine
from monitor.vocab import clock

CALL = "c-5a1e0000"
LAG = 0.6  # every scripted transcript arrives this long after its audio was read


class FakeSession:
    """Stands in for CallSession: records the agent's actions; `run` lasts until `stop` (or returns at once)."""

    def __init__(self, ends: bool = False) -> None:
        self.dismissed: list[str] = []
        self.supervisor_requests = 0
        self.bookmarks = 0
        self.stopped = threading.Event()
        self.ends = ends

    def run(self) -> CallEnded:
        if not self.ends:
            self.stopped.wait(60)
        return CallEnded(CALL, 0.0, 0.0, 0.0, None, 0, 0, None)

    def stop(self) -> None:
        self.stopped.set()

    def dismiss(self, nudge_id: str) -> None:
        self.dismissed.append(nudge_id)

    def request_supervisor(self, note: str = "") -> None:
        self.supervisor_requests += 1

    def bookmark(self, note: str = "") -> None:
        self.bookmarks += 1


# ---- a scripted call: how the customer and the agent sound, second by second ------------------
def _metrics(t: float, heat: int, loud: float | None, cust_wpm: float | None, hostility: float,
             agent_wpm: float | None, talk: float | None) -> Metrics:
    roles = {
        "agent": RoleMetrics(-24.0, 0.5, agent_wpm, None, None, 0.2, False, 0.0),
        "customer": RoleMetrics(-16.0, loud, cust_wpm, None, hostility, -0.4, True, 0.5),
    }
    return Metrics(CALL, float(t), float(t), roles, overlap=False, silence_s=0.0, heat=heat, interruptions=0, talk_ratio=talk)


def _final(role: str, text: str, start: float, end: float, cls: type = TranscriptFinal) -> TranscriptPartial:
    words = text.split()
    step = (end - start) / len(words)
    ws = [Word(w, round(start + i * step, 2), round(start + (i + 1) * step, 2), 0.9) for i, w in enumerate(words)]
    return cls(CALL, end, end + LAG, role, text, start, end, ws)


def _nudge(t: float, n: int, kind: str, severity: str, message: str, reason: str) -> Nudge:
    return Nudge(CALL, t, t + LAG, f"n{n}-{kind}", kind, severity, message, reason, {"rule": kind, "trigger_t": t})


CALM_LINES = [
    _final("agent", "Thanks for calling Northway Internet, my name is Sam. How can I help you today?", 0.7, 6.1),
    _final("customer", "Hi, my internet has been down since Monday and I work from home.", 6.7, 11.0),
    _final("agent", "I'm sorry to hear that. Could I have your account number, please?", 11.5, 15.2),
]
WARN_LINES = [
    _final("customer", "I've given it twice already! Every time I call I'm told it'll be fixed tomorrow.", 15.6, 21.0),
    _nudge(21.0, 1, "acknowledge", "warn", "Acknowledge how they feel. Try: \"I can see why you'd feel that way; that "
           "sounds really frustrating.\"", "The customer vented a heated complaint (exasperation)."),
]
CRITICAL_LINES = [
    _final("agent", "Right, okay, let me just quickly check what has been done so far.", 21.4, 25.0),
    _final("customer", "You are useless. Put me through to your manager or I'll come down there and you'll regret it.",
           25.3, 31.0),
    _nudge(31.0, 2, "set_boundary", "warn", "Set a boundary, politely and firmly. Try: \"I want to help you, but I "
           "can't accept that language.\"", "The customer is abusing you: “you are useless”."),
    _nudge(31.0, 3, "call_supervisor", "critical", "Call your supervisor now, and security. Try: \"I'm bringing in my "
           "supervisor right now.\"", "The customer threatened violence: “come down there and you'll regret it”."),
]


def _history(until: int) -> list[Metrics]:
    """A call that heats up at 15 s and boils over at 25 s."""
    out = []
    for t in range(until + 1):
        heat = 0 if t < 15 else 2 if t < 25 else 3
        loud = None if t < 7 else 1.0 if t < 15 else 8.5 if t < 25 else 12.0
        cust = None if t < 9 else 165.0 if t < 15 else 215.0 if t < 25 else 238.0
        hostility = 0.0 if t < 25 else 0.82
        agent = None if t < 4 else 150.0 if t < 20 else 205.0
        talk = None if t < 2 else round(0.7 - t / 100, 2)
        out.append(_metrics(t, heat, loud, cust, hostility, agent, talk))
    return out


def _events(state: str) -> list[Event]:
    started = CallStarted(CALL, 0.0, 0.0, "agent-7", {"agent": {"channel": 0}, "customer": {"channel": 1}}, 16000,
                          "file:demo_call.flac", "tiny.en")
    if state == "calm":
        return [started, *_history(14), *CALM_LINES,
                _final("customer", "Sure, it's four four", 14.2, 14.6, TranscriptPartial)]
    if state == "warn":
        return [started, *_history(23), *CALM_LINES, *WARN_LINES]
    if state == "critical":
        return [started, *_history(33), *CALM_LINES, *WARN_LINES, *CRITICAL_LINES,
                SupervisorRequested(CALL, 32.0, 32.6)]
    if state == "ended":
        return [started, *_history(40), *CALM_LINES, *WARN_LINES, *CRITICAL_LINES,
                NudgeCleared(CALL, 36.0, 36.6, "n1-acknowledge", "resolved", "acknowledge", True, 15.0),
                NudgeCleared(CALL, 40.0, 40.6, "n2-set_boundary", "expired", "set_boundary", False, None),
                NudgeCleared(CALL, 40.0, 40.6, "n3-call_supervisor", "expired", "call_supervisor", False, None),
                CallEnded(CALL, 40.0, 40.6, 40.0, 3, 3, 1, 0.58)]
    raise ValueError(state)


def scripted_app(state: str, theme: str = "textual-dark") -> tuple[AgentApp, FakeSession]:
    """The real app over a scripted call in `state` (calm, warn, critical, ended)."""
    feed = EventFeed()
    for event in _events(state):
        feed(event)
    session = FakeSession(ends=state == "ended")
    app = AgentApp(session, feed, source_label="file:demo_call.flac", pacer=None if state == "calm" else _pacer(),
                   end_note="demo over, q to quit")
    app.theme = theme
    return app, session


def _pacer():  # noqa: ANN202
    from monitor.audio.source import Pacer

    return Pacer(1.0)


async def _settle(pilot) -> None:  # noqa: ANN001
    """Let the app drain the scripted events, and a finished fake call end."""
    app = pilot.app
    for _ in range(100):
        app.refresh_from_feed()
        await pilot.pause()
        if not app.session.ends or app._finished:
            break
    await pilot.pause()


STATES = [
    ("calm", (80, 24), "textual-dark"),
    ("warn", (80, 24), "textual-dark"),
    ("critical", (80, 24), "textual-dark"),
    ("critical", (160, 48), "textual-dark"),
    ("warn", (80, 24), "textual-light"),
    ("critical", (160, 48), "textual-light"),
    ("ended", (80, 24), "textual-light"),
]


@pytest.mark.parametrize(("state", "size", "theme"), STATES,
                         ids=[f"{s}-{w}x{h}-{t.removeprefix('textual-')}" for s, (w, h), t in STATES])
def test_screen_states(snap_compare, state, size, theme):
    """The banner, meters, transcript and status line of each state fit and read at this size and theme."""
    app, _ = scripted_app(state, theme)
    assert snap_compare(app, terminal_size=size, run_before=_settle)


def test_help_screen(snap_compare):
    """`?` lists every key over the call."""
    app, _ = scripted_app("warn")
    assert snap_compare(app, press=["question_mark"], run_before=_settle)


# ---- the screen follows call time, and keeps the banner and status line in sight -----------------
def _log_lines(app: AgentApp) -> list[str]:
    return [strip.text for strip in app.query_one("#log", RichLog).lines]


def _overlaps(a, b) -> bool:  # noqa: ANN001
    return bool(a.intersection(b).area)


def test_a_nudge_decided_before_its_final_is_written_after_the_line_that_triggered_it():
    """The coach acts on the pause partial, so the nudge arrives before its utterance's final."""
    async def run() -> None:
        feed = EventFeed()
        started = CallStarted(CALL, 0.0, 0.0, "agent-7", {"agent": {"channel": 0}, "customer": {"channel": 1}}, 16000, "x", "m")
        text = "You are useless and I want to speak to your manager."
        pause = TranscriptPartial(CALL, 22.5, 23.0, "customer", text, 17.5, 22.5, [], True)
        nudge = _nudge(22.5, 1, "set_boundary", "warn", "Set a boundary.", "The customer is abusing you.")
        app = AgentApp(FakeSession(), feed, source_label="x", pacer=_pacer())
        async with app.run_test(size=(120, 40)) as pilot:
            for event in (started, *_history(22), pause, nudge):
                feed(event)
            app.refresh_from_feed()
            await pilot.pause()
            assert not any("set_boundary" in line for line in _log_lines(app)), "nudge written before its trigger line"
            assert app.shown is not None and app.shown.kind == "set_boundary", "the banner shows the nudge at once"
            feed(_final("customer", text, 17.5, 22.5))
            app.refresh_from_feed()
            await pilot.pause()
            lines = _log_lines(app)
            said = next(i for i, line in enumerate(lines) if "useless" in line)
            nudged = next(i for i, line in enumerate(lines) if "set_boundary" in line)
            assert said < nudged, lines

    asyncio.run(run())


def test_a_bookmark_notice_and_its_transcript_mark_show_the_same_call_time():
    async def run() -> None:
        app, _ = scripted_app("warn")
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await _settle(pilot)
            await pilot.press("m")
            assert app.session.bookmarks == 1
            app.feed(Bookmark(CALL, 23.4, 24.0, ""))  # the session's event; the screen's clock (last metrics) says 00:23.0
            app.refresh_from_feed()
            await pilot.pause()
            await pilot.pause(0.2)
            notices = [str(t.render()) for t in app.screen.query(Toast)]
            assert any(clock(23.4) in n for n in notices), notices
            assert any(clock(23.4) in line and "marked" in line for line in _log_lines(app))

    asyncio.run(run())


def test_help_and_notices_leave_the_banner_and_status_line_in_sight_at_80x24():
    async def run() -> None:
        app, _ = scripted_app("critical")
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await _settle(pilot)
            banner, status = app.query_one(NudgeBanner).region, app.query_one(StatusLine).region
            assert banner.area and status.area
            for n in range(3):
                app.notify(f"Notice {n}: something the agent should read.", title="note", timeout=30)
            await pilot.pause()
            await pilot.pause(0.2)
            rack = app.screen.query_one(ToastRack).region  # toasts scroll inside it: what shows is within it
            toasts = [t.region.intersection(rack) for t in app.screen.query(Toast)]
            assert toasts and not any(_overlaps(r, banner) or _overlaps(r, status) for r in toasts), (toasts, banner, status)
            await pilot.press("question_mark")
            await pilot.pause()
            help_box = app.screen.query_one("#help").region
            assert help_box.area and not _overlaps(help_box, banner) and not _overlaps(help_box, status), (help_box, banner, status)
            await pilot.press("question_mark")

    asyncio.run(run())
