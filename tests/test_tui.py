"""The agent's screen over a real call: the real pipeline (Whisper, analyzer, coach) on the bundled
demo call, paced fast, driven with Textual's Pilot; plus the replay pacer's pause and speed keys
and the `--tui`/`demo` command line.

Waits are on conditions (with a generous overall limit), never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from test_tui_snapshots import scripted_app
from textual.widgets import Static

from monitor.audio.source import RATE, FileSource, Pacer, roles_for
from monitor.config import load_config
from monitor.events import Bookmark, CallEnded, Event, Nudge, NudgeCleared, SupervisorRequested, TranscriptFinal
from monitor.resources import project_file
from monitor.session import CallSession, load_scorer
from monitor.stt.model import WhisperTranscriber
from monitor.tui.app import AgentApp
from monitor.tui.banner import split_message
from monitor.tui.feed import EventFeed

DEMO = project_file("data/demo_call.flac")
LIMIT_S = 180  # overall limit for anything the call must do; on a quiet machine it takes seconds


class Collector:
    """Another sink on the same call, like the floor or the archive: it keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in list(self.events) if isinstance(e, kind)]


@pytest.fixture(scope="module")
def models():
    """The real model and hostility scorer, loaded once for the module's calls."""
    cfg = load_config(None)
    return cfg, WhisperTranscriber(cfg.stt), load_scorer(cfg)


def demo_app(models, speed: float = 8.0) -> tuple[AgentApp, Collector, Pacer]:
    """The app over a real call session on the demo call, paced at `speed`, with a collector beside the TUI."""
    cfg, transcriber, scorer = models
    pacer = Pacer(speed)
    source = FileSource(DEMO, cfg.audio.block_ms * 16, pacer)
    roles = roles_for(source.channels, cfg.audio.agent_channel, cfg.audio.customer_channel, cfg.audio.mono_role)
    source.use_roles(roles)
    feed, collector = EventFeed(), Collector()
    session = CallSession(cfg, source, roles, [feed, collector], partials=True, source_name=source.description,
                          transcriber=transcriber, scorer=scorer)
    return AgentApp(session, feed, source_label="demo", pacer=pacer), collector, pacer


async def wait_for(pilot, condition, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + LIMIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        await pilot.pause(0.05)


def banner_text(app: AgentApp) -> str:
    """What the banner says, as the agent reads it."""
    parts = [app.query_one(f"#banner-{p}", Static) for p in ("head", "move", "phrase", "reason")]
    return "\n".join(str(p.content) for p in parts if p.display)


def test_nudge_shows_on_banner_and_dismiss_clears_it(models):
    asyncio.run(_nudge_shows_on_banner_and_dismiss_clears_it(models))


async def _nudge_shows_on_banner_and_dismiss_clears_it(models):
    app, collector, pacer = demo_app(models, speed=4.0)
    async with app.run_test(size=(100, 30)) as pilot:
        assert "no nudge" in banner_text(app)
        await wait_for(pilot, lambda: app.shown is not None, "a nudge on the banner")
        await pilot.press("space")  # hold the call here, so no newer nudge takes the banner before `d`
        assert pacer.paused
        nudge = app.shown
        move, phrase = split_message(nudge.message)
        shown = banner_text(app)
        assert move.upper() in shown and phrase in shown and nudge.reason in shown
        assert {"info": "i INFO", "warn": "! WARN", "critical": "▲ CRITICAL"}[nudge.severity] in shown

        await pilot.press("d")
        await wait_for(pilot, lambda: any(c.id == nudge.id for c in collector.of(NudgeCleared)), "the dismissal")
        cleared = next(c for c in collector.of(NudgeCleared) if c.id == nudge.id)
        assert cleared.how == "dismissed"
        assert move.upper() not in banner_text(app)
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.session_thread.is_alive(), "the call to end")
    app.session_thread.join(LIMIT_S)


