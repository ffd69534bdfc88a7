"""The agent's screen: the call runs in its own thread, the screen follows it ten times a second.

`run_agent_tui` is the entry point (`callmon live`, `callmon replay --tui`, `callmon demo`). The
call is built first, so a bad device or model is a plain one-line error with no screen; then the
session runs on a thread while the app drains the TUI's sink (`EventFeed`) on a timer. The sink
never waits for the screen, so the screen can never hold back the audio.

The agent's keys go to the session on a small control thread of their own: `dismiss`,
`request_supervisor` and `bookmark` take the pipeline's lock, which the STT thread may hold for a
moment, and the UI thread must never wait on it.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
from collections.abc import Callable
from typing import Protocol

from textual.app import App, ComposeResult
from textual.widgets import Footer

from ..audio.source import Pacer
from ..events import Bookmark, CallEnded, Event, Nudge, NudgeCleared, SupervisorRequested, TranscriptFinal, TranscriptPartial
from ..pipeline import Sink
from ..vocab import clock
from .banner import NudgeBanner, most_pressing
from .feed import Batch, EventFeed
from .keys import BINDINGS, HelpScreen
from .meters import Meters
from .statusline import StatusInfo, StatusLine
from .transcript import Transcript

SPEEDS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0, 16.0)
TICK_S = 0.1  # screen updates are coalesced to at most ten a second
STALE_PARTIAL_S = 3.0  # a partial whose utterance never became a final (no words) fades after this much call time


class CallControls(Protocol):
    """What the screen needs of a call: `CallSession`, or a named fake in the snapshot tests."""

    def run(self) -> CallEnded: ...
    def stop(self) -> None: ...
    def dismiss(self, nudge_id: str) -> None: ...
    def request_supervisor(self, note: str = "") -> None: ...
    def bookmark(self, note: str = "") -> None: ...


class _Controls:
    """Runs the agent's actions on the session in order, off the UI thread."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="callmon-keys", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def close(self) -> None:
        self._jobs.put(None)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                job()
            except Exception:  # a failed key must not end the call
                logging.getLogger(__name__).exception("agent action failed")


