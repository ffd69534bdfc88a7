"""`callmon floor`: the team lead's terminal dashboard of every live call, ranked by heat.

The hub link lives in `client.FloorClient` (on Textual's own event loop); it only sets a flag when
something changes and the screen redraws on a 100 ms timer, so a busy floor costs at most ten
redraws a second. Heat is shown as a word and a mark as well as a colour, so the board reads in
monochrome and for colour-blind leads. `a` acknowledges a call's alerts (the agent's screen says
"your lead is coming"); `w` in an open call whispers a short text to the agent's banner.
`--no-tui` prints the snapshot and every change as JSON lines instead (`run_jsonl`).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from argparse import Namespace
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, RichLog, Static

from ..errors import BadInput
from .client import (
    Alert,
    AlertClock,
    Call,
    FloorClient,
    Link,
    TokenRefused,
    ago,
    alerts,
    duration_of,
    heat_of,
    probe,
    rank,
    ws_url,
)

DEFAULT_HUB = "ws://127.0.0.1:8765"
REDRAW_S = 0.1  # at most ten redraws a second, however busy the floor
MAX_ALERT_LINES = 3
LAST_LINE_CHARS = 60

HEAT_WORDS = ("calm", "tense", "heated", "CRITICAL")
HEAT_MARKS = ("·  ", "▲  ", "▲▲ ", "▲▲▲")
HEAT_STYLES = ("green", "yellow", "bold dark_orange", "bold white on red")
SEVERITY_STYLES = {"info": "cyan", "warn": "bold yellow", "critical": "bold white on red"}

COLUMNS = (
    ("agent", "Agent"), ("duration", "Time"), ("heat", "Heat"), ("loudness", "Loud"), ("pace", "Pace"),
    ("hostility", "Host."), ("nudge", "Nudge"), ("last", "Last customer line"),
)


def run_floor(args: Namespace) -> int:
    """`callmon floor`: check the token, then open the dashboard; the exit code."""
    token = getattr(args, "token", None) or os.environ.get("CALLMON_TOKEN")
    if not token:
        raise BadInput("the floor needs a viewer token: give --token or set CALLMON_TOKEN")
    url = ws_url(getattr(args, "hub", None) or DEFAULT_HUB)
    # A wrong token is a plain one-line error before any screen opens; a hub that is down is not:
    # the dashboard opens and keeps retrying, since the hub may just be starting.
    first = asyncio.run(probe(url, token))
    if first.state == "refused":
        raise TokenRefused(_refused_line(url, first.detail))
    if getattr(args, "no_tui", False):
        return run_jsonl(url, token)
    app = FloorApp(url, token)
    app.run()
    if app.client.link.state == "refused":
        raise TokenRefused(_refused_line(url, app.client.link.detail))
    return 0


def run_jsonl(url: str, token: str, out: Any = None) -> int:
    """`callmon floor --no-tui --format jsonl`: every message from the hub as one JSON line on stdout (a `batch`
    is written as the messages in it), and each change of the link as {"type": "link", "state", "detail"}.
    Runs until Ctrl-C, SIGTERM or the hub refuses the token; stdout closing (a pipe's reader gone) ends it too."""
    import signal

    out = out or sys.stdout
    client = FloorClient(url, token)
    last_link: tuple[str, str] | None = None

    def write(message: dict[str, Any]) -> None:
        out.write(json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n")
        out.flush()

    def on_message(message: dict[str, Any]) -> None:
        if message.get("type") == "batch":
            for inner in message.get("messages") or []:
                write(inner)
        else:
            write(message)

    def on_change() -> None:
        nonlocal last_link
        link = (client.link.state, client.link.detail)
        if link != last_link:
            last_link = link
            write({"type": "link", "state": link[0], "detail": link[1]})

    client.on_message = on_message
    client.on_change = on_change

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, client.stop)
        await client.run()

    try:
        asyncio.run(main())
    except BrokenPipeError:
        return 0
    if client.link.state == "refused":
        raise TokenRefused(_refused_line(url, client.link.detail))
    return 0


def _refused_line(url: str, detail: str) -> str:
    return (
        f"the hub at {url} refused the token ({detail}); give a viewer token "
        "(make one with: callmon hub token --role viewer --tokens FILE)"
    )


# ---------------------------------------------------------------------------------------------
# cells


def heat_text(call: Call) -> Text:
    """Heat as mark + word + colour: '▲▲ heated'."""
    if call.get("heat") is None:
        return Text("-   --", style="dim")
    level = min(3, max(0, heat_of(call)))
    return Text(f"{HEAT_MARKS[level]} {HEAT_WORDS[level]}", style=HEAT_STYLES[level])


def mmss(seconds: float) -> str:
    """62.4 → '01:02'; an hour or more → '1:02:03'."""
    whole = int(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def _fmt(value: Any, pattern: str) -> str:
    return pattern.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "-"


def nudge_text(call: Call) -> Text:
    """The most pressing active nudge ('+N' when there are more)."""
    nudges = [n for n in call.get("nudges") or [] if isinstance(n, dict)]
    if not nudges:
        return Text("")
    order = {"critical": 0, "warn": 1, "info": 2}
    top = min(nudges, key=lambda n: (order.get(str(n.get("severity")), 3), -float(n.get("t") or 0)))
    severity = str(top.get("severity"))
    # The mark repeats the colour's message for monochrome screens: ‼ critical, ! warn.
    mark = {"critical": "‼ ", "warn": "! "}.get(severity, "")
    text = Text(mark + str(top.get("kind", "?")).replace("_", " "), style=SEVERITY_STYLES.get(severity, ""))
    if len(nudges) > 1:
        text.append(f" +{len(nudges) - 1}", style="dim")
    return text


def row_cells(call: Call, alerting: bool) -> tuple[Any, ...]:
    """One board row, in COLUMNS order."""
    customer = call.get("customer") or {}
    status = str(call.get("status") or "live")
    agent = Text(str(call.get("agent_id") or "?"), style="bold")
    if alerting:
        agent = Text("⚑ ", style="bold red") + agent
    duration = mmss(duration_of(call)) + ("" if status == "live" else f" {status}")
    last = str(call.get("last_customer_line") or "")
    if len(last) > LAST_LINE_CHARS:
        last = last[: LAST_LINE_CHARS - 1] + "…"
    return (
        agent,
        Text(duration, style="" if status == "live" else "dim"),
        heat_text(call),
        _fmt(customer.get("loudness_db"), "{:+.1f} dB"),
        _fmt(customer.get("pace_wpm"), "{:.0f} wpm"),
        _fmt(customer.get("hostility"), "{:.2f}"),
        nudge_text(call),
        last,
    )


# ---------------------------------------------------------------------------------------------
# widgets and screens


class CallTable(DataTable):
    """The board; a single click on a row opens it, like Enter (DataTable alone needs two)."""

    def _on_click(self, event: Any) -> None:
        # Textual runs DataTable's own click handler after this one: moving the cursor to the clicked
        # row first makes that handler treat the click as a click on the highlighted row, which opens it.
        row = event.style.meta.get("row", -1)
        column = event.style.meta.get("column", 0)
        if isinstance(row, int) and row >= 0 and self.is_valid_row_index(row) and row != self.cursor_row:
            self.cursor_coordinate = Coordinate(row, max(0, column if isinstance(column, int) else 0))


class HelpScreen(ModalScreen[None]):
    """The keys, on `?`."""

    BINDINGS = [Binding("escape,question_mark", "dismiss", "close"), Binding("q", "app.quit", "quit")]

    def compose(self) -> ComposeResult:
        yield Static(
            "[b]Floor dashboard keys[/b]\n\n"
            "  ↑ ↓          move along the board (hottest calls first)\n"
            "  Enter/click  open the call: its live transcript and nudges\n"
            "  Escape       back to the board\n"
            "  a            acknowledge the call's alerts: the agent sees \"your lead is coming\"\n"
            "  w            (in a call) whisper a short text to the agent's screen\n"
            "  ?            this help\n"
            "  q            quit\n\n"
            "Heat: ·  calm   ▲  tense   ▲▲ heated   ▲▲▲ CRITICAL\n"
            "⚑ marks a call with an alert (supervisor asked for, or coached to call one).\n\n"
            "[dim]Escape closes this help[/dim]",
            id="help-body",
        )


class CallScreen(Screen[None]):
    """One call up close: who, how hot, the active nudges and the live transcript with nudges inline."""

    BINDINGS = [
        Binding("escape", "back", "back to the board"),
        Binding("a", "acknowledge", "acknowledge"),
        Binding("w", "whisper", "whisper to the agent"),
    ]

    def __init__(self, call_id: str) -> None:
        super().__init__()
        self.call_id = call_id
        self._lines_shown = 0
        self._nudges_shown: set[str] = set()
        self._filled = False
        self._shown: dict[str, Text] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="call-head")
        yield Static(id="call-nudges")
        yield RichLog(id="transcript", wrap=True, markup=False, highlight=False, max_lines=2000)
        whisper = Input(id="whisper", placeholder="whisper to the agent (Enter sends, Escape cancels)", max_length=200)
        whisper.display = False
        yield whisper
        yield Footer()

    def action_back(self) -> None:
        whisper = self.query_one("#whisper", Input)
        if whisper.display:
            whisper.display = False
            self.query_one("#transcript").focus()
            return
        self.app.pop_screen()

    def action_acknowledge(self) -> None:
        self.app.acknowledge(self.call_id)  # type: ignore[attr-defined]

    def action_whisper(self) -> None:
        whisper = self.query_one("#whisper", Input)
        whisper.display = True
        whisper.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.value = ""
        event.input.display = False
        self.query_one("#transcript").focus()
        if text:
            self.app.whisper(self.call_id, text)  # type: ignore[attr-defined]

    def on_mount(self) -> None:
        client = getattr(self.app, "client", None)
        if client is not None:
            self.show(client.calls.get(self.call_id))

    def show(self, call: Call | None) -> None:
        """Bring the screen up to date with the call's latest state (called on every redraw)."""
        if not self.is_mounted:
            return  # on_mount shows it once composed
        head = self.query_one("#call-head", Static)
        if call is None:
            self._update(head, Text("This call has left the board (ended). Escape goes back.", style="bold"))
            return
        status = str(call.get("status") or "live")
        head_text = Text.assemble(
            (str(call.get("agent_id") or "?"), "bold"), f"   {call.get('call_id')}   {status}   ",
            mmss(duration_of(call)), "   ", heat_text(call),
        )
        self._update(head, head_text)
        nudges = [n for n in call.get("nudges") or [] if isinstance(n, dict)]
        body = Text()
        for nudge in nudges:
            body.append(f"{str(nudge.get('severity', '')).upper():8} ", style=SEVERITY_STYLES.get(str(nudge.get("severity")), ""))
            body.append(f"{str(nudge.get('kind', '')).replace('_', ' ')}: ", style="bold")
            body.append(str(nudge.get("message", "")) + "\n")
        if not nudges:
            body.append("no active nudge", style="dim")
        body.rstrip()
        self._update(self.query_one("#call-nudges", Static), body)
        self._write_transcript(call)

    def _update(self, widget: Static, text: Text) -> None:
        # Ten redraws a second: only touch what changed, so an idle call costs no layout work.
        if self._shown.get(widget.id or "") != text:
            self._shown[widget.id or ""] = text
            widget.update(text)

    def _write_transcript(self, call: Call) -> None:
        log = self.query_one("#transcript", RichLog)
        transcript = [line for line in call.get("transcript") or [] if isinstance(line, dict)]
        total = int(call.get("lines_total") or len(transcript))
        fresh_nudges = [n for n in call.get("nudge_log") or [] if str(n.get("id")) not in self._nudges_shown]
        entries: list[tuple[int, dict[str, Any]]]
        if not self._filled:
            # First view: the kept transcript and the nudges, in call-time order.
            both = [(0, x) for x in transcript] + [(1, n) for n in fresh_nudges]
            entries = sorted(both, key=lambda e: float(e[1].get("t") or 0))
            self._filled = True
        else:
            # Later: what arrived since, in arrival order (lines_total counts past the trimmed tail).
            fresh = transcript[-(total - self._lines_shown):] if total > self._lines_shown else []
            entries = [(0, x) for x in fresh] + [(1, n) for n in fresh_nudges]
        self._lines_shown = total
        for kind, item in entries:
            log.write(self._nudge_line(item) if kind else self._transcript_line(item))
            if kind:
                self._nudges_shown.add(str(item.get("id")))

    @staticmethod
    def _transcript_line(line: dict[str, Any]) -> Text:
        role = str(line.get("role") or "?")
        style = "bold" if role == "customer" else "cyan"
        stamp = f"{mmss(float(line.get('t') or 0))} "
        return Text.assemble((stamp, "dim"), (f"{role.upper():9}", style), str(line.get("text", "")))

    @staticmethod
    def _nudge_line(nudge: dict[str, Any]) -> Text:
        severity = str(nudge.get("severity") or "info")
        return Text.assemble(
            (f"{mmss(float(nudge.get('t') or 0))} ", "dim"),
            (f"⚑ NUDGE {str(nudge.get('kind', '')).replace('_', ' ')} ({severity})", SEVERITY_STYLES.get(severity, "")),
            f"  {nudge.get('message', '')}",
        )


class FloorApp(App[None]):
    """Every live call on the floor, hottest first; alerts on top; drill into one call."""

    CSS_PATH = "dashboard.tcss"
    TITLE = "callmon floor"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("question_mark", "help", "keys"),
        Binding("a", "acknowledge", "acknowledge the call's alerts"),
    ]

    def __init__(self, url: str, token: str, *, client: FloorClient | None = None) -> None:
        super().__init__()
        self.client = client or FloorClient(url, token)
        self.client.on_change = self._changed
        self.url = self.client.url
        self._alert_keys: set[str] = set()
        self.clock = AlertClock()
        self._dirty = True
        self._last_draw = 0.0
        self._cells: dict[str, tuple[Any, ...]] = {}
        self._texts: dict[str, Text] = {}

    def compose(self) -> ComposeResult:
        yield Static(id="alerts")
        yield CallTable(id="calls", cursor_type="row", zebra_stripes=True)
        yield Static(id="status")
        yield Footer()

    def on_mount(self) -> None:
        # Kept as references: while a call is open, queries would search that screen, not the board.
        self.alert_bar = self.query_one("#alerts", Static)
        self.table = table = self.query_one(CallTable)
        self.status_line = self.query_one("#status", Static)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.run_worker(self.client.run(), name="hub link", exit_on_error=False)
        self.set_interval(REDRAW_S, self._tick)
        self._draw()

    def on_unmount(self) -> None:
        self.client.stop()

    def _changed(self) -> None:
        self._dirty = True

    def _tick(self) -> None:
        # Redraw on change, and once a second anyway so "2 min ago" and "retrying in 3 s" stay true.
        now = time.monotonic()
        if self._dirty or now - self._last_draw >= 1.0:
            self._draw()

    def _draw(self) -> None:
        self._dirty = False
        self._last_draw = time.monotonic()
        calls = self.client.calls
        ranked = rank(calls)
        current = alerts(calls)
        self._draw_alerts(current)
        self._draw_table(ranked, {a.call_id for a in current})
        self._draw_status(len(ranked), len(current))
        if isinstance(self.screen, CallScreen):
            self.screen.show(calls.get(self.screen.call_id))
            # The alert bar is on the board: while one call is open, new alerts come as toasts.
            for alert in current:
                if alert.key not in self._alert_keys and alert.call_id != self.screen.call_id:
                    self.notify(f"{alert.agent_id} {alert.label}", title="⚠ ALERT", severity="error", timeout=10)
        self._alert_keys = {a.key for a in current}

    def _draw_alerts(self, current: list[Alert]) -> None:
        bar = self.alert_bar
        now = time.time()
        self.clock.forget_except({a.key for a in current})
        bar.set_class(bool(current), "-active")
        if not current:
            self._set(bar, Text(""))
            return
        text = Text()
        for alert in current[:MAX_ALERT_LINES]:
            since = self.clock.since(alert, self.client.calls.get(alert.call_id), now)
            text.append("⚠ ALERT ", style="bold")
            text.append(alert.agent_id, style="bold underline")
            text.append(f" {alert.label}")
            if alert.text:
                text.append(f": {alert.text[:80]}")
            text.append(f"  ({ago(now - since)}, {alert.call_id})\n", style="italic")
        if len(current) > MAX_ALERT_LINES:
            text.append(f"… and {len(current) - MAX_ALERT_LINES} more; press a to acknowledge supervisor requests\n")
        text.rstrip()
        self._set(bar, text)

    def _draw_table(self, ranked: list[Call], alerting: set[str]) -> None:
        table = self.table
        rows = {str(c["call_id"]): row_cells(c, str(c["call_id"]) in alerting) for c in ranked}
        order = list(rows)
        shown = [str(row.key.value) for row in table.ordered_rows]
        if order == shown:
            for call_id, cells in rows.items():
                old = self._cells.get(call_id)
                for (key, _label), value, before in zip(COLUMNS, cells, old or (None,) * len(cells), strict=True):
                    if value != before:
                        table.update_cell(call_id, key, value, update_width=True)
        else:
            # The order changed: rebuild, keeping the cursor on the call it was on.
            keep = None
            if table.row_count and table.is_valid_row_index(table.cursor_row):
                keep = str(table.ordered_rows[table.cursor_row].key.value)
            table.clear()
            for call_id, cells in rows.items():
                table.add_row(*cells, key=call_id)
            if keep in rows:
                table.move_cursor(row=order.index(keep), animate=False)
        self._cells = rows

    def _draw_status(self, n_calls: int, n_alerts: int) -> None:
        link: Link = self.client.link
        status = self.status_line
        for state in ("connecting", "connected", "down", "refused"):
            status.set_class(link.state == state, f"-{state}")
        parts = [f"hub {self.url}: {link.text()}", f"{n_calls} call{'s' if n_calls != 1 else ''}"]
        if n_alerts:
            parts.append(f"{n_alerts} alert{'s' if n_alerts != 1 else ''}")
        parts.append("? keys")
        self._set(status, Text("  ·  ".join(parts)))

    def _set(self, widget: Static, text: Text) -> None:
        # Ten redraws a second: only touch a widget whose text changed (no needless layout work).
        if self._texts.get(widget.id or "") != text:
            self._texts[widget.id or ""] = text
            widget.update(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        call_id = str(event.row_key.value)
        if call_id in self.client.calls:
            self.push_screen(CallScreen(call_id))
            self._dirty = True

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_acknowledge(self) -> None:
        """`a` on the board: acknowledge the highlighted call's alerts."""
        table = self.table
        if table.row_count and table.is_valid_row_index(table.cursor_row):
            self.acknowledge(str(table.ordered_rows[table.cursor_row].key.value))

    def acknowledge(self, call_id: str) -> None:
        """Tell the hub (and through it the agent and every lead) that a lead is on the way to this call."""
        self._lead({"type": "ack", "call_id": call_id}, "acknowledged: the agent sees \"your lead is coming\"")

    def whisper(self, call_id: str, text: str) -> None:
        """A short text for the agent's banner."""
        self._lead({"type": "whisper", "call_id": call_id, "text": text}, f"whispered: {text}")

    def _lead(self, message: dict[str, Any], done: str) -> None:
        async def send() -> None:
            sent = await self.client.send(message)
            self.notify(done if sent else "not sent: the hub link is down", severity="information" if sent else "error")

        self.run_worker(send(), exit_on_error=False)
        self._dirty = True
