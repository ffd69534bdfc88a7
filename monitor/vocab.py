"""Words every part of the monitor shares: the nudge kinds, the heat levels, and call-time formats.

Defined once here, so the coach, the agent's screen, the floor and QA can never disagree on a
name or on how a call time reads.
"""

from __future__ import annotations

# The nudge kinds, the core four (the de-escalation moves) first.
CORE_KINDS = ("slow_down", "acknowledge", "set_boundary", "call_supervisor")
KINDS = (*CORE_KINDS, "let_them_finish", "avoid_blame", "apologize_well", "keep_promises", "summarize")

# The call's heat, 0..3, in words.
HEAT_WORDS = ("calm", "tense", "heated", "critical")


def heat_word(heat: int | None) -> str:
    """The heat level as a word; "—" when unknown."""
    if heat is None:
        return "—"
    return HEAT_WORDS[max(0, min(3, heat))]


def mmss(seconds: float | None) -> str:
    """Whole seconds of call time: 62.4 -> '01:02'; an hour or more -> '1:02:03'; None -> '--:--'."""
    if seconds is None:
        return "--:--"
    hours, rest = divmod(int(max(0.0, seconds)), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def clock(seconds: float) -> str:
    """Call time to the tenth: 62.44 -> '01:02.4'."""
    minutes, sec = divmod(max(0.0, seconds), 60)
    return f"{int(minutes):02d}:{sec:04.1f}"
