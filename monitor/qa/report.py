"""HTML reports: one call (timeline plot, scorecard, transcript) or a batch summary.

Each report is one self-contained file: the plot is a PNG embedded as base64, the styles are
inline, nothing is fetched. matplotlib is imported only here, with the Agg backend (no display).
All text in the archive is already redacted; it is HTML-escaped here.
"""

from __future__ import annotations

import base64
import html
import io
import re
from datetime import UTC, datetime
from pathlib import Path

from ..vocab import HEAT_WORDS as HEAT_NAMES
from ..vocab import KINDS
from .queries import CallDetail, Segment
from .text import heat_name, mmss, scorecard_lines, source_name

KIND_COLOURS = {
    "slow_down": "#1f77b4", "acknowledge": "#2ca02c", "set_boundary": "#d62728", "call_supervisor": "#9467bd",
    "let_them_finish": "#8c564b", "avoid_blame": "#e377c2", "apologize_well": "#7f7f7f", "keep_promises": "#bcbd22",
    "summarize": "#17becf",
}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: left; border-bottom: 1px solid #ddd; }
th { background: #f3f3f3; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre.card { background: #f8f8f8; padding: 0.8em; }
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
            f'<div class="{cls}"><span class="t">{mmss(s.start)}</span><span class="role">{html.escape(s.role)}</span>'
            f"{_highlight(s.text, quotes)}</div>"
        )))
    for n in detail.nudges:
        r = n.record
        items.append((r.t, 1, (
            f'<div class="nudge"><span class="t">{mmss(r.t)}</span><b>nudge {html.escape(r.kind)}</b> '
            f"({html.escape(r.severity)}): {html.escape(n.message)}<br><small>why: {html.escape(n.reason)}</small></div>"
        )))
        if r.how is not None and r.cleared_t is not None:
            follow = f", followed after {r.follow_s:.1f} s" if r.followed and r.follow_s is not None else ""
            items.append((r.cleared_t, 2, (
                f'<div class="clear"><span class="t">{mmss(r.cleared_t)}</span>{html.escape(r.kind)} '
                f"{html.escape(r.how)}{follow}</div>"
            )))
    for m in detail.marks:
        label = "bookmark" if m.kind == "bookmark" else "supervisor requested"
        note = f": {html.escape(m.note)}" if m.note else ""
        items.append((m.t, 1, f'<div class="markline"><span class="t">{mmss(m.t)}</span>{label}{note}</div>'))
    return "\n".join(x for _, _, x in sorted(items, key=lambda i: (i[0], i[1])))


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
    card = html.escape("\n".join(scorecard_lines(detail.scorecard)))
    body = (
        f"{meta}\n<h2>Scorecard</h2>\n<pre class=\"card\">{card}</pre>\n"
        f"<h2>Timeline</h2>\n<img class=\"plot\" alt=\"timeline: loudness, pace, hostility, heat and nudges\" "
        f"src=\"data:image/png;base64,{call_plot(detail)}\">\n"
        f"<h2>Transcript</h2>\n{_transcript_html(detail)}\n"
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


def summary_report(details: list[CallDetail], filters_text: str) -> str:
    """A batch's report: calls ranked by peak heat, with nudges and followed rate, and the plots."""
    ranked = sorted(details, key=lambda d: (-(d.scorecard.peak_heat or 0), -d.scorecard.nudges_raised, d.info.call_date))
    rows = []
    for d in ranked:
        sc = d.scorecard
        kinds = ", ".join(f"{k} {v}" for k, v in sc.nudges_by_kind.items())
        rate = "-" if sc.followed_rate is None else f"{100 * sc.followed_rate:.0f}%"
        rows.append(
            f"<tr><td><code>{html.escape(d.info.call_id)}</code></td><td>{html.escape(d.info.call_date[:16].replace('T', ' '))}"
            f"</td><td>{html.escape(d.info.agent_id or '-')}</td><td>{html.escape(source_name(d.info.source))}</td>"
            f"<td class=\"n\">{mmss(sc.duration_s)}</td><td>{heat_name(sc.peak_heat)}</td>"
            f"<td class=\"n\">{'-' if sc.mean_heat is None else f'{sc.mean_heat:.2f}'}</td>"
            f"<td class=\"n\">{sc.nudges_raised}</td><td>{html.escape(kinds) or '-'}</td><td class=\"n\">{rate}</td></tr>"
        )
    total = sum(d.scorecard.nudges_raised for d in details)
    followed = sum(d.scorecard.nudges_followed for d in details)
    hours = sum(d.scorecard.duration_s for d in details) / 3600
    body = (
        f"<p>{len(details)} call(s), {hours:.2f} h of audio, {total} nudge(s), {followed} followed. "
        f"Calls: {html.escape(filters_text)}.</p>\n"
        "<img class=\"plot\" alt=\"peak heat of the calls and nudges by kind\" "
        f"src=\"data:image/png;base64,{summary_plot(details)}\">\n"
        "<h2>Calls by peak heat</h2>\n<table>\n<tr><th>call</th><th>date (UTC)</th><th>agent</th><th>source</th>"
        "<th>duration</th><th>peak heat</th><th>mean heat</th><th>nudges</th><th>kinds</th><th>followed</th></tr>\n"
        + "\n".join(rows) + "\n</table>\n"
    )
    return _page("Call archive summary", body)


def write(path: str | Path, document: str) -> Path:
    """Write a report; the folder must exist."""
    out = Path(path)
    out.write_text(document, encoding="utf-8")
    return out
