"""The live transcript: both roles, partials dimmed below the settled lines, hostile words marked,
nudges and the agent's own actions inline where they happened."""

from __future__ import annotations

import re

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import RichLog, Static

from ..analysis.lexicon import default_lexicon, normalise
from ..events import Bookmark, CallStarted, Event, Nudge, NudgeCleared, Status, SupervisorRequested, TranscriptPartial
from ..vocab import clock
from .banner import SEVERITY_LABEL

# Said at the agent: marked loudest. The rest of the customer's intent categories (manager request,
# churn threat, exasperation) are escalation, not abuse: marked, but less loudly.
HOSTILE = frozenset({"insult", "profanity", "legal_threat", "violent_threat"})
MAX_LINES = 2000  # a long call must not grow the screen's memory without bound


def marked_spans(text: str) -> list[tuple[int, int, bool]]:
    """Character spans of the customer's intent phrases in `text`: (start, end, hostile)."""
    tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    # The lexicon counts words of the normalised text ("you're" is two); map them back to tokens.
    owner: list[int] = []
    for i, (a, b) in enumerate(tokens):
        owner += [i] * len(normalise(text[a:b]).split())
    spans = []
    for match in default_lexicon().match(text, role="customer"):
        if match.last_word < len(owner):
            first, last = owner[match.first_word], owner[match.last_word]
            spans.append((tokens[first][0], tokens[last][1], match.category in HOSTILE))
    return spans


class Transcript(Vertical):
    """Settled lines in a scrolling log; the partials of utterances still being spoken under them."""

    COMPONENT_CLASSES = {
        "transcript--time", "transcript--agent", "transcript--customer", "transcript--hostile", "transcript--escalation",
        "transcript--info", "transcript--warn", "transcript--critical", "transcript--note", "transcript--partial",
    }

    def compose(self) -> ComposeResult:
        yield RichLog(id="log", wrap=True, min_width=20, max_lines=MAX_LINES)
        partials = Static(id="partials", markup=False)
        partials.display = False  # no room taken until someone speaks
        yield partials

    def _style(self, name: str) -> Style:
        # Colour and weight only, so the log's own background shows through.
        s = self.get_component_rich_style(f"transcript--{name}")
        return Style(color=s.color, bold=s.bold, italic=s.italic, underline=s.underline, reverse=s.reverse)

    def _line(self, t: float, who: str, body: Text, who_style: Style) -> Table:
        # A grid keeps wrapped text aligned under the text column, clear of the time and role.
        grid = Table.grid(padding=(0, 1))
        grid.add_column(width=7, no_wrap=True)
        grid.add_column(width=8, no_wrap=True)
        grid.add_column(ratio=1)
        grid.add_row(Text(clock(t), self._style("time")), Text(who, who_style), body)
        return grid

    def _write(self, line: Table) -> None:
        self.query_one("#log", RichLog).write(line, expand=True)  # expand: wrap at the log's width, not the grid's own

    def add(self, event: Event) -> None:
        """Write one settled event to the log."""
        if isinstance(event, TranscriptPartial):  # a final (partials never reach the log)
            body = Text(event.text)
            if event.role == "customer":
                for a, b, hostile in marked_spans(event.text):
                    body.stylize(self._style("hostile" if hostile else "escalation"), a, b)
            self._write(self._line(event.start, event.role, body, self._style(event.role)))
        elif isinstance(event, Nudge):
            style = self._style(event.severity if event.severity in SEVERITY_LABEL else "warn")
            label = SEVERITY_LABEL.get(event.severity, event.severity.upper())
            self._write(self._line(event.t, "» nudge", Text(f"{label} {event.kind}: {event.message}", style), style))
        elif isinstance(event, NudgeCleared):
            followed = f", followed after {event.follow_s:.1f} s" if event.followed and event.follow_s is not None else ""
            note = Text(f"{event.kind or event.id} cleared ({event.how}{followed})", self._style("note"))
            self._write(self._line(event.t, "« nudge", note, self._style("note")))
        elif isinstance(event, SupervisorRequested):
            self._write(self._line(event.t, "★ agent", Text("asked for a supervisor", self._style("warn")), self._style("warn")))
        elif isinstance(event, Bookmark):
            self._write(self._line(event.t, "⚑ agent", Text("marked this moment for QA", self._style("note")), self._style("note")))
        elif isinstance(event, Status) and event.state != "ok":
            text = f"audio {event.state}" + (f": {event.message}" if event.message else "")
            self._write(self._line(event.t, "⚠ status", Text(text, self._style("warn")), self._style("warn")))
        elif isinstance(event, CallStarted):
            self._write(self._line(event.t, "· call", Text(f"started ({event.source}, model {event.model})", self._style("note")),
                                 self._style("note")))

    def show_partials(self, partials: dict[str, TranscriptPartial]) -> None:
        """The utterances still being spoken (an empty dict clears them)."""
        widget = self.query_one("#partials", Static)
        lines = Text(style=self._style("partial"), no_wrap=True, overflow="crop")
        room = max(10, (self.size.width or self.app.size.width) - 22)
        for role in sorted(partials):
            if lines:
                lines.append("\n")
            p = partials[role]
            text = p.text if len(p.text) <= room else "…" + p.text[-room + 1:]  # the newest words matter most
            lines.append(f"{clock(p.start)} {role:<8} {text} …")  # the trailing … : still speaking
        widget.update(lines)
        widget.display = bool(partials)
