"""The `callmon` command: argument parsing, config, and running the pipeline.

Exit codes: 0 done; 2 bad input (file, config, model, channel); 1 the pipeline failed;
130 interrupted (the call is still closed with `call.ended`). Errors are one line on stderr,
never a traceback (`-v` adds the traceback for bug reports).
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .config import ROLES
from .errors import BadInput, PipelineError
from .floor import commands as floor_commands
from .qa import commands as qa_commands

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
    replay.add_argument(
        "--tui", action="store_true",
        help="show the agent's screen (nudge banner, meters, transcript) instead of printing; real time unless --speed X",
    )
    replay.add_argument("--bell", action="store_true", help="with --tui: ring the terminal bell on critical nudges")
    add_diarize_flags(replay)
    _add_common(replay)
    _add_outputs(replay, archive=False)
    replay.set_defaults(run=_lazy("replay"))

    live = sub.add_parser(
        "live",
        help="monitor a call as it happens (headset mic and call line)",
        description=(
            "Capture the call live and coach the agent: either one stereo device (agent and customer on two channels, "
            "--device) or one device per side (--agent-device for the headset mic, --customer-device for the call line "
            "or a monitor of the softphone's output). Devices are named by index or by part of their name (callmon "
            "devices lists them). The call ends with --duration, Ctrl-C or SIGTERM, with everything flushed."
        ),
        epilog=(
            "examples:\n"
            "  callmon live --agent-device headset --customer-device monitor\n"
            "  callmon live --device 3 --duration 600 --no-tui --format jsonl > call.jsonl\n"
            "  scripts/virtual-audio --start; callmon live --agent-device agent_line --customer-device customer_line"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    live.add_argument("--device", metavar="DEV", help="one stereo device carrying both sides (default: the default input)")
    live.add_argument("--agent-device", metavar="DEV", help="the agent's headset mic (channel 0 of it)")
    live.add_argument("--customer-device", metavar="DEV", help="the customer's line, or a monitor of the softphone output")
    live.add_argument("--duration", type=_positive, metavar="S", help="end the call after S seconds (default: until Ctrl-C)")
    live.add_argument(
        "--record", metavar="FILE.wav",
        help="keep the call's audio as the monitor heard it (agent ch0, customer ch1, 16 kHz float WAV): "
             "`callmon replay FILE.wav` at any speed gives this call's nudges and outcomes",
    )
    live.add_argument("--no-tui", action="store_true", help="no screen: write the events to stdout (see --format)")
    live.add_argument("--bell", action="store_true", help="ring the terminal bell when a critical nudge appears on the screen")
    live.add_argument(
        "--format", choices=("text", "jsonl"), default="text",
        help="with --no-tui: text, a readable transcript (default), or jsonl, every event as a JSON line",
    )
    _add_common(live)
    _add_outputs(live, archive=True)
    live.set_defaults(run=_lazy("live"))

    devices = sub.add_parser(
        "devices",
        help="list audio input devices, with hints for the agent mic and the customer line",
        description=(
            "List the input devices PortAudio sees: index, name, channels, default rate, and a hint of what each could carry."
        ),
        epilog="example: callmon devices",
    )
    devices.add_argument("-v", "--verbose", action="store_true", help="log details on stderr")
    devices.set_defaults(run=_lazy("devices"))

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
    hostility.set_defaults(run=_lazy("hostility"))

    redact = sub.add_parser(
        "redact",
        help="mask personal data in text lines (stdin to stdout)",
        description=(
            "Read text lines on stdin and write them to stdout with personal data replaced by labels: card numbers "
            "[card], social security numbers [ssn], phone numbers [phone], e-mail addresses (also spoken: \"jo at "
            "gmail dot com\") [email], sort codes [sort_code], account numbers and digits read out [digits]. It is the "
            "function every sink (floor, archive, reports) applies before a transcript leaves the process."
        ),
        epilog='example: echo "my card is 4111 1111 1111 1111" | callmon redact',
    )
    redact.add_argument("-v", "--verbose", action="store_true", help="log details on stderr")
    redact.set_defaults(run=_run_redact)

    demo = sub.add_parser(
        "demo",
        help="play a bundled demo call in the agent's screen",
        description=(
            "Play a bundled one-minute call in the agent's screen, in real time: a broadband customer heats up,\n"
            "insults the agent, asks for a manager and calms down; the coach raises slow_down, acknowledge,\n"
            "set_boundary and call_supervisor on the way.\n"
            "Keys: d dismiss, s supervisor, m mark, Space pause, + - speed, ? all keys, q quit.\n"
            "When stdout is not a terminal (or with --no-tui or --format) it prints the transcript instead."
        ),
        epilog="examples:\n  callmon demo\n  callmon demo --speed 2\n  callmon demo --no-tui --format jsonl > demo.jsonl",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--speed", type=_positive, default=1.0, metavar="X", help="at X times real time (default 1), e.g. 2")
    demo.add_argument("--no-tui", action="store_true", help="no screen: print the transcript as the call plays")
    demo.add_argument("--bell", action="store_true", help="ring the terminal bell when a critical nudge appears on the screen")
    demo.add_argument(
        "--format", choices=("text", "jsonl"),
        help="print instead of the screen: text, a readable transcript, or jsonl, every event as a JSON line",
    )
    demo.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks) on stderr")
    demo.set_defaults(run=_lazy("demo"))
    floor_commands.register(sub)
    qa_commands.register(sub)
    return parser


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--agent-id", metavar="ID", help="who the agent is, on the floor and in the archive (default [call] agent_id)")
    p.add_argument("--agent-channel", type=_channel, metavar="N", help="channel of the agent (default 0)")
    p.add_argument("--customer-channel", type=_channel, metavar="N", help="channel of the customer (default 1)")
    p.add_argument("--mono-role", choices=ROLES, help="whose voice a mono recording holds (default customer)")
    p.add_argument("--model", metavar="NAME", help="faster-whisper model name or CTranslate2 directory (default tiny.en, bundled)")
    p.add_argument("--config", metavar="FILE", help="TOML file merged over config/default.toml")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks) on stderr")


def add_diarize_flags(p: argparse.ArgumentParser) -> None:
    """--diarize and --agent-speaker, for the commands that open recordings (replay, qa ingest)."""
    p.add_argument(
        "--diarize", action="store_const", const="on",
        help="split a mono recording that holds both sides into agent and customer (speaker diarization, offline)",
    )
    p.add_argument(
        "--agent-speaker", choices=("first", "second"),
        help="with --diarize: which speaker to talk is the agent (default: the one who greets, else the first)",
    )


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


def _add_outputs(p: argparse.ArgumentParser, archive: bool) -> None:
    p.add_argument("--hub", metavar="URL", help="publish the call to a floor hub, e.g. ws://floor:8765, or to several "
                   "hubs on one Redis, comma-separated, tried in turn (needs --token)")
    p.add_argument(
        "--token", metavar="T",
        help="this agent's hub token (or set CALLMON_TOKEN); the coaching is the same when the hub is down",
    )
    if archive:
        p.add_argument("--archive", metavar="FILE", help="also archive the call into this QA archive (SQLite)")


def _run_redact(args: argparse.Namespace) -> int:
    from .redact import redact_text

    for line in sys.stdin:
        sys.stdout.write(redact_text(line.rstrip("\n")) + "\n")
    sys.stdout.flush()
    return 0


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    """The runner `name` in monitor.calls, imported only when the command runs (the pipeline is slow to import)."""

    def run(args: argparse.Namespace) -> int:
        from . import calls

        return getattr(calls, name)(args)

    return run


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
    except BrokenPipeError as exc:
        if not stdout_closed():
            # A pipe of our own (a worker's, a socket) broke: a failure, not a reader that went away.
            if args.verbose:
                log.exception("broken pipe")
            print(f"callmon: error: a connection closed unexpectedly ({exc}); run again (-v shows where)", file=sys.stderr)
            return 1
        # The reader of stdout went away (e.g. `| head`): not an error worth a traceback. Point stdout at
        # /dev/null so the interpreter's final flush does not complain about the same pipe again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def stdout_closed() -> bool:
    """True when stdout is a pipe or socket whose reader has gone (poll reports an error or hang-up on it)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False  # not a real file (tests capture it): it cannot have been closed by a reader
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
