"""HTML reports: one call (player, scorecard, analytics, timeline plot, transcript) or a batch summary.

Each report is one self-contained file: the plot is a PNG and the recording an MP3, both embedded
as base64, the styles and the few lines of script are inline, nothing is fetched. matplotlib is
imported only here, with the Agg backend (no display). All text in the archive is already redacted
(and HTML-escaped here); the spans redaction took out of the text are bleeped in the audio too.
Every time in the transcript and the nudges table jumps the player to that moment.
"""

from __future__ import annotations

import base64
import html
import io
import re
from datetime import UTC, date, datetime
from pathlib import Path

from .audio import report_audio
from .queries import CallDetail, Segment
from .scorecard import HEAT_NAMES, KINDS, Scorecard
from .text import UNKNOWN, heat_name, mmss, source_name

JUMP = """
<script>
// Every time stamp plays the recording from that moment.
document.addEventListener("click", (e) => {
  const a = e.target.closest("[data-t]"); const player = document.getElementById("player");
  if (!a || !player) return;
  e.preventDefault(); player.currentTime = parseFloat(a.dataset.t); player.play();
});
</script>
"""

KIND_COLOURS = {
    "slow_down": "#1f77b4", "acknowledge": "#2ca02c", "set_boundary": "#d62728", "call_supervisor": "#9467bd",
    "let_them_finish": "#8c564b", "avoid_blame": "#e377c2", "apologize_well": "#7f7f7f", "keep_promises": "#bcbd22",
    "summarize": "#17becf",
}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.4em 0; }
td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #ddd; vertical-align: top; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
td.nw, code { white-space: nowrap; }
audio { width: 100%; } a.t { text-decoration: none; } a.t:hover { text-decoration: underline; }
.legend span { display: inline-block; margin-right: 1.2em; }
.sw { display: inline-block; width: 1em; height: 0.9em; vertical-align: middle; margin-right: 0.3em; border: 1px solid #ccc; }
img.plot { width: 100%; border: 1px solid #ddd; }
.seg { margin: 3px 0; padding: 2px 6px; border-left: 4px solid #ccc; }
.seg.agent { border-color: #1f77b4; } .seg.customer { border-color: #ff7f0e; }
.seg.hot { background: #fff1ec; }
.t { color: #888; font-family: monospace; margin-right: 0.6em; } .role { font-weight: 600; margin-right: 0.4em; }
mark { background: #ffd54f; }
.nudge { margin: 6px 0 6px 2em; padding: 4px 8px; background: #eef4ff; border: 1px solid #b5c9f0; }
.clear { margin: 2px 0 2px 2em; color: #555; font-size: 0.9em; }
.markline { margin: 4px 0 4px 2em; color: #7a4; font-weight: 600; }
"""


def _pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:  # noqa: ANN001 - a matplotlib Figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def call_plot(detail: CallDetail) -> str:
    """The call's timeline as a base64 PNG: loudness above baseline, pace, hostility, heat, nudge markers."""
    plt = _pyplot()
    pts = detail.points
    t = [p.t for p in pts]

    def series(attr: str) -> list[float]:
        return [float("nan") if getattr(p, attr) is None else getattr(p, attr) for p in pts]

    fig, axes = plt.subplots(4, 1, sharex=True, figsize=(11, 7.5), layout="constrained")
    loud, pace, host, heat = axes
    loud.plot(t, series("customer_loud_db"), color="#ff7f0e", label="customer")
    loud.plot(t, series("agent_loud_db"), color="#1f77b4", alpha=0.6, label="agent")
    loud.axhline(0, color="#999", linewidth=0.8)
    loud.set_ylabel("loudness above\nbaseline (dB)")
    pace.plot(t, series("customer_pace_wpm"), color="#ff7f0e", label="customer")
    pace.plot(t, series("agent_pace_wpm"), color="#1f77b4", label="agent")
    pace.set_ylabel("pace (wpm)")
    host.fill_between(t, series("hostility"), step="post", color="#d62728", alpha=0.35, linewidth=0)
    host.plot(t, series("hostility"), color="#d62728", drawstyle="steps-post")
    host.set_ylim(0, 1.05)
    host.set_ylabel("customer\nhostility")
    heat.plot(t, series("heat"), color="#b22222", drawstyle="steps-post", linewidth=2)
    heat.set_ylim(-0.2, 3.3)
    heat.set_yticks(range(4), HEAT_NAMES)
    heat.set_ylabel("heat")
    heat.set_xlabel("call time (s)")
    for ax in (loud, pace):
        if any(not _nan(v) for line in ax.get_lines() for v in line.get_ydata()):
            ax.legend(loc="upper left", fontsize=8)
    seen: set[str] = set()
    for n in detail.nudges:
        r = n.record
        colour = KIND_COLOURS.get(r.kind, "#333")
        for ax in axes:
            ax.axvline(r.t, color=colour, linestyle="--", linewidth=1.2)
        heat.annotate(r.kind, (r.t, 3.25), rotation=90, fontsize=7, color=colour, va="top", ha="right")
        seen.add(r.kind)
    for m in detail.marks:
        for ax in axes:
            ax.axvline(m.t, color="#7a4", linestyle=":", linewidth=1.2)
    end = detail.scorecard.duration_s or (t[-1] if t else 1.0)
    heat.set_xlim(0, max(end, 1.0))
    for ax in axes:
        ax.grid(alpha=0.25)
    fig.suptitle(f"{detail.info.call_id} - {source_name(detail.info.source)}", fontsize=10)
    return _png(fig)


def _nan(v: float) -> bool:
    return v != v


def _highlight(text: str, quotes: list[str]) -> str:
    """Escape the text and mark the nudges' quoted words in it."""
    out = html.escape(text)
    for q in sorted({q for q in quotes if q and len(q) >= 3}, key=len, reverse=True):
        pattern = re.compile(re.escape(html.escape(q)), re.IGNORECASE)
        out = pattern.sub(lambda m: f"<mark>{m.group(0)}</mark>", out)
    return out


def _hot(detail: CallDetail, seg: Segment) -> bool:
    """Whether the call was heated (2+) while this was said."""
    return any(p.heat is not None and p.heat >= 2 and seg.start <= p.t <= seg.end + 1.0 for p in detail.points)


def _transcript_html(detail: CallDetail) -> str:
    quotes = [str(n.evidence.get("quote", "")) for n in detail.nudges]
    items: list[tuple[float, int, str]] = []
    for s in detail.segments:
        cls = f"seg {html.escape(s.role)}" + (" hot" if _hot(detail, s) else "")
        items.append((s.start, 0, (
            f'<div class="{cls}">{_at(s.start)}<span class="role">{html.escape(s.role)}</span>'
            f"{_highlight(s.text, quotes)}</div>"
        )))
    for n in detail.nudges:
        r = n.record
        items.append((r.t, 1, (
            f'<div class="nudge">{_at(r.t)}<b>nudge {html.escape(r.kind)}</b> '
            f"({html.escape(r.severity)}): {html.escape(n.message)}<br><small>why: {html.escape(n.reason)}</small></div>"
        )))
        if r.how is not None and r.cleared_t is not None:
            follow = f", followed after {r.follow_s:.1f} s" if r.followed and r.follow_s is not None else ""
            items.append((r.cleared_t, 2, (
                f'<div class="clear">{_at(r.cleared_t)}{html.escape(r.kind)} '
                f"{html.escape(r.how)}{follow}</div>"
            )))
    for m in detail.marks:
        label = "bookmark" if m.kind == "bookmark" else "supervisor requested"
        note = f": {html.escape(m.note)}" if m.note else ""
        items.append((m.t, 1, f'<div class="markline">{_at(m.t)}{label}{note}</div>'))
    return "\n".join(x for _, _, x in sorted(items, key=lambda i: (i[0], i[1])))


def _at(t: float) -> str:
    """A call time that jumps the player there."""
    return f'<a class="t" href="#" data-t="{t:.2f}">{mmss(t)}</a>'


def _pct(value: float | None) -> str:
    return UNKNOWN if value is None else f"{100 * value:.0f}%"


def _f(value: float | None, fmt: str = ".2f") -> str:
    return UNKNOWN if value is None else format(value, fmt)


def _table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table; the cells are HTML already."""
    out = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(rows_cell for rows_cell in row) + "</tr>" for row in rows]
    return "\n".join([*out, "</table>"])


def _td(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>"


def scorecard_table(sc: Scorecard) -> str:
    """The scorecard as a two-column table."""
    kinds = ", ".join(f"{k} {v}" for k, v in sc.nudges_by_kind.items()) or "none"
    rows = [
        ("duration", mmss(sc.duration_s)), ("talk ratio (agent's share of speech)", _pct(sc.talk_ratio)),
        ("silence", _pct(sc.silence_share)), ("agent interruptions", str(sc.interruptions)),
        ("pace", f"agent {_f(sc.agent_pace_wpm, '.0f')} wpm, customer {_f(sc.customer_pace_wpm, '.0f')} wpm"),
        ("peak heat", heat_name(sc.peak_heat)), ("mean heat", _f(sc.mean_heat)),
        ("nudges", f"{sc.nudges_raised} ({html.escape(kinds)})"),
        ("followed", f"{sc.nudges_followed} of {sc.nudges_raised - sc.nudges_dismissed} ({_pct(sc.followed_rate)})"
                     + (f", after {sc.mean_follow_s:.1f} s on average" if sc.mean_follow_s is not None else "")
                     + (f", {sc.nudges_dismissed} dismissed" if sc.nudges_dismissed else "")),
        ("did it help (followed nudges)", f"heat before the trigger {_f(sc.heat_before_mean)}, after the agent's move "
                                          f"{_f(sc.heat_after_mean)}"),
    ]
    return _table(["figure", "value"], [[_td(k, "nw"), _td(v)] for k, v in rows])


def analytics_html(sc: Scorecard) -> str:
    """Quarters (heat, sentiment), talk per role, and each nudge with what the agent did and whether it helped."""
    parts = []
    if sc.quarters:
        rows = [[_td(f"Q{i}", "nw"), _td(f"{mmss(q.start)}–{mmss(q.end)}", "nw"), _td(_f(q.heat), "n"),
                 _td(_f(q.hostility), "n"), _td(q.sentiment or UNKNOWN)] for i, q in enumerate(sc.quarters, 1)]
        parts.append("<h2>Heat and customer sentiment per quarter</h2>\n" + _table(
            ["quarter", "call time", "mean heat (0–3)", "customer hostility (0–1)", "customer sentiment"], rows))
    if sc.talk is not None:
        t, d = sc.talk, sc.duration_s or 1.0
        rows = [
            [_td("agent"), _td(mmss(t.agent_s), "n"), _td(_pct(t.agent_s / d), "n"), _td(str(t.agent_interruptions), "n")],
            [_td("customer"), _td(mmss(t.customer_s), "n"), _td(_pct(t.customer_s / d), "n"), _td(UNKNOWN, "n")],
            [_td("both at once (overlap)"), _td(mmss(t.overlap_s), "n"), _td(_pct(t.overlap_s / d), "n"), _td("")],
            [_td("nobody (silence)"), _td(mmss(t.silence_s), "n"), _td(_pct(t.silence_s / d), "n"), _td("")],
        ]
        parts.append("<h2>Talk, silence, overlap and interruptions</h2>\n" + _table(
            ["who", "time", "share of the call", "interruptions (started while the other spoke)"], rows))
    if sc.nudges:
        rows = []
        for n in sc.nudges:
            if n.followed:
                did = "followed" + (f" after {n.follow_s:.1f} s" if n.follow_s is not None else "")
            else:
                did = html.escape(n.how or "still up at the end")
            said = f"&ldquo;{html.escape(n.agent_said)}&rdquo;" if n.agent_said else UNKNOWN
            rows.append([_td(_at(n.t), "nw"), _td(html.escape(n.kind), "nw"), _td(did), _td(said),
                         _td(_f(n.heat_before), "n"), _td(_f(n.heat_peak, ".0f"), "n"), _td(_f(n.heat_after), "n"),
                         _td(n.verdict or ("not followed" if not n.followed else UNKNOWN))])
        parts.append("<h2>Nudges: what the agent did, and did it help</h2>\n" + _table(
            ["time", "nudge", "the agent", "the agent said", "heat before the trigger (30 s)", "peak until the move",
             "heat after the move (30 s)", "did it help"], rows))
    return "\n".join(parts)


LEGEND = (
    '<p class="legend"><span><i class="sw" style="border-left:4px solid #1f77b4"></i>agent</span>'
    '<span><i class="sw" style="border-left:4px solid #ff7f0e"></i>customer</span>'
    '<span><i class="sw" style="background:#fff1ec"></i>said while the call was heated (heat 2+)</span>'
    '<span><mark>words</mark> quoted by a nudge</span>'
    '<span><i class="sw" style="background:#eef4ff;border-color:#b5c9f0"></i>a nudge, and how it ended</span>'
    '<span style="color:#7a4;font-weight:600">bookmark / supervisor request</span>'
    "<span>[card], [phone]&hellip; redacted (bleeped in the audio)</span></p>"
)


def _page(title: str, body: str) -> str:
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n{body}\n"
        f"<p><small>callmon QA report, made {made}. Transcripts are redacted.</small></p>\n</body></html>\n"
    )


def call_report(detail: CallDetail) -> str:
    """One call's report as one HTML document."""
    info = detail.info
    meta = (
        f"<p>{html.escape(info.call_date.replace('T', ' ').rstrip('Z'))} UTC · agent {html.escape(info.agent_id or '-')} · "
        f"source {html.escape(source_name(info.source))} · model {html.escape(info.model or '-')}"
        + ("" if info.complete else " · <b>cut off</b>") + "</p>"
    )
    audio = report_audio(info.source, [s.words for s in detail.segments])
    if audio is None:
        player = f"<p><small>No player: the recording {html.escape(source_name(info.source))} is not readable here.</small></p>"
    else:
        bleeps = f"; {len(audio.bleeped)} redacted span(s) bleeped" if audio.bleeped else ""
        player = (f'<audio id="player" controls preload="metadata" src="{audio.data_uri}"></audio>\n'
                  f"<p><small>Click any time to play from there{bleeps}.</small></p>")
    body = (
        f"{meta}\n{player}\n<h2>Scorecard</h2>\n{scorecard_table(detail.scorecard)}\n{analytics_html(detail.scorecard)}\n"
        f"<h2>Timeline</h2>\n<img class=\"plot\" alt=\"timeline: loudness, pace, hostility, heat and nudges\" "
        f"src=\"data:image/png;base64,{call_plot(detail)}\">\n"
        f"<h2>Transcript</h2>\n{LEGEND}\n{_transcript_html(detail)}\n{JUMP}"
    )
    return _page(f"Call {info.call_id}", body)


def summary_plot(details: list[CallDetail]) -> str:
    """Two panels as a base64 PNG: calls per peak heat, and nudges by kind (followed or not)."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    counts = [sum(1 for d in details if d.scorecard.peak_heat == h) for h in range(4)]
    left.bar(range(4), counts, color=["#4caf50", "#ffc107", "#ff7043", "#b71c1c"])
    left.set_xticks(range(4), [f"{h} {HEAT_NAMES[h]}" for h in range(4)])
    left.set_ylabel("calls")
    left.yaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_title("peak heat")
    kinds = [k for k in KINDS if any(d.scorecard.nudges_by_kind.get(k) for d in details)]
    followed = [sum(1 for d in details for n in d.scorecard.nudges if n.kind == k and n.followed) for k in kinds]
    other = [sum(d.scorecard.nudges_by_kind.get(k, 0) for d in details) - f for k, f in zip(kinds, followed, strict=True)]
    y = list(range(len(kinds)))
    right.barh(y, followed, color="#2e7d32", label="followed")
    right.barh(y, other, left=followed, color="#bdbdbd", label="not followed")
    right.set_yticks(y, kinds)
    right.invert_yaxis()
    right.set_xlabel("nudges")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_title("nudges by kind")
    if kinds:
        right.legend(fontsize=8)
    else:
        right.text(0.5, 0.5, "no nudges", ha="center", va="center", transform=right.transAxes)
    return _png(fig)


def _trend_rows(groups: dict[str, list[CallDetail]]) -> list[list[str]]:
    rows = []
    for name, calls in groups.items():
        raised = sum(d.scorecard.nudges_raised for d in calls)
        followed = sum(d.scorecard.nudges_followed for d in calls)
        judged = sum(d.scorecard.nudges_raised - d.scorecard.nudges_dismissed for d in calls)
        peaks = [d.scorecard.peak_heat for d in calls if d.scorecard.peak_heat is not None]
        means = [d.scorecard.mean_heat for d in calls if d.scorecard.mean_heat is not None]
        hot = sum(1 for p in peaks if p >= 2)
        rows.append([
            _td(html.escape(name), "nw"), _td(str(len(calls)), "n"),
            _td(f"{sum(d.scorecard.duration_s for d in calls) / 3600:.2f}", "n"),
            _td(_f(sum(means) / len(means) if means else None), "n"), _td(str(hot), "n"),
            _td(str(raised), "n"), _td(str(followed), "n"), _td(_pct(followed / judged if judged else None), "n"),
        ])
    return rows


TREND_HEAD = ["", "calls", "hours", "mean heat", "calls heated (2+)", "nudges raised", "followed", "followed rate"]


def _week(call_date: str) -> str:
    """The ISO week of a call's date, as 2026-W47 (from Monday YYYY-MM-DD)."""
    day = date.fromisoformat(call_date[:10])
    year, week, weekday = day.isocalendar()
    monday = date.fromordinal(day.toordinal() - weekday + 1)
    return f"{year}-W{week:02d} (from {monday.isoformat()})"


def call_link(call_id: str) -> str:
    """The file name each call's report has next to the summary (`qa report --summary --calls` writes them)."""
    return f"{call_id}.html"


def summary_report(details: list[CallDetail], filters_text: str) -> str:
    """A batch's report: trends per agent and per week, then the calls ranked by peak heat, each linking to its report."""
    ranked = sorted(details, key=lambda d: (-(d.scorecard.peak_heat or 0), -d.scorecard.nudges_raised, d.info.call_date))
    rows = []
    for d in ranked:
        sc = d.scorecard
        kinds = "<br>".join(f"{html.escape(k)}&nbsp;{v}" for k, v in sc.nudges_by_kind.items())
        cid = html.escape(d.info.call_id)
        rows.append([
            _td(f'<a href="{html.escape(call_link(d.info.call_id))}"><code>{cid}</code></a>', "nw"),
            _td(html.escape(d.info.call_date[:16].replace("T", " ")), "nw"), _td(html.escape(d.info.agent_id or "-"), "nw"),
            _td(html.escape(source_name(d.info.source))), _td(mmss(sc.duration_s), "n"), _td(heat_name(sc.peak_heat), "nw"),
            _td(_f(sc.mean_heat), "n"), _td(str(sc.nudges_raised), "n"), _td(kinds or "-"),
            _td(_pct(sc.followed_rate), "n"), _td(_pct(sc.talk_ratio), "n"),
        ])
    by_agent: dict[str, list[CallDetail]] = {}
    for d in sorted(details, key=lambda d: d.info.agent_id or ""):
        by_agent.setdefault(d.info.agent_id or "-", []).append(d)
    by_week: dict[str, list[CallDetail]] = {}
    for d in sorted(details, key=lambda d: d.info.call_date):
        by_week.setdefault(_week(d.info.call_date), []).append(d)
    total = sum(d.scorecard.nudges_raised for d in details)
    followed = sum(d.scorecard.nudges_followed for d in details)
    hours = sum(d.scorecard.duration_s for d in details) / 3600
    body = (
        f"<p>{len(details)} call(s), {hours:.2f} h of audio, {total} nudge(s), {followed} followed. "
        f"Calls: {html.escape(filters_text)}.</p>\n"
        "<img class=\"plot\" alt=\"peak heat of the calls and nudges by kind\" "
        f"src=\"data:image/png;base64,{summary_plot(details)}\">\n"
        "<h2>Per agent</h2>\n" + _table(["agent", *TREND_HEAD[1:]], _trend_rows(by_agent)) + "\n"
        "<h2>Per week</h2>\n" + _table(["week", *TREND_HEAD[1:]], _trend_rows(by_week)) + "\n"
        "<h2>Calls by peak heat</h2>\n<p><small>Each call id opens its report (written next to this file by "
        "<code>callmon qa report --summary --calls</code>).</small></p>\n"
        + _table(["call", "date (UTC)", "agent", "source", "duration", "peak heat", "mean heat", "nudges", "kinds",
                  "followed", "talk ratio"], rows) + "\n"
    )
    return _page("Call archive summary", body)


def write(path: str | Path, document: str) -> Path:
    """Write a report; the folder must exist."""
    out = Path(path)
    out.write_text(document, encoding="utf-8")
    return out
