"""The keys, in one place: the app's bindings and the `?` screen that lists them."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Region
from textual.screen import ModalScreen
from textual.widgets import Static

SPEED = Binding.Group("speed")  # "+ - speed": one footer entry, so the keys fit in 80 columns

BINDINGS = [
    Binding("d", "dismiss_nudge", "dismiss"),
    Binding("escape", "dismiss_nudge", "dismiss", show=False),
    Binding("s", "supervisor", "supervisor"),
    Binding("m", "bookmark", "mark"),
    Binding("space", "pause", "pause"),
    Binding("plus,equals_sign", "faster", "faster", key_display="+", group=SPEED),
    Binding("minus", "slower", "slower", key_display="-", group=SPEED),
    Binding("question_mark", "help", "keys", key_display="?"),
    Binding("t", "toggle_theme", "light/dark", show=False),
    Binding("q", "quit", "quit"),
    Binding("ctrl+c", "quit", "quit", show=False, priority=True),
]

HELP = (
    ("d  Esc", "dismiss the nudge on the banner (the coach records it as dismissed)"),
    ("s", "ask for a supervisor: the floor sees it at once"),
    ("m", "mark this moment for QA (a bookmark in the call's record)"),
    ("Space", "pause / resume (replay and demo only)"),
    ("+  -", "faster / slower (replay and demo only)"),
    ("t", "light / dark theme"),
    ("?", "this list"),
    ("q  Ctrl-C", "end the call and quit (everything is flushed first)"),
)

LEGEND = (
    "Banner: ▲ CRITICAL, ! WARN or i INFO; the move, the phrase to say, and why.",
    "Meters: the value, a bar, and the last 3 minutes (each column its peak).",
    "Heat: calm, tense, heated, critical.",
    "Transcript: abuse and threats in reverse, escalation underlined;",
    "words still being spoken dimmed at the bottom.",
    "Mouse: click a key in the bottom line.",
)


class HelpScreen(ModalScreen[None]):
    """Every key and what it does; any of ? Esc q closes it.

    It lies over `region` (the transcript's place on the screen), scrolling if it must, so the
    banner and the status line stay in sight while it is open.
    """

    BINDINGS = [Binding("question_mark,escape,q", "close", "close")]

    def __init__(self, region: Region | None = None) -> None:
        super().__init__()
        self.region_over = region

    def on_mount(self) -> None:
        if self.region_over is not None:
            box = self.query_one("#help", Vertical)
            box.styles.offset = (self.region_over.x, self.region_over.y)
            box.styles.width = self.region_over.width
            box.styles.max_height = self.region_over.height

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for keys, what in HELP:
            table.add_row(keys, what)
        with Vertical(id="help"):
            yield Static(Text("Keys", style="bold"))
            yield Static(table)
            yield Static(Text("\n".join(LEGEND)), id="legend")
            yield Static(Text("? Esc q: close", style="italic"))

    def action_close(self) -> None:
        self.dismiss()
