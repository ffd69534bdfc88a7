"""The archive in the terminal: the call list, search hits, and one call's scorecard and timeline.

Everything fits in 80 columns: long values are cut with an ellipsis, never wrapped mid-table.
"""

from __future__ import annotations

import csv
import textwrap
from pathlib import PurePath
from typing import TextIO

from ..vocab import clock, mmss
from .queries import CallDetail, CallInfo
from .scorecard import HEAT_NAMES, KINDS, Scorecard
from .search import Hit

WIDTH = 80


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


UNKNOWN = "—"  # a figure that cannot be known (never shown as 0)


def _pct(value: float | None) -> str:
    return UNKNOWN if value is None else f"{100 * value:.0f}%"


def _num(value: float | None, fmt: str = ".0f") -> str:
    return UNKNOWN if value is None else format(value, fmt)


def heat_name(heat: int | None) -> str:
    """0..3 with its word."""
    if heat is None:
        return "-"
    return f"{heat} {HEAT_NAMES[heat]}" if 0 <= heat < len(HEAT_NAMES) else str(heat)


def source_name(source: str | None) -> str:
    """The file name of a call's source (live calls: as recorded)."""
    if not source:
        return "-"
    return PurePath(source.removeprefix("file:")).name


def print_list(calls: list[CallInfo], out: TextIO) -> None:
    """A table of calls, one line each; the source's file name is never cut (QA needs it to find the recording)."""
    out.write(f"{'CALL':<10} {'DATE (UTC)':<16} {'AGENT':<8} {'DUR':>5} {'HEAT':>4} {'NUDGES':>6} {'FOLLOW':>6}  SOURCE\n")
    for c in calls:
        followed = f"{c.nudges_followed}/{c.nudges_raised}" if c.nudges_raised else "-"
        out.write(
            f"{c.call_id:<10} {c.call_date[:16].replace('T', ' '):<16} {_cut(c.agent_id or '-', 8):<8} "
            f"{mmss(c.duration):>5} {'-' if c.peak_heat is None else c.peak_heat:>4} "
            f"{'-' if c.nudges_raised is None else c.nudges_raised:>6} {followed:>6}  "
            + ("" if c.complete else "(cut off) ") + source_name(c.source) + "\n"
        )
    out.write(f"{len(calls)} call(s)\n")


def print_hits(hits: list[Hit], out: TextIO) -> None:
    """Search hits: call, call time, role, the snippet with the match marked."""
    for h in hits:
        head = f"{h.call_id}  {mmss(h.start)}  {h.role:<8} "
        out.write(head + _cut(" ".join(h.snippet.split()), WIDTH - len(head)) + "\n")
    out.write(f"{len(hits)} match(es)\n")


def scorecard_lines(sc: Scorecard) -> list[str]:
    """The scorecard as short lines."""
    lines = [
        f"duration   {mmss(sc.duration_s)}    talk ratio {_pct(sc.talk_ratio)} agent    silence {_pct(sc.silence_share)}"
        f"    interruptions {sc.interruptions}",
        f"pace       agent {_num(sc.agent_pace_wpm)} wpm    customer {_num(sc.customer_pace_wpm)} wpm",
        f"heat       peak {heat_name(sc.peak_heat)}    mean {_num(sc.mean_heat, '.2f')}",
    ]
    kinds = ", ".join(f"{k} {sc.nudges_by_kind[k]}" for k in KINDS if k in sc.nudges_by_kind)
    extra = ", ".join(f"{k} {v}" for k, v in sc.nudges_by_kind.items() if k not in KINDS)
    kinds = ", ".join(x for x in (kinds, extra) if x)
    lines.append(f"nudges     {sc.nudges_raised}" + (f": {kinds}" if kinds else ""))
    if sc.nudges_raised:
        follow = f" after {sc.mean_follow_s:.1f} s on average" if sc.mean_follow_s is not None else ""
        lines.append(f"followed   {sc.nudges_followed} of {sc.nudges_raised - sc.nudges_dismissed} "
                     f"({_pct(sc.followed_rate)}){follow}" + (f", {sc.nudges_dismissed} dismissed" if sc.nudges_dismissed else ""))
        if sc.heat_before_mean is not None:
            lines.append(f"helped?    heat before the trigger {sc.heat_before_mean:.2f}, after the move "
                         f"{sc.heat_after_mean:.2f}")
        for n in sc.nudges:
            if n.followed:
                how = f"followed after {n.follow_s:.1f} s" if n.follow_s is not None else "followed"
            else:
                how = n.how or "still up at the end"
            around = ""
            if n.verdict is not None:
                around = f", heat {n.heat_before:.1f} -> {n.heat_after:.1f} ({n.verdict})"
            lines.append(_cut(f"  {clock(n.t)}  {n.kind:<15} {how}{around}", WIDTH))
            if n.agent_said:
                lines.append(_cut(f"             agent: \"{n.agent_said}\"", WIDTH))
    lines += talk_lines(sc)
    return lines


