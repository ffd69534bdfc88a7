"""The `callmon qa` subcommands: ingest, list, search, show, report, export.

Only argument parsing and wiring live here; the work is in archive, ingest, queries, text and
report. Heavy imports (the model, matplotlib) happen inside the handlers, so `callmon` starts fast.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from ..errors import BadInput
from .scorecard import KINDS
from .search import EVENT_KINDS

FILTERS_HELP = "calls from --since to --until (UTC days, inclusive), of --agent, with peak heat >= --min-heat, with a --kind nudge"


def register(sub: argparse._SubParsersAction) -> None:
    """Add `qa` (ingest, list, search, show, report, export) to the `callmon` parser."""
    qa = sub.add_parser(
        "qa",
        help="the call archive for QA: ingest recordings, list, search, scorecards, reports",
        description=(
            "Replay recorded calls into a searchable archive (SQLite) and review them: find the hot calls, "
            "search the (redacted) transcripts, read a call's scorecard and timeline, make HTML reports and CSV. "
            "The archive is --db FILE, else $CALLMON_ARCHIVE, else archive.sqlite in the user's data directory."
        ),
        epilog=(
            "examples:\n"
            "  callmon qa ingest recordings/ --workers 2    replay a folder of calls into the archive\n"
            "  callmon qa list --min-heat 2 --since 2026-11-01\n"
            "  callmon qa search \"speak to a manager\"\n"
            "  callmon qa show c-7f3a21b0\n"
            "  callmon qa report c-7f3a21b0 --html call.html\n"
            "  callmon qa report --summary --html week.html --since 2026-11-16\n"
            "  callmon qa export --csv calls.csv"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    qsub = qa.add_subparsers(dest="qa_command", metavar="SUBCOMMAND", required=True)
    _ingest_parser(qsub)
    _list_parser(qsub)
    _search_parser(qsub)
    _show_parser(qsub)
    _report_parser(qsub)
    _export_parser(qsub)


# ---------------------------------------------------------------------------------------------
# parsers


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="FILE", help="the archive (default: $CALLMON_ARCHIVE, else the user's data directory)")
    p.add_argument("-v", "--verbose", action="store_true", help="log details on stderr")


def _filters(p: argparse.ArgumentParser, kinds: tuple[str, ...] = KINDS) -> None:
    g = p.add_argument_group("which calls")
    g.add_argument("--since", type=_day, metavar="YYYY-MM-DD", help="calls on or after this day (UTC)")
    g.add_argument("--until", type=_day, metavar="YYYY-MM-DD", help="calls on or before this day (UTC)")
    g.add_argument("--agent", metavar="NAME", help="calls of this agent only")
    g.add_argument("--min-heat", type=_heat, metavar="N", help="calls whose peak heat reached N (0 calm .. 3 critical)")
    g.add_argument("--kind", choices=kinds, metavar="KIND", help=f"calls with a nudge or mark of this kind ({', '.join(kinds)})")


def _ingest_parser(qsub: argparse._SubParsersAction) -> None:
    p = qsub.add_parser(
        "ingest",
        help="replay recordings into the archive",
        description=(
            "Replay each recording (wav, flac, ogg, mp3; folders are searched recursively) through the same pipeline "
            "as a live call, on Dask workers (a local cluster, or --scheduler), and store each call in the archive as "
            "it finishes: transcript (redacted), a per-second timeline of the measures, nudges and whether they were "
            "followed. Files already archived (same content, any name) are skipped, so an interrupted batch is finished "
            "by running it again; two ingests at once share the files, never doing one twice. A file that cannot be "
            "used is reported and the rest go on (exit 2 at the end)."
        ),
        epilog=(
            "examples:\n  callmon qa ingest calls/2026-11-23/ --workers 2 --agent sam\n"
            "  callmon qa ingest /shared/calls/ --scheduler tcp://10.0.0.5:8786   (see docs/QA.md)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="recordings, or folders of them")
    _common(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=_count, metavar="N",
        help="start a local Dask cluster of N worker processes, each with its own model (default: one per core)",
    )
    where.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT",
        help="use an existing Dask cluster instead (dask scheduler / dask worker; every worker must see the files at the "
             "same path and have callmon installed); the archive stays on this machine",
    )
    p.add_argument("--agent", metavar="NAME", help="the agent on these calls (default: call.agent_id from the config)")
    p.add_argument("--date", type=_moment, metavar="YYYY-MM-DD[THH:MM]",
                   help="when the calls took place, in UTC (default: each file's modification time)")
    p.add_argument("--agent-channel", type=int, metavar="N", help="channel of the agent (default 0)")
    p.add_argument("--customer-channel", type=int, metavar="N", help="channel of the customer (default 1)")
    p.add_argument("--mono-role", choices=("agent", "customer"), help="whose voice a mono recording holds (default customer)")
    from ..cli import add_diarize_flags  # at call time: the cli module imports this one

    add_diarize_flags(p)
    p.add_argument("--model", metavar="NAME", help="faster-whisper model name or CTranslate2 directory (default tiny.en, bundled)")
    p.add_argument("--config", metavar="FILE", help="TOML file merged over config/default.toml")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr, only the summary")
    p.set_defaults(run=_run_ingest)


def _list_parser(qsub: argparse._SubParsersAction) -> None:
    p = qsub.add_parser(
        "list", help="list archived calls, hottest first",
        description=f"List archived calls, one line each: id, date, agent, duration, peak heat, nudges. {FILTERS_HELP}.",
        epilog="example: callmon qa list --min-heat 2 --kind call_supervisor --since 2026-11-01",
    )
    _common(p)
    _filters(p)
    p.add_argument("--sort", choices=("heat", "date"), default="heat", help="hottest first (default) or newest first")
    p.add_argument("--limit", type=_count, metavar="N", help="at most N calls")
    p.set_defaults(run=_run_list)


def _search_parser(qsub: argparse._SubParsersAction) -> None:
    p = qsub.add_parser(
        "search", help="find words in the transcripts",
        description=(
            "Find utterances: words in a row must occur in that order (so must \"quoted words\"); combine with OR, AND, "
            "NEAR (within 10 words; NEAR/5 for 5); end a word with * to match its beginning. Case and punctuation are "
            "ignored, and words of five letters or more also match the near-misses Whisper writes (one edit, two "
            "from eight letters, or split in two); --exact turns that off. Prints call id, call time, speaker and the text "
            "around the match, marked with « ». With --kind and no TEXT: the events of that kind (nudges, "
            "supervisor_requested, bookmark), each with what was said just before."
        ),
        epilog=(
            "examples:\n  callmon qa search \"speak to your manager\"\n  callmon qa search \"cancel OR refund\"\n"
            "  callmon qa search \"supervisor NEAR/5 now\"\n  callmon qa search --kind call_supervisor --since 2026-11-16"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("text", nargs="?", metavar="TEXT", help="the words to find (optional with --kind)")
    _common(p)
    _filters(p, EVENT_KINDS)
    p.add_argument("--exact", action="store_true", help="only the words as typed, no near-misses")
    p.add_argument("--limit", type=_count, default=50, metavar="N", help="at most N matches (default 50)")
    p.set_defaults(run=_run_search)


def _show_parser(qsub: argparse._SubParsersAction) -> None:
    p = qsub.add_parser(
        "show", help="a call's scorecard and timeline",
        description=(
            "Print a call's scorecard (duration, talk ratio, pace, interruptions, silence, heat, nudges, followed rate, "
            "heat in the 30 s before and after each nudge) and its timeline (heat changes, nudges, clears, bookmarks)."
        ),
        epilog="example: callmon qa show c-7f3a   (the start of a call id is enough when it is unique)",
    )
    p.add_argument("call", metavar="CALL", help="the call id (or its unique beginning)")
    _common(p)
    p.add_argument("--transcript", action="store_true", help="put the transcript in the timeline too")
    p.set_defaults(run=_run_show)


def _report_parser(qsub: argparse._SubParsersAction) -> None:
    p = qsub.add_parser(
        "report", help="an HTML report of a call, or a summary of many",
        description=(
            "Write one self-contained HTML file. For a CALL: a player of the recording (redacted spans bleeped; every time "
            "in the report plays from there), the scorecard, heat and customer sentiment per quarter, talk, silence, "
            "overlap and interruptions per role, each nudge with what the agent did and whether it helped, a timeline "
            "plot (customer loudness above baseline, pace, hostility, heat, nudge markers) and the transcript with "
            "speakers, highlights (with a legend) and nudges. "
            f"With --summary: trends per agent and per week (calls, heat, nudges raised and followed), the selected "
            f"calls ranked by peak heat, each linking to its report, and plots of heat and nudges by kind. {FILTERS_HELP}."
        ),
        epilog=(
            "examples:\n  callmon qa report c-7f3a21b0 --html call.html\n"
            "  callmon qa report --summary --html week.html --since 2026-11-16"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("call", nargs="?", metavar="CALL", help="the call id (or its unique beginning)")
    p.add_argument("--summary", action="store_true", help="a summary of the selected calls instead of one call")
    p.add_argument("--calls", action="store_true",
                   help="with --summary: also write each call's report next to it (CALL_ID.html), where the summary links")
    p.add_argument("--html", required=True, metavar="OUT", help="the HTML file to write")
    _common(p)
    _filters(p)
    p.set_defaults(run=_run_report)


def _export_parser(qsub: argparse._SubParsersAction) -> None:
    p = qsub.add_parser(
        "export", help="scorecards as CSV for spreadsheets",
        description=f"Write one CSV row per call: id, date, agent, source and every scorecard figure. {FILTERS_HELP}.",
        epilog="example: callmon qa export --csv calls.csv --since 2026-11-01",
    )
    p.add_argument("--csv", required=True, nargs="?", const="-", metavar="OUT", help="write CSV to OUT (default: stdout)")
    _common(p)
    _filters(p)
    p.set_defaults(run=_run_export)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day: {text!r} (use YYYY-MM-DD)") from None


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _heat(text: str) -> int:
    if text not in ("0", "1", "2", "3"):
        raise argparse.ArgumentTypeError(f"heat is 0, 1, 2 or 3, got {text!r}")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number from 1, got {text!r}")
    return int(text)


# ---------------------------------------------------------------------------------------------
# handlers


def _db(args: argparse.Namespace) -> Path:
    from .archive import default_archive

    return Path(args.db).expanduser() if args.db else default_archive()


@contextmanager
def _reading(args: argparse.Namespace) -> Iterator[sqlite3.Connection]:
    """The archive opened for reading; a missing or broken archive is bad input (one line)."""
    from .archive import connect

    path = _db(args)
    conn = connect(path)
    try:
        yield conn
    except sqlite3.DatabaseError as exc:
        raise BadInput(f"the archive {path} cannot be read ({exc})") from None
    finally:
        conn.close()


def _selected(args: argparse.Namespace):  # noqa: ANN202 - queries.Filters
    from .queries import Filters

    if args.since and args.until and args.since > args.until:
        raise BadInput(f"--since {args.since} is after --until {args.until}")
    return Filters(args.since, args.until, args.agent, args.min_heat, args.kind)


def _run_ingest(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..stt.model import resolve_model
    from .ingest import BatchOptions, run_batch

    overrides = {
        key: getattr(args, flag) for flag, key in (
            ("agent_channel", "audio.agent_channel"), ("customer_channel", "audio.customer_channel"),
            ("mono_role", "audio.mono_role"), ("diarize", "audio.diarize"), ("agent_speaker", "audio.agent_speaker"),
            ("model", "stt.model"), ("agent", "call.agent_id"),
        ) if getattr(args, flag) is not None
    }
    cfg = load_config(args.config, overrides)  # a bad config stops here, before any worker starts
    resolve_model(cfg.stt.model)  # likewise a model that is not there
    opts = BatchOptions(
        db=_db(args), paths=args.paths, workers=args.workers, scheduler=args.scheduler, agent_id=args.agent,
        call_date=args.date, quiet=args.quiet, verbose=args.verbose,
    )
    return run_batch(opts, cfg).exit_code()


def _run_list(args: argparse.Namespace) -> int:
    from .queries import list_calls
    from .text import print_list

    filters = _selected(args)
    with _reading(args) as conn:
        print_list(list_calls(conn, filters, order=args.sort, limit=args.limit), sys.stdout)
    return 0


def _run_search(args: argparse.Namespace) -> int:
    from .search import events, search
    from .text import print_hits

    filters = _selected(args)
    if not args.text and not args.kind:
        raise BadInput('give words to find, or --kind KIND for events, e.g. callmon qa search "speak to a manager"')
    with _reading(args) as conn:
        if not args.text:
            print_hits(events(conn, args.kind, filters, limit=args.limit), sys.stdout)
            return 0
        hits, near = search(conn, args.text, filters, limit=args.limit, exact=args.exact)
    if near:
        print(f"also matching near-misses: {', '.join(dict.fromkeys(near))} (--exact for none)", file=sys.stderr)
    print_hits(hits, sys.stdout)
    return 0


def _run_show(args: argparse.Namespace) -> int:
    from .queries import load_call, resolve_call
    from .text import print_show

    with _reading(args) as conn:
        print_show(load_call(conn, resolve_call(conn, args.call)), sys.stdout, transcript=args.transcript)
    return 0


def _run_report(args: argparse.Namespace) -> int:
    from . import report
    from .queries import load_call, resolve_call, scorecards

    if args.summary == bool(args.call):
        raise BadInput("give either a CALL or --summary (with filters), e.g. callmon qa report c-7f3a --html call.html")
    out = Path(args.html).expanduser()
    if not out.parent.is_dir():
        raise BadInput(f"cannot write {out}: the folder {out.parent} does not exist")
    make: Callable[[], str]
    with _reading(args) as conn:
        if args.summary:
            filters = _selected(args)
            details = scorecards(conn, filters)
            if not details:
                raise BadInput("no calls match the filters; 'callmon qa list' with the same filters shows what is there")
            make = lambda: report.summary_report(details, _describe(args))  # noqa: E731
            if args.calls:
                for d in details:
                    _write(report, out.parent / report.call_link(d.info.call_id), lambda d=d: report.call_report(d))
        else:
            detail = load_call(conn, resolve_call(conn, args.call))
            make = lambda: report.call_report(detail)  # noqa: E731
    _write(report, out, make)
    return 0


def _write(report, out: Path, make: Callable[[], str]) -> None:  # noqa: ANN001 - the report module
    try:
        report.write(out, make())
    except OSError as exc:
        raise BadInput(f"cannot write {out} ({exc.strerror})") from None
    print(f"wrote {out}", file=sys.stderr)


def _describe(args: argparse.Namespace) -> str:
    parts = []
    if args.since:
        parts.append(f"from {args.since}")
    if args.until:
        parts.append(f"until {args.until}")
    if args.agent:
        parts.append(f"agent {args.agent}")
    if args.min_heat is not None:
        parts.append(f"peak heat at least {args.min_heat}")
    if args.kind:
        parts.append(f"with a {args.kind} nudge")
    return ", ".join(parts) or "all"


def _run_export(args: argparse.Namespace) -> int:
    from .queries import scorecards
    from .text import write_csv

    filters = _selected(args)
    with _reading(args) as conn:
        details = scorecards(conn, filters, order="date")
    if args.csv == "-":
        write_csv(details, sys.stdout)
        return 0
    out = Path(args.csv).expanduser()
    try:
        with out.open("w", encoding="utf-8", newline="") as fh:
            write_csv(details, fh)
    except OSError as exc:
        raise BadInput(f"cannot write {out} ({exc.strerror})") from None
    print(f"wrote {len(details)} call(s) to {out}", file=sys.stderr)
    return 0
