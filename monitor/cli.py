"""The `callmon` command: argument parsing, config, and running the pipeline.

Exit codes: 0 done; 2 bad input (file, config, model, channel); 1 the pipeline failed;
130 interrupted (the call is still closed with `call.ended`). Errors are one line on stderr,
never a traceback (`-v` adds the traceback for bug reports).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence

from . import __version__
from .audio.source import FileSource, Pacer, roles_for
from .config import ROLES, Config, load_config
from .errors import BadInput
from .floor import commands as floor_commands
from .pipeline import PipelineError, Sink
from .qa import commands as qa_commands
from .session import CallSession, load_scorer
from .sinks import JsonlSink, Progress, TextSink

log = logging.getLogger("callmon")

BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    """All subcommands and their options."""
    parser = argparse.ArgumentParser(
        prog="callmon",
        description="Real-time call monitor: transcribes both sides of a call and coaches the agent.",
        epilog=(
            "examples:\n"
            "  callmon replay call.flac                   readable transcript, as fast as possible\n"
            "  callmon replay call.flac --realtime        at the pace of the call, with partials\n"
            "  callmon replay call.flac --format jsonl    every event as JSON lines\n"
            "run 'callmon COMMAND --help' for a command's options"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"callmon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    replay = sub.add_parser(
        "replay",
        help="run a recorded call through the monitor",
        description=(
            "Replay a recorded call (wav, flac, ogg, mp3; any rate; stereo = one side per channel) through "
            "the same pipeline as a live call: transcript, measures and coaching nudges. Events are stamped "
            "in call time, so every speed gives the same transcript and the same nudges."
        ),
        epilog="example: callmon replay call.flac --format jsonl > call.jsonl",
    )
    replay.add_argument("file", metavar="FILE", help="the recording")
    replay.add_argument(
        "--format", choices=("text", "jsonl"), default="text",
        help="text: a readable transcript with nudges inline (default); jsonl: every event as one JSON object per line",
    )
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument("--fast", action="store_true", help="as fast as the machine goes (the default)")
    pace.add_argument("--realtime", action="store_true", help="at the pace of the call, as if live (--speed 1)")
    pace.add_argument("--speed", type=_positive, metavar="X", help="at X times real time, e.g. 2 or 0.5")
    _add_common(replay)
    _add_outputs(replay, archive=False)
    replay.set_defaults(run=_replay)

    hostility = sub.add_parser(
        "hostility",
        help="score utterances for hostility (one per line on stdin)",
        description=(
            "Read one utterance per line on stdin and write one JSON object per line: text, hostility 0..1, "
            "offensive true/false, the intent categories found (insult, profanity, legal_threat, violent_threat, "
            "manager_request, churn_threat, exasperation), the model's score and the phrases matched."
        ),
        epilog='example: echo "get me your boss right now" | callmon hostility',
    )
    hostility.add_argument("--config", metavar="FILE", help="TOML file merged over config/default.toml")
    hostility.add_argument("-v", "--verbose", action="store_true", help="log details on stderr")
    hostility.set_defaults(run=_hostility)
    floor_commands.register(sub)
    qa_commands.register(sub)
    return parser


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent-channel", type=_channel, metavar="N", help="channel of the agent (default 0)")
    p.add_argument("--customer-channel", type=_channel, metavar="N", help="channel of the customer (default 1)")
    p.add_argument("--mono-role", choices=ROLES, help="whose voice a mono recording holds (default customer)")
    p.add_argument("--model", metavar="NAME", help="faster-whisper model name or CTranslate2 directory (default tiny.en, bundled)")
    p.add_argument("--config", metavar="FILE", help="TOML file merged over config/default.toml")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks) on stderr")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _channel(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a channel is a number from 0, got {text!r}")
    return int(text)


def _config(args: argparse.Namespace) -> Config:
    overrides = {}
    for flag, key in (
        ("agent_channel", "audio.agent_channel"),
        ("customer_channel", "audio.customer_channel"),
        ("mono_role", "audio.mono_role"),
        ("model", "stt.model"),
    ):
        if getattr(args, flag, None) is not None:
            overrides[key] = getattr(args, flag)
    return load_config(args.config, overrides)


def _replay(args: argparse.Namespace) -> int:
    cfg = _config(args)
    speed = 1.0 if args.realtime else args.speed
    pacer = Pacer(speed)
    source = FileSource(args.file, cfg.audio.block_ms * 16, pacer)
    roles = roles_for(source.channels, cfg.audio.agent_channel, cfg.audio.customer_channel, cfg.audio.mono_role)
    source.use_roles(roles)
    partials = cfg.stt.partials == "on" or (cfg.stt.partials == "auto" and speed is not None)
    out = JsonlSink() if args.format == "jsonl" else TextSink()
    session = CallSession(
        cfg, source, roles, [out, Progress(source.duration_s, quiet=args.quiet), *_outputs(args, cfg)],
        partials=partials, source_name=source.description,
    )
    return _finish(session)


def _finish(session: CallSession) -> int:
    """Run the call with Ctrl-C and SIGTERM ending it cleanly; the exit code."""
    interrupted = _stop_on_signals(session)
    ended = session.run()
    if ended.error:
        print(f"callmon: error: {ended.error}; the transcript above is complete up to {ended.t:.1f} s", file=sys.stderr)
        return BAD_INPUT
    return 130 if interrupted else 0


def _add_outputs(p: argparse.ArgumentParser, archive: bool) -> None:
    p.add_argument("--hub", metavar="URL", help="publish the call to a floor hub, e.g. ws://floor:8765 (needs --token)")
    p.add_argument(
        "--token", metavar="T",
        help="this agent's hub token (or set CALLMON_TOKEN); the coaching is the same when the hub is down",
    )
    if archive:
        p.add_argument("--archive", metavar="FILE", help="also archive the call into this QA archive (SQLite)")


def _outputs(args: argparse.Namespace, cfg: Config) -> list[Sink]:
    """Sinks beyond the terminal: the floor hub and the call archive, when asked for."""
    sinks: list[Sink] = []
    if getattr(args, "hub", None):
        from .floor.publisher import HubPublisher

        token = args.token or os.environ.get("CALLMON_TOKEN")
        if not token:
            raise BadInput("--hub needs this agent's token: give --token T or set CALLMON_TOKEN")
        sinks.append(HubPublisher(args.hub, token, cfg.call.agent_id))
    if getattr(args, "archive", None):
        from .qa.archive import ArchiveSink

        sinks.append(ArchiveSink(args.archive))
    return sinks


def _hostility(args: argparse.Namespace) -> int:
    scorer = load_scorer(load_config(args.config))
    for line in sys.stdin:
        text = line.strip()
        if text:
            print(json.dumps(scorer.score(text).to_dict(), ensure_ascii=False), flush=True)
    return 0


def _stop_on_signals(session: CallSession) -> list[int]:
    """Ctrl-C and SIGTERM end the call cleanly (call.ended, everything flushed) instead of killing it."""
    seen: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        seen.append(signum)
        session.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return seen


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.run(args)
    except BadInput as exc:
        if args.verbose:
            log.exception("bad input")
        print(f"callmon: error: {exc}", file=sys.stderr)
        return BAD_INPUT
    except PipelineError as exc:
        print(f"callmon: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a traceback.
        sys.stderr.close()
        return 0
