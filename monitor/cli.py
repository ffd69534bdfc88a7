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
from collections.abc import Callable, Sequence

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
    replay.add_argument(
        "--tui", action="store_true",
        help="show the agent's screen (nudge banner, meters, transcript) instead of printing; real time unless --speed X",
    )
    _add_common(replay)
    _add_outputs(replay, archive=False)
    replay.set_defaults(run=_replay)

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
    live.add_argument("--no-tui", action="store_true", help="no screen: write the events to stdout (see --format)")
    live.add_argument(
        "--format", choices=("text", "jsonl"), default="text",
        help="with --no-tui: text, a readable transcript (default), or jsonl, every event as a JSON line",
    )
    _add_common(live)
    _add_outputs(live, archive=True)
    live.set_defaults(run=_live)

    devices = sub.add_parser(
        "devices",
        help="list audio input devices, with hints for the agent mic and the customer line",
        description=(
            "List the input devices PortAudio sees: index, name, channels, default rate, and a hint of what each could carry."
        ),
        epilog="example: callmon devices",
    )
    devices.add_argument("-v", "--verbose", action="store_true", help="log details on stderr")
    devices.set_defaults(run=_devices)

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
    demo.add_argument(
        "--format", choices=("text", "jsonl"),
        help="print instead of the screen: text, a readable transcript, or jsonl, every event as a JSON line",
    )
    demo.add_argument("-v", "--verbose", action="store_true", help="log details (and tracebacks) on stderr")
    demo.set_defaults(run=_demo)
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
    if args.tui:
        return _replay_tui(args, cfg)
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


def _replay_tui(args: argparse.Namespace, cfg: Config) -> int:
    """`replay --tui`: the agent's screen over a recording, at real time unless --speed says otherwise."""
    if args.fast:
        raise BadInput("--tui plays the call at a pace the agent can follow: drop --fast (use --speed X for faster)")
    if not sys.stdout.isatty():
        raise BadInput("--tui needs a terminal and stdout is not one: drop --tui to print the transcript")
    from .tui.app import run_agent_tui

    pacer = Pacer(args.speed or 1.0)
    source = FileSource(args.file, cfg.audio.block_ms * 16, pacer)
    roles = roles_for(source.channels, cfg.audio.agent_channel, cfg.audio.customer_channel, cfg.audio.mono_role)
    source.use_roles(roles)
    outputs = _outputs(args, cfg)

    def make(sinks: list[Sink]) -> CallSession:
        return CallSession(cfg, source, roles, [*sinks, *outputs], partials=cfg.stt.partials != "off",
                           source_name=source.description)

    return run_agent_tui(make, source_label=source.description, pacer=pacer, link=_link_of(outputs))


def _demo(args: argparse.Namespace) -> int:
    """`demo`: the bundled call, in the screen on a terminal, else as a printed transcript."""
    from .resources import project_file

    cfg = load_config(None)
    path = project_file("data/demo_call.flac")
    pacer = Pacer(args.speed)
    source = FileSource(path, cfg.audio.block_ms * 16, pacer)
    roles = roles_for(source.channels, cfg.audio.agent_channel, cfg.audio.customer_channel, cfg.audio.mono_role)
    source.use_roles(roles)
    partials = cfg.stt.partials != "off"
    if not args.no_tui and args.format is None and sys.stdout.isatty():
        from .tui.app import run_agent_tui

        def make(sinks: list[Sink]) -> CallSession:
            return CallSession(cfg, source, roles, sinks, partials=partials, source_name=f"file:{path.name}")

        return run_agent_tui(make, source_label=f"demo: {path.name}", pacer=pacer, end_note="demo over, q to quit")
    why = "--no-tui" if args.no_tui else "--format" if args.format else "stdout is not a terminal"
    seconds = (source.duration_s or 0) / args.speed
    print(f"callmon demo: {why}, so printing the transcript instead of the screen ({seconds:.0f} s at {args.speed:g}×)",
          file=sys.stderr)
    out = JsonlSink() if args.format == "jsonl" else TextSink()
    return _finish(CallSession(cfg, source, roles, [out], partials=partials, source_name=f"file:{path.name}"))


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


def _live(args: argparse.Namespace) -> int:
    from .audio.live import LiveSource, RolePlan

    cfg = _config(args)
    agent_dev = args.agent_device or cfg.live.agent_device
    customer_dev = args.customer_device or cfg.live.customer_device
    if args.device and (args.agent_device or args.customer_device):
        raise BadInput("give either --device (one stereo device) or --agent-device/--customer-device, not both")
    if agent_dev or customer_dev:
        plan = [RolePlan(role, dev, 0) for role, dev in (("agent", agent_dev), ("customer", customer_dev)) if dev]
    else:
        device = args.device or cfg.live.device or None
        roles = roles_for(2, cfg.audio.agent_channel, cfg.audio.customer_channel, cfg.audio.mono_role)
        plan = [RolePlan(role, device, ch) for role, ch in roles.items()]
    block = cfg.audio.block_ms * 16
    outputs = _outputs(args, cfg)

    def make(sinks: list[Sink]) -> CallSession:
        source = LiveSource(plan, block, cfg.live, duration_s=args.duration)
        return CallSession(cfg, source, source.roles, [*sinks, *outputs], partials=cfg.stt.partials != "off",
                           source_name=source.description)

    if not args.no_tui:
        from .tui.app import run_agent_tui

        return run_agent_tui(make, source_label="live", link=_link_of(outputs))
    out = JsonlSink() if args.format == "jsonl" else TextSink()
    return _finish(make([out]))


def _link_of(outputs: list[Sink]) -> Callable[[], str] | None:
    """The hub link text, for the TUI's status line; None without a hub."""
    pub = next((s for s in outputs if hasattr(s, "link")), None)
    return None if pub is None else (lambda: pub.link)


def _devices(args: argparse.Namespace) -> int:
    from .audio.devices import input_devices

    found = input_devices()
    if not found:
        print("no audio input devices; plug in a headset, or run scripts/virtual-audio --start for virtual call lines")
        return 0
    print(f"{'index':>5}  {'name':<32} {'channels':>8} {'rate':>7}  could be")
    for d in found:
        mark = "*" if d.is_default else " "
        print(f"{d.index:>4}{mark}  {d.name[:32]:<32} {d.channels:>8} {d.default_rate:>7.0f}  {d.hint}")
    print("* the default input. Use: callmon live --agent-device NAME --customer-device NAME (or --device NAME: one stereo device)")
    return 0


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