def test_supervisor_and_bookmark_keys_reach_every_sink(models):
    asyncio.run(_supervisor_and_bookmark_keys_reach_every_sink(models))


async def _supervisor_and_bookmark_keys_reach_every_sink(models):
    app, collector, _ = demo_app(models)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: collector.of(TranscriptFinal), "the first words")
        await pilot.press("s")
        await wait_for(pilot, lambda: collector.of(SupervisorRequested), "the supervisor request")
        await pilot.press("m")
        await wait_for(pilot, lambda: collector.of(Bookmark), "the bookmark")
        # The agent's own transcript shows them too, where they happened.
        await wait_for(pilot, lambda: app.query_one("#log").lines and "supervisor" in _log_text(app), "the log line")
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.session_thread.is_alive(), "the call to end")
    app.session_thread.join(LIMIT_S)
    assert collector.of(SupervisorRequested)[0].call_id == collector.of(CallEnded)[0].call_id


def test_quit_while_paused_ends_the_call_cleanly(models):
    asyncio.run(_quit_while_paused_ends_the_call_cleanly(models))


async def _quit_while_paused_ends_the_call_cleanly(models):
    app, collector, pacer = demo_app(models)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: collector.of(TranscriptFinal), "the first words")
        await pilot.press("space")
        assert pacer.paused and app.status.paused
        await pilot.press("q")  # a paused source must not keep the call from ending
        await wait_for(pilot, lambda: not app.session_thread.is_alive(), "the call to end")
        await wait_for(pilot, lambda: app.return_code is not None, "the screen to close")
    ended = collector.of(CallEnded)
    assert len(ended) == 1 and collector.events[-1] is ended[0]  # call.ended, flushed, and nothing after it
    assert ended[0].duration < 60  # stopped part way through the 68 s call, not played out
    assert all(not isinstance(e, Nudge) for e in collector.events[collector.events.index(ended[0]):][1:])


def _log_text(app: AgentApp) -> str:
    return "\n".join(line.text for line in app.query_one("#log").lines)


# ---- the pacer behind the pause and speed keys ----------------------------------------------------------
def _waiter(pacer: Pacer, end_sample: int) -> threading.Thread:
    thread = threading.Thread(target=pacer.wait, args=(end_sample,), daemon=True)
    thread.start()
    return thread


def test_paused_pacer_holds_the_audio_until_resumed():
    pacer = Pacer(1000.0)
    pacer.wait(RATE)  # the call is under way
    pacer.pause()
    held = _waiter(pacer, 2 * RATE)
    held.join(0.5)
    assert held.is_alive(), "audio came out while paused"
    pacer.resume()
    held.join(30)
    assert not held.is_alive() and not pacer.paused