class AgentApp(App[None]):
    """The agent's screen over one call."""

    CSS_PATH = "agent.tcss"
    TITLE = "callmon"
    BINDINGS = BINDINGS
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self, session: CallControls, feed: EventFeed, *, source_label: str, pacer: Pacer | None = None,
        link: Callable[[], str | None] | None = None, bell: bool = False, end_note: str = "q to quit",
        lead: Callable[[], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.lead = lead  # the floor's answer to this agent (an acknowledgement, a whisper), for the banner
        self._lead_note: str | None = None
        self.session = session
        self.feed = feed
        self.pacer = pacer
        self.link = link
        self.bell_on_critical = bell
        self.end_note = end_note
        self.status = StatusInfo(source_label, live=pacer is None, speed=pacer.speed if pacer else None)
        self.session_thread = threading.Thread(target=self._run_call, name="callmon-call", daemon=True)
        self.ended: CallEnded | None = None  # the call.ended the sinks saw (with the coach's summary)
        self.failure: BaseException | None = None  # what session.run raised, re-raised after the screen closes
        self.signalled = False
        self.active: dict[str, Nudge] = {}
        self.shown: Nudge | None = None  # the nudge on the banner, the one `d` dismisses
        self._banner_key: tuple[str, int] | None = None
        self._dismissed: set[str] = set()
        self._partials: dict[str, TranscriptPartial] = {}
        self._final_end: dict[str, float] = {}
        self._waiting: list[Event] = []  # nudges and marks held until the speech before them is settled
        self._asked = {"supervisor": 0, "bookmark": 0}  # keys pressed whose event (and notice) is still to come
        self._call_done = threading.Event()
        self._finished = False  # the screen has shown the end
        self._quitting = False
        self._exiting = False
        self._controls: _Controls | None = None

    # ---- the call's thread ------------------------------------------------------------------
    def _run_call(self) -> None:
        try:
            self.session.run()
        except BaseException as exc:  # shown, then re-raised by run_agent_tui for the CLI to report
            self.failure = exc
        finally:
            self._call_done.set()

    # ---- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield NudgeBanner()
        yield Meters()
        yield Transcript()
        yield StatusLine(self.status)
        yield Footer()

    def on_mount(self) -> None:
        self._controls = _Controls()
        self.set_interval(TICK_S, self.refresh_from_feed)
        if self.link is not None:
            self.set_interval(1.0, self._poll_link)
            self._poll_link()
        self.session_thread.start()

    def on_unmount(self) -> None:
        # However the screen closes (quit, a crash, a test ending), the call must not run on unseen.
        if not self._call_done.is_set():
            self.session.stop()
            if self.pacer is not None:
                self.pacer.resume()
        if self._controls is not None:
            self._controls.close()

    # ---- following the call -------------------------------------------------------------------
    def refresh_from_feed(self) -> None:
        """Apply what arrived since the last tick (the timer calls this; tests may call it directly)."""
        if not self.is_running:
            # The screen is closing: Textual removes the widgets before it stops the timers, so a tick may come
            # with nothing left to draw on. Whatever the call still says is not shown any more.
            return
        done = self._call_done.is_set()  # read before draining: every event of a finished call is queued by now
        batch = self.feed.drain()
        if batch:
            self._apply(batch)
        if done and not self._finished:
            self._finished = True
            self._show_end()
        if self.signalled and not self._quitting:
            self._begin_quit()
        if self._finished and self._quitting and not self._exiting:
            self._exiting = True
            self.exit()

    def _apply(self, batch: Batch) -> None:
        transcript = self.query_one(Transcript)
        partials_changed = False
        for role, partial in batch.partials.items():  # first: they tell which speech is still unsettled
            if partial.end > self._final_end.get(role, -1.0):
                self._partials[role] = partial
                partials_changed = True
        for event in batch.log:
            if isinstance(event, TranscriptFinal):
                self._final_end[event.role] = event.end
                open_ = self._partials.get(event.role)
                if open_ is not None and open_.start <= event.start:  # this utterance's (or an older one's)
                    del self._partials[event.role]
                    partials_changed = True
            elif isinstance(event, Nudge):
                self.active[event.id] = event
                if event.severity == "critical" and self.bell_on_critical:
                    self.bell()
            elif isinstance(event, NudgeCleared):
                self.active.pop(event.id, None)
            elif isinstance(event, SupervisorRequested) and self._asked["supervisor"]:
                self._asked["supervisor"] -= 1
                where = "the floor has been told" if self.link is not None else "recorded with the call"
                self.notify(f"Supervisor requested at {clock(event.t)}: {where}.", title="★ supervisor", timeout=5)
            elif isinstance(event, Bookmark) and self._asked["bookmark"]:
                self._asked["bookmark"] -= 1
                self.notify(f"Moment marked at {clock(event.t)} for QA.", title="⚑ bookmark", timeout=3)
            elif isinstance(event, CallEnded):
                self.ended = event
                continue
            if isinstance(event, (Nudge, NudgeCleared, SupervisorRequested, Bookmark)):
                self._waiting.append(event)
            else:
                transcript.add(event)
            self._write_settled(transcript)
        for note in batch.notes:
            self.notify(note, severity="warning", timeout=8)
        if batch.metrics is not None:
            self.status.call_t = batch.metrics.t
            for role, partial in list(self._partials.items()):
                if batch.metrics.t - partial.end > STALE_PARTIAL_S:
                    del self._partials[role]
                    partials_changed = True
        if partials_changed:
            transcript.show_partials(self._partials)
        self._write_settled(transcript)
        if batch.metrics is not None or batch.history is not None:
            self.query_one(Meters).update_metrics(batch.metrics, batch.history)
        if batch.stt_lag is not None:
            self.status.stt_lag = batch.stt_lag
        if batch.overflows is not None:
            self.status.overflows = batch.overflows
        if not self._finished:
            self._show_banner()
        self.query_one(StatusLine).show()

    def _write_settled(self, transcript: Transcript, everything: bool = False) -> None:
        """Write the held nudges and marks whose moment no unfinished utterance precedes.

        A nudge decided on a pause partial comes before that utterance's final; in the log it
        belongs after the line that triggered it, so it waits until the speech before it is settled.
        """
        while self._waiting and (everything or not any(p.start <= self._waiting[0].t for p in self._partials.values())):
            transcript.add(self._waiting.pop(0))

    def _show_banner(self) -> None:
        live = [n for n in self.active.values() if n.id not in self._dismissed]
        top = most_pressing(live)
        key = (top.id, len(live)) if top is not None else None
        if key != self._banner_key:  # redraw only when what it says changes
            banner = self.query_one(NudgeBanner)
            if top is None:
                banner.show_calm()
            else:
                banner.show_nudge(top, len(live) - 1)
            self._banner_key = key
        self.shown = top

    def _show_end(self) -> None:
        ended = self.ended
        if ended is None and self.failure is None:
            ended = CallEnded("", self.status.call_t, 0.0, self.status.call_t, None, 0, 0, None)
        banner = self.query_one(NudgeBanner)
        if self.failure is not None:
            banner.show_error(f"the call failed: {self.failure}", self.end_note)
        elif ended is not None:
            banner.show_ended(ended, self.end_note)
        self.shown = None
        self.status.state = "■ ended"
        self.status.paused = False
        self._partials.clear()
        transcript = self.query_one(Transcript)
        transcript.show_partials({})
        self._write_settled(transcript, everything=True)
        self.query_one(StatusLine).show()
        self.refresh_bindings()

    def _poll_link(self) -> None:
        assert self.link is not None
        if not self.is_running:  # the screen is closing (see refresh_from_feed)
            return
        try:
            self.status.link = self.link()
        except Exception as exc:  # the hub link is informative: never let it take the screen down
            self.status.link = f"hub: ? ({type(exc).__name__})"
        self.query_one(StatusLine).show()
        note = self.lead() if self.lead is not None else None
        if note != self._lead_note:
            self._lead_note = note
            self.query_one(NudgeBanner).show_lead(note)

    # ---- the agent's keys -----------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Pause and speed exist only for replays; shown disabled live and once the call is over."""
        if action in ("pause", "faster", "slower"):
            return True if self.pacer is not None and not self._finished else None
        if action in ("dismiss_nudge", "supervisor", "bookmark"):
            return True if not self._finished else None
        return True

    def _control(self, job: Callable[[], None]) -> None:
        if self._controls is not None:
            self._controls.submit(job)

    def action_dismiss_nudge(self) -> None:
        """Dismiss the nudge on the banner; the coach records it and the banner shows the next one."""
        nudge = self.shown
        if nudge is None:
            self.notify("No nudge to dismiss.", timeout=2)
            return
        self._dismissed.add(nudge.id)
        self._control(lambda: self.session.dismiss(nudge.id))
        self._show_banner()
        self.notify(f"Dismissed: {nudge.kind.replace('_', ' ')}.", timeout=3)

    def action_supervisor(self) -> None:
        """Ask for a supervisor: an event every sink sees, the floor included."""
        if self._finished or self._quitting:
            self.notify("The call has ended.", severity="warning", timeout=3)
            return
        self._asked["supervisor"] += 1
        self._control(self.session.request_supervisor)  # its notice comes with the event, stamped in call time

    def action_bookmark(self) -> None:
        """Mark this moment for QA."""
        if self._finished or self._quitting:
            self.notify("The call has ended.", severity="warning", timeout=3)
            return
        self._asked["bookmark"] += 1
        self._control(self.session.bookmark)  # its notice comes with the event, at the call time of its transcript mark

    def action_pause(self) -> None:
        """Pause or resume the replay."""
        if self.pacer is None:
            return
        if self.pacer.paused:
            self.pacer.resume()
            self.notify("Resumed.", timeout=2)
        else:
            self.pacer.pause()
            self.notify("Paused: Space resumes.", timeout=2)
        self.status.paused = self.pacer.paused
        self.query_one(StatusLine).show()

    def action_faster(self) -> None:
        """Replay faster."""
        self._step_speed(+1)

    def action_slower(self) -> None:
        """Replay slower."""
        self._step_speed(-1)

    def _step_speed(self, step: int) -> None:
        if self.pacer is None:
            return
        now = self.pacer.speed or 1.0
        if step > 0:
            speed = next((s for s in SPEEDS if s > now), SPEEDS[-1])
        else:
            speed = next((s for s in reversed(SPEEDS) if s < now), SPEEDS[0])
        self.pacer.set_speed(speed)
        self.status.speed = speed
        self.query_one(StatusLine).show()
        self.notify(f"Speed {speed:g}×.", timeout=2)

    def action_help(self) -> None:
        """The list of keys."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.query_one(Transcript).region))

    def action_toggle_theme(self) -> None:
        """Light or dark."""
        self.theme = "textual-dark" if "light" in self.theme else "textual-light"

    async def action_quit(self) -> None:
        """End the call (every sink gets call.ended), then close the screen."""
        if self._finished:
            self.exit()
        else:
            self._begin_quit()

    def _begin_quit(self) -> None:
        if self._quitting:
            return
        self._quitting = True
        self.session.stop()
        if self.pacer is not None:
            self.pacer.resume()  # a paused source would never reach the stop
        self.status.state = "ending the call…"
        self.query_one(StatusLine).show()


class _NotesToScreen(logging.Handler):
    """While the screen is up, warnings go to it as notes instead of scribbling over it."""

    def __init__(self, feed: EventFeed) -> None:
        super().__init__(logging.WARNING)
        self.feed = feed

    def emit(self, record: logging.LogRecord) -> None:
        self.feed.note(f"{record.levelname.lower()}: {record.getMessage()}")


def run_agent_tui(
    make_session: Callable[[list[Sink]], CallControls], *, source_label: str, pacer: Pacer | None = None,
    link: Callable[[], str | None] | None = None, bell: bool = False, end_note: str = "q to quit",
    lead: Callable[[], str | None] | None = None,
) -> int:
    """Build the call with the TUI's sink added, run it under the TUI, return the exit code (0 ended or quit,
    2 the call ended with `call.ended.error`, printed as one line after the screen closes; 130 when a signal
    (SIGTERM, or SIGINT from outside the terminal) ended it). A failure of the pipeline is re-raised after
    the screen closes, for the CLI to report in one line."""
    feed = EventFeed()
    session = make_session([feed])  # a BadInput here is a plain error: no screen has started
    app = AgentApp(session, feed, source_label=source_label, pacer=pacer, link=link, bell=bell, end_note=end_note,
                   lead=lead)
    restore_signals = _signals_end_call(app)
    root = logging.getLogger()
    saved_handlers = root.handlers[:]
    root.handlers = [_NotesToScreen(feed)]
    try:
        app.run()
    finally:
        root.handlers = saved_handlers
        restore_signals()
        session.stop()
        if pacer is not None:
            pacer.resume()
        if app.session_thread.ident is not None:
            app.session_thread.join()  # call.ended has reached every sink
    if app.failure is not None:
        raise app.failure
    ended = app.ended
    if ended is not None and ended.error:
        print(f"callmon: error: {ended.error}; the call was monitored up to {clock(ended.t)}", file=sys.stderr)
        return 2
    return 130 if app.signalled else 0


def _signals_end_call(app: AgentApp) -> Callable[[], None]:
    """SIGTERM (and SIGINT sent from outside; Ctrl-C in the terminal is a key) end the call cleanly."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(_signum: int, _frame: object) -> None:
        # Only flags here: the app's next tick begins the quit on its own loop.
        app.signalled = True
        app.session.stop()
        if app.pacer is not None:
            app.pacer.resume()

    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in saved.items():
            signal.signal(sig, old)

    return restore

