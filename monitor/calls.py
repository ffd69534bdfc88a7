"""The commands that run a call (replay, demo, live) and the small ones beside them (devices, hostility).

Imported only when one of them runs: the pipeline pulls in scipy, the model runtime and PyAV,
which other commands (the hub, the floor, QA queries) do not need.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable

from .audio.source import RATE, Pacer, roles_for
from .config import Config, load_config
from .errors import BadInput
from .pipeline import Sink
from .session import CallSession, load_scorer, open_file
from .sinks import JsonlSink, Progress, TextSink
from .stt.model import WhisperTranscriber

BAD_INPUT = 2


def config_from(args: argparse.Namespace) -> Config:
    overrides = {}
    for flag, key in (
        ("agent_channel", "audio.agent_channel"),
        ("customer_channel", "audio.customer_channel"),
        ("mono_role", "audio.mono_role"),
        ("diarize", "audio.diarize"),
        ("agent_speaker", "audio.agent_speaker"),
        ("model", "stt.model"),
        ("agent_id", "call.agent_id"),
    ):
        if getattr(args, flag, None) is not None:
            overrides[key] = getattr(args, flag)
    return load_config(args.config, overrides)


def replay(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    if args.tui:
        return _replay_tui(args, cfg)
    speed = 1.0 if args.realtime else args.speed
    pacer = Pacer(speed)
    # One model for the call and, when a mono file is split, for hearing which speaker greets.
    transcriber = WhisperTranscriber(cfg.stt) if cfg.audio.diarize != "off" else None
    source, roles = open_file(args.file, cfg, pacer, transcriber=transcriber)
    session = CallSession(
        cfg, source, roles, [_printer(args.format), Progress(source.duration_s, quiet=args.quiet), *_outputs(args, cfg)],
        partials=_partials(cfg, paced=speed is not None), source_name=source.description, transcriber=transcriber,
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
    transcriber = WhisperTranscriber(cfg.stt) if cfg.audio.diarize != "off" else None
    source, roles = open_file(args.file, cfg, pacer, transcriber=transcriber)
    outputs = _outputs(args, cfg)

    def make(sinks: list[Sink]) -> CallSession:
        return CallSession(cfg, source, roles, [*sinks, *outputs], partials=_partials(cfg, paced=True),
                           source_name=source.description, transcriber=transcriber)

    return run_agent_tui(make, source_label=source.description, pacer=pacer, link=_link_of(outputs), bell=args.bell,
                         lead=_lead_of(outputs))


def demo(args: argparse.Namespace) -> int:
    """`demo`: the bundled call, in the screen on a terminal, else as a printed transcript."""
    from .resources import project_file

    cfg = load_config(None)
    path = project_file("data/demo_call.flac")
    pacer = Pacer(args.speed)
    source, roles = open_file(path, cfg, pacer)
    partials = _partials(cfg, paced=True)
    if not args.no_tui and args.format is None and sys.stdout.isatty():
        from .tui.app import run_agent_tui

        def make(sinks: list[Sink]) -> CallSession:
            return CallSession(cfg, source, roles, sinks, partials=partials, source_name=f"file:{path.name}")

        return run_agent_tui(make, source_label=f"demo: {path.name}", pacer=pacer, end_note="demo over, q to quit",
                             bell=args.bell)
    why = "--no-tui" if args.no_tui else "--format" if args.format else "stdout is not a terminal"
    seconds = (source.duration_s or 0) / args.speed
    print(f"callmon demo: {why}, so printing the transcript instead of the screen ({seconds:.0f} s at {args.speed:g}×)",
          file=sys.stderr)
    return _finish(CallSession(cfg, source, roles, [_printer(args.format)], partials=partials,
                               source_name=f"file:{path.name}"))


def _partials(cfg: Config, paced: bool) -> bool:
    """Whether partial transcripts are made: `stt.partials` on, or auto and the audio comes at its own pace."""
    return cfg.stt.partials == "on" or (cfg.stt.partials == "auto" and paced)


def _printer(fmt: str | None) -> Sink:
    """The stdout sink for --format: every event as JSON lines, or the readable transcript."""
    return JsonlSink() if fmt == "jsonl" else TextSink()


def _finish(session: CallSession) -> int:
    """Run the call with Ctrl-C and SIGTERM ending it cleanly; the exit code."""
    interrupted = _stop_on_signals(session)
    ended = session.run()
    if ended.error:
        print(f"callmon: error: {ended.error}; the transcript above is complete up to {ended.t:.1f} s", file=sys.stderr)
        return BAD_INPUT
    return 130 if interrupted else 0


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


def live(args: argparse.Namespace) -> int:
    from .audio.live import LiveSource, RolePlan

    cfg = config_from(args)
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
        from .audio.recording import WavRecorder

        record = WavRecorder(args.record, len(plan), RATE) if args.record else None
        source = LiveSource(plan, block, cfg.live, duration_s=args.duration, record=record)
        return CallSession(cfg, source, source.roles, [*sinks, *outputs], partials=_partials(cfg, paced=True),
                           source_name=source.description)

    if not args.no_tui:
        from .tui.app import run_agent_tui

        return run_agent_tui(make, source_label="live", link=_link_of(outputs), bell=args.bell, lead=_lead_of(outputs))
    return _finish(make([_printer(args.format)]))


def _link_of(outputs: list[Sink]) -> Callable[[], str] | None:
    """The hub link text, for the TUI's status line; None without a hub."""
    pub = next((s for s in outputs if hasattr(s, "link")), None)
    return None if pub is None else (lambda: pub.link)


def _lead_of(outputs: list[Sink]) -> Callable[[], str | None] | None:
    """What the team lead said through the hub ("your lead is coming", a whisper), for the TUI's banner."""
    pub = next((s for s in outputs if hasattr(s, "lead_note")), None)
    return None if pub is None else (lambda: pub.lead_note)


def devices(args: argparse.Namespace) -> int:
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


def hostility(args: argparse.Namespace) -> int:
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