def test_speed_change_carries_on_from_the_audio_heard():
    # 100 s of call at 1000x, then down to real time: the next 0.1 s block is due 0.1 s later. A pacer
    # that kept its first anchor would hold it until 100 s after the start.
    pacer = Pacer(1000.0)
    pacer.wait(100 * RATE)
    pacer.set_speed(1.0)
    nxt = _waiter(pacer, 100 * RATE + RATE // 10)
    nxt.join(30)
    assert not nxt.is_alive(), "the pacer stalled after slowing down"
    assert pacer.speed == 1.0


def test_speed_up_while_paused_applies_on_resume():
    pacer = Pacer(0.01)  # 100 s of wall time per second of call
    pacer.wait(0)
    pacer.pause()
    pacer.set_speed(1000.0)
    nxt = _waiter(pacer, RATE)
    nxt.join(0.3)
    assert nxt.is_alive(), "audio came out while paused"
    pacer.resume()
    nxt.join(30)
    assert not nxt.is_alive(), "the new speed was not used after resuming"


# ---- the command line ------------------------------------------------------------------------------------
def test_replay_tui_refuses_fast(run_callmon):
    done = run_callmon("replay", DEMO, "--tui", "--fast", timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "callmon: error: --tui plays the call at a pace the agent can follow: drop --fast (use --speed X for faster)"
    ]


def test_replay_tui_needs_a_terminal(run_callmon):
    done = run_callmon("replay", DEMO, "--tui", timeout=120)
    assert done.returncode == 2 and "needs a terminal" in done.stderr and "Traceback" not in done.stderr


def test_demo_without_a_terminal_prints_the_transcript(run_callmon):
    """Piped, `callmon demo` says so in one line and prints the call as it plays (here at 16x)."""
    done = run_callmon("demo", "--speed", "16", timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("callmon demo: stdout is not a terminal")
    assert "customer" in done.stdout and ">>> NUDGE" in done.stdout and "--- call ended" in done.stdout
    kinds = {k for k in ("slow_down", "acknowledge", "set_boundary", "call_supervisor") if k in done.stdout}
    assert kinds == {"slow_down", "acknowledge", "set_boundary", "call_supervisor"}


# ---- the keys on a scripted call (a named fake session: what is tested here is the screen) ----------------
def test_dismiss_shows_the_next_most_pressing_nudge():
    async def scenario():
        app, session = scripted_app("critical")  # call_supervisor (critical), set_boundary and acknowledge (warn)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.shown is not None, "the banner")
            assert "▲ CRITICAL" in banner_text(app) and "(+2 more)" in banner_text(app)
            await pilot.press("d")
            text = banner_text(app)
            assert "SET A BOUNDARY" in text and "! WARN" in text and "(+1 more)" in text
            await wait_for(pilot, lambda: session.dismissed, "the session to hear of it")
            assert session.dismissed == ["n3-call_supervisor"]
            await pilot.press("d", "d")
            assert "no nudge" in banner_text(app)
            await wait_for(pilot, lambda: len(session.dismissed) == 3, "every dismissal")
            await pilot.press("d")  # nothing left: a note, not a call to the session
            await pilot.press("q")
            await wait_for(pilot, lambda: app.return_code is not None, "the screen to close")
        assert session.dismissed == ["n3-call_supervisor", "n2-set_boundary", "n1-acknowledge"]
        assert session.stopped.is_set()

    asyncio.run(scenario())


def test_live_call_has_no_pause_or_speed():
    async def scenario():
        app, _ = scripted_app("calm")  # a live call: no pacer
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.status.call_t > 0, "the first metrics")
            await pilot.press("space", "plus", "minus")
            line = str(app.query_one("StatusLine").content)
            assert "● live" in line and "paused" not in line and "×" not in line

    asyncio.run(scenario())


def test_bell_rings_for_a_critical_nudge_only_when_asked():
    async def scenario(bell: bool) -> int:
        app, _ = scripted_app("critical")  # raises a critical call_supervisor among warn ones
        app.bell_on_critical = bell
        rings = []
        app.bell = lambda: rings.append(1)  # a fake of the terminal's bell: count the rings
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.shown is not None, "the banner")
            await pilot.press("q")
            await wait_for(pilot, lambda: app.return_code is not None, "the screen to close")
        return len(rings)

    assert asyncio.run(scenario(True)) == 1
    assert asyncio.run(scenario(False)) == 0


def test_a_tick_that_comes_while_the_screen_closes_draws_nothing():
    """Textual removes the screen's widgets before it stops the app's timers, so a tick can come in between (the
    call ending just then, as when a test leaves `run_test` right after `q`): it must not crash the closing app."""
    async def scenario():
        app, session = scripted_app("warn")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.shown is not None, "the banner")
        return app, session

    app, session = asyncio.run(scenario())
    assert session.stopped.is_set(), "closing the screen ends the call"
    app.session_thread.join(LIMIT_S)
    app.refresh_from_feed()  # the late tick: the call is over, but there is no banner left to show it on
    assert not app.is_running
