"""The nudge banner: quiet when the call is calm, impossible to miss when a nudge is up.

Severity is shown three ways at once (an icon, a word, a colour) so it reads in monochrome and
for colour-blind agents. The colours come from the theme (see agent.tcss), so they work in dark
and light themes alike.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from ..events import CallEnded, Nudge
from ..sinks import clock

SEVERITY_LABEL = {"info": "i INFO", "warn": "! WARN", "critical": "▲ CRITICAL"}
SEVERITY_RANK = {"info": 0, "warn": 1, "critical": 2}
HEAT_WORDS = ("calm", "tense", "heated", "critical")


def heat_word(heat: int | None) -> str:
    """The heat level as the word the agent reads."""
    if heat is None:
        return "—"
    return HEAT_WORDS[max(0, min(3, heat))]


def split_message(message: str) -> tuple[str, str]:
    """A nudge message is "the move. Try: "phrase"": the move and the phrase to say ("" when none)."""
    move, sep, phrase = message.partition(" Try: ")
    return move.strip(), phrase.strip() if sep else ""


def most_pressing(nudges: list[Nudge]) -> Nudge | None:
    """The nudge the banner shows: the most severe, and of those the newest."""
    if not nudges:
        return None
    return max(enumerate(nudges), key=lambda p: (SEVERITY_RANK.get(p[1].severity, 0), p[0]))[1]


class NudgeBanner(Vertical):
    """The top of the screen: no nudge, the most pressing nudge, or the call's end."""

    def compose(self) -> ComposeResult:
        # markup off: nudge texts quote the customer, and their brackets are not markup
        for part in ("head", "move", "phrase", "reason"):
            yield Static(id=f"banner-{part}", markup=False)
        lead = Static(id="banner-lead", markup=False)  # the team lead's answer: "your lead is coming", a whisper
        lead.display = False
        yield lead

    def on_mount(self) -> None:
        self.show_calm()

    def _set(self, state: str, head: str, move: str = "", phrase: str = "", reason: str = "") -> None:
        for name in ("-calm", "-info", "-warn", "-critical", "-ended", "-error"):
            self.set_class(name == state, name)
        for part, text in (("head", head), ("move", move), ("phrase", phrase), ("reason", reason)):
            widget = self.query_one(f"#banner-{part}", Static)
            widget.update(text)
            widget.display = bool(text)

    def show_lead(self, note: str | None) -> None:
        """What the team lead said through the floor hub (kept under whatever the banner shows), or nothing."""
        widget = self.query_one("#banner-lead", Static)
        widget.update(note or "")
        widget.display = bool(note)

    def show_calm(self) -> None:
        """No nudge: one quiet line."""
        self._set("-calm", "✓ no nudge")

    def show_nudge(self, nudge: Nudge, others: int) -> None:
        """The nudge the agent should act on now; `others` more are active behind it."""
        move, phrase = split_message(nudge.message)
        more = f"   (+{others} more)" if others else ""
        label = SEVERITY_LABEL.get(nudge.severity, nudge.severity.upper())
        head = f"{label}  {nudge.kind.replace('_', ' ')} · {clock(nudge.t)}{more}"
        self._set(f"-{nudge.severity}", head, move.upper(), f"Say: {phrase}" if phrase else "", f"why: {nudge.reason}")

    def show_ended(self, ended: CallEnded, note: str) -> None:
        """The call is over: its summary, and how to leave."""
        talk = f" · agent talked {ended.talk_ratio:.0%}" if ended.talk_ratio is not None else ""
        summary = (
            f"peak heat {heat_word(ended.peak_heat)} · {ended.nudges_raised} nudges, "
            f"{ended.nudges_followed} followed{talk}"
        )
        state = "-error" if ended.error else "-ended"
        reason = f"the audio failed: {ended.error}" if ended.error else ""
        self._set(state, f"■ CALL ENDED at {clock(ended.t)}", summary, note, reason)

    def show_error(self, message: str, note: str) -> None:
        """The call could not go on (the pipeline failed)."""
        self._set("-error", "▲ CALL STOPPED", message, note)
