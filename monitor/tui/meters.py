"""The meters: call heat, the customer's loudness, pace and hostility, the agent's pace and talk share.

One widget draws every row (a label, the value, a bar, and a sparkline of the last minutes), so
a metrics update is one repaint. Bars use a fixed scale per meter, so the same length always
means the same thing; the value is always written out, so nothing depends on colour alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from ..events import Metrics
from ..vocab import heat_word
from .feed import HISTORY_S

SPARK = " ▁▂▃▄▅▆▇█"
LABEL_W, VALUE_W = 11, 10


@dataclass(frozen=True)
class Meter:
    """One row: where its value comes from, its scale, and where it turns to a warning and an alert."""

    label: str
    value: Callable[[Metrics], float | None]
    lo: float
    hi: float
    warn: float
    alert: float
    text: Callable[[float], str]


def _role(role: str, name: str) -> Callable[[Metrics], float | None]:
    def get(m: Metrics) -> float | None:
        rm = m.roles.get(role)
        return getattr(rm, name) if rm is not None else None

    return get


METERS = (
    Meter("heat", lambda m: m.heat, 0, 3, 1, 2, lambda v: heat_word(int(v)).upper()),
    Meter("cust. loud", _role("customer", "loudness_above_baseline_db"), 0, 15, 5, 9, lambda v: f"{v:+.1f} dB"),
    Meter("cust. pace", _role("customer", "pace_wpm"), 80, 260, 190, 220, lambda v: f"{v:.0f} wpm"),
    Meter("hostility", _role("customer", "hostility"), 0, 1, 0.3, 0.6, lambda v: f"{v:.2f}"),
    Meter("agent pace", _role("agent", "pace_wpm"), 80, 260, 190, 220, lambda v: f"{v:.0f} wpm"),
    Meter("agent talk", lambda m: m.talk_ratio, 0, 1, 0.65, 0.8, lambda v: f"{v:.0%}"),
)


def sparkline(values: list[float | None], width: int, lo: float, hi: float) -> str:
    """The history in `width` columns: each column the peak of its seconds (peaks are what matter)."""
    if width <= 0:
        return ""
    per_col = max(1, math.ceil(HISTORY_S / width))
    values = values[-width * per_col:]
    cols = []
    for i in range(0, len(values), per_col):
        seen = [v for v in values[i: i + per_col] if v is not None]
        if not seen:
            cols.append(" ")
            continue
        frac = (max(seen) - lo) / (hi - lo) if hi > lo else 0.0
        cols.append(SPARK[1 + round(max(0.0, min(1.0, frac)) * (len(SPARK) - 2))])
    return "".join(cols).rjust(width)  # now is always at the right edge


class Meters(Widget):
    """All the meter rows."""

    COMPONENT_CLASSES = {
        "meters--label", "meters--ok", "meters--warn", "meters--alert", "meters--spark", "meters--empty",
        "meters--ok-text", "meters--warn-text", "meters--alert-text",
    }
    DEFAULT_CSS = "Meters { height: 6; }"

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.metrics: Metrics | None = None
        self.history: list[Metrics] = []

    def update_metrics(self, metrics: Metrics | None, history: list[Metrics] | None) -> None:
        """New figures (either may be None: unchanged); one repaint."""
        if metrics is not None:
            self.metrics = metrics
        if history is not None:
            self.history = history
        self.refresh()

    def render(self) -> Text:
        width = self.size.width
        bar_w = 12 if width < 100 else 20
        spark_w = width - LABEL_W - VALUE_W - bar_w - 3
        text = Text(no_wrap=True, overflow="crop")
        for i, meter in enumerate(METERS):
            if i:
                text.append("\n")
            value = meter.value(self.metrics) if self.metrics is not None else None
            level = self._level(meter, value)
            style = self.get_component_rich_style(f"meters--{level}")
            text.append(f"{meter.label:<{LABEL_W}}", self.get_component_rich_style("meters--label"))
            shown = meter.text(value) if value is not None else "—"
            text.append(f"{shown:>{VALUE_W}} ", self.get_component_rich_style(f"meters--{level}-text"))
            frac = 0.0 if value is None else max(0.0, min(1.0, (value - meter.lo) / (meter.hi - meter.lo)))
            filled = round(frac * bar_w)
            text.append("█" * filled, style)
            text.append("░" * (bar_w - filled), self.get_component_rich_style("meters--empty"))
            history = [meter.value(m) for m in self.history]
            text.append("  " + sparkline(history, spark_w, meter.lo, meter.hi), self.get_component_rich_style("meters--spark"))
        return text

    @staticmethod
    def _level(meter: Meter, value: float | None) -> str:
        if value is None or value < meter.warn:
            return "ok"
        return "alert" if value >= meter.alert else "warn"
