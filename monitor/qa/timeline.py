"""The metrics timeline, downsampled to one point per second of call time.

The pipeline sends a `metrics` event every block (10 a second). The archive keeps one point per
second, but not by dropping the others: each point aggregates its second (the highest heat, the
mean heat, the loudest moment, the seconds each side spoke), so the peak heat, the talk time and
the silence share computed from the archive are those of the full-rate stream.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..events import Metrics


@dataclass(frozen=True)
class MetricPoint:
    """One second of the call: `t` is the call time of the last block in it."""

    t: float
    heat: int | None  # the highest heat in the second
    heat_mean: float | None
    customer_loud_db: float | None  # customer loudness above their baseline (dB), the highest in the second
    agent_loud_db: float | None
    customer_pace_wpm: float | None  # the last value in the second
    agent_pace_wpm: float | None
    hostility: float | None  # the customer's, the highest in the second
    agent_speaking_s: float
    customer_speaking_s: float
    overlap_s: float
    quiet_s: float  # time in the second when nobody spoke
    interruptions: int | None  # cumulative since the call began
    talk_ratio: float | None


class Downsampler:
    """Feed it every `metrics` event; it returns a point each time a second of call time is complete."""

    def __init__(self, step_s: float = 1.0) -> None:
        self.step_s = step_s
        self._bucket: int | None = None
        self._items: list[tuple[Metrics, float]] = []  # (event, seconds of audio it covers)
        self._last_t = 0.0

    def push(self, m: Metrics) -> MetricPoint | None:
        """Add one event; the previous second's point when this event starts a new second."""
        dt = max(0.0, m.t - self._last_t)
        self._last_t = m.t
        # A block ending exactly on a second belongs to that second (t = 1.0 closes 0..1).
        bucket = int(max(0.0, m.t - 1e-6) // self.step_s)
        done = None
        if self._bucket is not None and bucket != self._bucket:
            done = self.flush()
        self._bucket = bucket
        self._items.append((m, dt))
        return done

    def flush(self) -> MetricPoint | None:
        """The point of the second in progress (at the end of the call), or None when empty."""
        if not self._items:
            return None
        items, self._items = self._items, []
        return _aggregate(items)


def _max(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _last(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return present[-1] if present else None


def _aggregate(items: list[tuple[Metrics, float]]) -> MetricPoint:
    events = [m for m, _ in items]
    heats = [m.heat for m in events if m.heat is not None]

    def role(m: Metrics, name: str):  # noqa: ANN202 - RoleMetrics or None
        return m.roles.get(name)

    def field(name: str, attr: str) -> list[float | None]:
        return [getattr(role(m, name), attr) if role(m, name) is not None else None for m in events]

    def speaking_s(name: str) -> float:
        return sum(dt for m, dt in items if role(m, name) is not None and role(m, name).speaking)

    max_heat = _max(heats)
    return MetricPoint(
        t=events[-1].t,
        heat=int(max_heat) if max_heat is not None else None,
        heat_mean=round(sum(heats) / len(heats), 3) if heats else None,
        customer_loud_db=_max(field("customer", "loudness_above_baseline_db")),
        agent_loud_db=_max(field("agent", "loudness_above_baseline_db")),
        customer_pace_wpm=_last(field("customer", "pace_wpm")),
        agent_pace_wpm=_last(field("agent", "pace_wpm")),
        hostility=_max(field("customer", "hostility")),
        agent_speaking_s=round(speaking_s("agent"), 3),
        customer_speaking_s=round(speaking_s("customer"), 3),
        overlap_s=round(sum(dt for m, dt in items if m.overlap), 3),
        quiet_s=round(sum(dt for m, dt in items if not any(r.speaking for r in m.roles.values())), 3),
        interruptions=_last([m.interruptions for m in events]),  # type: ignore[arg-type]
        talk_ratio=_last([m.talk_ratio for m in events]),
    )