def talk_lines(sc: Scorecard) -> list[str]:
    """Talk, silence and overlap per role, and heat and sentiment per quarter."""
    lines = []
    if sc.talk is not None and sc.duration_s > 0:
        t, d = sc.talk, sc.duration_s
        lines.append(_cut(f"talk       agent {mmss(t.agent_s)} ({_pct(t.agent_s / d)})  customer {mmss(t.customer_s)} "
                          f"({_pct(t.customer_s / d)})  overlap {mmss(t.overlap_s)}  silence {mmss(t.silence_s)}", WIDTH))
        lines.append(f"           agent interrupted the customer {t.agent_interruptions} time(s)")
    if sc.quarters:
        heat = " ".join(_num(q.heat, ".1f") for q in sc.quarters)
        mood = " ".join(q.sentiment or UNKNOWN for q in sc.quarters)
        lines.append(_cut(f"quarters   heat {heat}   customer {mood}", WIDTH))
    return lines


def print_show(detail: CallDetail, out: TextIO, transcript: bool = False) -> None:
    """One call: who and when, the scorecard, then a compact timeline."""
    info = detail.info
    head = f"call {info.call_id}  {info.call_date[:16].replace('T', ' ')} UTC  agent {info.agent_id or '-'}"
    out.write(_cut(head, WIDTH) + "\n")
    out.write(_cut(f"source {source_name(info.source)}  model {info.model or '-'}", WIDTH) + "\n")
    if not info.complete:
        out.write("(cut off: the call did not reach its end; figures cover what was archived)\n")
    if info.error:
        out.write(_cut(f"source error: {info.error}", WIDTH) + "\n")
    out.write("\n")
    for line in scorecard_lines(detail.scorecard):
        out.write(line + "\n")
    out.write("\ntimeline\n")
    for t, text in timeline(detail, transcript):
        prefix = f"  {clock(t)}  "
        wrapped = textwrap.wrap(text, WIDTH - len(prefix), subsequent_indent="  ") or [""]
        out.write(prefix + wrapped[0] + "\n")
        for more in wrapped[1:]:
            out.write(" " * len(prefix) + more + "\n")


def timeline(detail: CallDetail, transcript: bool = False) -> list[tuple[float, str]]:
    """(call time, text) of what happened: heat changes, nudges, clears, marks; finals when asked."""
    items: list[tuple[float, int, str]] = [(0.0, 0, "call started")]
    last = None
    for p in detail.points:
        if p.heat is not None and p.heat != last:
            if last is not None:
                items.append((p.t, 1, f"heat {last} -> {heat_name(p.heat)}"))
            elif p.heat > 0:
                items.append((p.t, 1, f"heat {heat_name(p.heat)}"))
            last = p.heat
    for n in detail.nudges:
        r = n.record
        items.append((r.t, 2, f">>> {r.kind} ({r.severity}): {n.reason}"))
        if r.how is not None and r.cleared_t is not None:
            follow = f", followed after {r.follow_s:.1f} s" if r.followed and r.follow_s is not None else ""
            items.append((r.cleared_t, 3, f"<<< {r.kind} {r.how}{follow}"))
    for m in detail.marks:
        label = "bookmark" if m.kind == "bookmark" else "supervisor requested"
        items.append((m.t, 2, f"*** {label}" + (f": {m.note}" if m.note else "")))
    if transcript:
        for s in detail.segments:
            items.append((s.start, 0, f"{s.role}: {s.text}"))
    end = detail.info.duration if detail.info.duration is not None else (detail.points[-1].t if detail.points else 0.0)
    items.append((end, 9, "call ended" if detail.info.complete else "archive ends (cut off)"))
    return [(t, text) for t, _, text in sorted(items, key=lambda x: (x[0], x[1]))]


def csv_columns() -> list[str]:
    """The export's header."""
    sample = Scorecard(duration_s=0.0, talk_ratio=None, agent_pace_wpm=None, customer_pace_wpm=None, interruptions=0,
                silence_share=None, peak_heat=None, mean_heat=None)
    return ["call_id", "call_date", "agent_id", "source", "complete", *sample.flat()]


def write_csv(details: list[CallDetail], out: TextIO) -> None:
    """One row per call: who, when, which file, then the scorecard's figures."""
    writer = csv.DictWriter(out, fieldnames=csv_columns(), lineterminator="\n")
    writer.writeheader()
    for d in details:
        info = d.info
        writer.writerow({
            "call_id": info.call_id, "call_date": info.call_date, "agent_id": info.agent_id, "source": info.source,
            "complete": int(info.complete), **d.scorecard.flat(),
        })
