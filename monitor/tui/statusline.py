"""The status line: where the audio comes from, how the replay runs, and whether anything lags or drops."""

from __future__ import annotations

from dataclasses import dataclass

from textual.widgets import Static

from ..vocab import clock


@dataclass
class StatusInfo:
    """Everything the status line shows; the app updates fields and calls `StatusLine.show`."""

    source: str
    live: bool
    speed: float | None = None
    paused: bool = False
    call_t: float = 0.0
    stt_lag: float | None = None
    overflows: int = 0
    link: str | None = None
    state: str = ""  # "ending the call…", "ended": overrides the play state

    def text(self, width: int) -> str:
        """One line, at most `width` characters: the source is shortened first."""
        if self.state:
            play = self.state
        elif self.live:
            play = "● live"
        elif self.paused:
            play = "‖ paused"
        else:
            play = f"▶ {self.speed:g}×" if self.speed else "▶ fast"
        lag = f"STT lag {self.stt_lag:.1f} s" if self.stt_lag is not None else "STT lag —"
        rest = f" │ {play} │ {clock(self.call_t)} │ {lag} │ dropped {self.overflows} │ {self.link or 'hub: off'}"
        room = max(8, width - len(rest) - 1)
        source = self.source if len(self.source) <= room else "…" + self.source[-(room - 1):]
        return f" {source}{rest}"[:width]


class StatusLine(Static):
    """The bottom line above the keys."""

    def __init__(self, info: StatusInfo, **kwargs: object) -> None:
        super().__init__(markup=False, **kwargs)  # type: ignore[arg-type]
        self.info = info

    def show(self) -> None:
        """Redraw from `info`."""
        self.update(self.info.text(self.size.width or 80))

    def on_resize(self) -> None:
        self.show()
