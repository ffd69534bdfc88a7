"""The configuration tree: typed sections, loaded from TOML and checked at start-up.

`config/default.toml` holds every setting with its documentation; a user file given with
`--config` is merged over it. Anything wrong (an unknown key, a wrong type, a value out of
range) raises `ConfigError` with one line that names the key and what is allowed, so the CLI
can print it and exit 2 before any audio is touched.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from .errors import BadInput
from .resources import project_file

ROLES = ("agent", "customer")


class ConfigError(BadInput, ValueError):
    """A configuration file or value that cannot be used; the message is one line for the user."""


def _opt(default: Any, *, choices: tuple | None = None, lo: float | None = None, hi: float | None = None) -> Any:
    return field(default=default, metadata={"choices": choices, "lo": lo, "hi": hi})


@dataclass(frozen=True)
class CallConfig:
    """Who is on the call."""

    agent_id: str = "agent"


@dataclass(frozen=True)
class AudioConfig:
    """Channel-to-role mapping, the split of mono recordings, and block size."""

    agent_channel: int = _opt(0, lo=0, hi=63)
    customer_channel: int = _opt(1, lo=0, hi=63)
    mono_role: str = _opt("customer", choices=ROLES)
    diarize: str = _opt("off", choices=("off", "on", "auto"))
    agent_speaker: str = _opt("auto", choices=("auto", "first", "second"))
    block_ms: int = _opt(100, lo=10, hi=1000)


@dataclass(frozen=True)
class LiveConfig:
    """Live capture devices and how a lost device is handled."""

    device: str = _opt("")
    agent_device: str = _opt("")
    customer_device: str = _opt("")
    queue_s: float = _opt(2.0, lo=0.2, hi=60.0)
    lost_after_s: float = _opt(1.0, lo=0.2, hi=30.0)
    retry_max_s: float = _opt(5.0, lo=0.5, hi=60.0)


@dataclass(frozen=True)
class VadConfig:
    """Voice activity detection and utterance cutting."""

    threshold: float = _opt(0.5, lo=0.0, hi=1.0)
    neg_threshold: float = _opt(0.35, lo=0.0, hi=1.0)
    min_silence_ms: int = _opt(400, lo=32, hi=5000)
    end_partial_ms: int = _opt(0, lo=0, hi=5000)
    early_decode_ms: int = _opt(100, lo=0, hi=5000)
    min_speech_ms: int = _opt(100, lo=0, hi=5000)
    speech_pad_ms: int = _opt(100, lo=0, hi=2000)
    max_utterance_s: float = _opt(14.0, lo=2.0, hi=30.0)
    partial_interval_s: float = _opt(1.0, lo=0.2, hi=30.0)


@dataclass(frozen=True)
class SttConfig:
    """Speech-to-text model and its guards."""

    model: str = "tiny.en"
    device: str = _opt("auto", choices=("auto", "cpu", "cuda"))
    compute_type: str = _opt("auto", choices=("auto", "int8", "int8_float16", "int8_float32", "float16", "float32"))
    threads: int = _opt(0, lo=0, hi=256)
    language: str = "en"
    beam_size: int = _opt(1, lo=1, hi=10)
    window_s: float = _opt(15.0, lo=5.0, hi=30.0)
    partials: str = _opt("auto", choices=("auto", "on", "off"))
    final_queue: int = _opt(16, lo=1, hi=10000)
    no_speech_threshold: float = _opt(0.6, lo=0.0, hi=1.0)
    log_prob_threshold: float = _opt(-1.0, lo=-20.0, hi=0.0)
    compression_ratio_threshold: float = _opt(2.4, lo=1.0, hi=10.0)
    repeat_limit: int = _opt(4, lo=2, hi=20)


@dataclass(frozen=True)
class FeaturesConfig:
    """Acoustic features measured per role."""

    loudness_window_s: float = _opt(0.4, lo=0.1, hi=3.0)
    loudness_floor_lufs: float = _opt(-70.0, lo=-120.0, hi=0.0)


@dataclass(frozen=True)
class AnalysisConfig:
    """Rolling measures of each role and the call's heat."""

    baseline_speech_s: float = _opt(25.0, lo=3.0, hi=300.0)
    baseline_min_speech_s: float = _opt(2.0, lo=0.5, hi=60.0)
    baseline_follow: float = _opt(0.01, lo=0.0, hi=1.0)
    level_window_s: float = _opt(1.5, lo=0.2, hi=10.0)
    pace_window_s: float = _opt(15.0, lo=2.0, hi=60.0)
    pace_min_words: int = _opt(4, lo=1, hi=50)
    hostility_hold_s: float = _opt(20.0, lo=1.0, hi=300.0)
    hostility_model: str = "models/hostility"
    min_word_p: float = _opt(0.45, lo=0.0, hi=1.0)
    loud_db: float = _opt(4.0, lo=0.5, hi=30.0)
    loud_lufs: float = _opt(-17.0, lo=-60.0, hi=0.0)
    agitation_baseline_s: float = _opt(8.0, lo=5.0, hi=300.0)
    agitated: float = _opt(1.0, lo=0.1, hi=10.0)
    fast_ratio: float = _opt(1.25, lo=1.0, hi=3.0)
    fast_min_wpm: float = _opt(250.0, lo=60.0, hi=400.0)
    fast_wpm: float = _opt(280.0, lo=60.0, hi=600.0)
    fast_sps: float = _opt(5.7, lo=1.0, hi=15.0)
    tense: float = _opt(0.3, lo=0.0, hi=1.0)
    hostile: float = _opt(0.5, lo=0.0, hi=1.0)
    abusive: float = _opt(0.8, lo=0.0, hi=1.0)
    heat_fall_s: float = _opt(3.0, lo=0.0, hi=300.0)
    interrupt_after_s: float = _opt(1.0, lo=0.0, hi=10.0)
    overlap_min_s: float = _opt(0.6, lo=0.1, hi=10.0)


SEVERITIES = ("info", "warn", "critical")


@dataclass(frozen=True)
class RuleConfig:
    """What every coaching rule has: on/off, severity, timing, and the words shown."""

    enabled: bool = True
    severity: str = _opt("warn", choices=SEVERITIES)
    cooldown_s: float = _opt(20.0, lo=0.0, hi=3600.0)
    expire_s: float = _opt(30.0, lo=1.0, hi=3600.0)
    message: str = ""


@dataclass(frozen=True)
class SlowDownRule(RuleConfig):
    """The customer is heated and the agent answers fast or loud."""

    customer_heat: int = _opt(2, lo=1, hi=3)
    agent_loud_db: float = _opt(4.0, lo=0.5, hi=30.0)
    hold_s: float = _opt(3.0, lo=0.0, hi=60.0)


@dataclass(frozen=True)
class AcknowledgeRule(RuleConfig):
    """The customer vented a heated complaint, or repeats one."""

    min_words: int = _opt(5, lo=1, hi=200)
    repeat_similarity: float = _opt(0.45, lo=0.0, hi=1.0)
    vent_words: int = _opt(20, lo=1, hi=500)


@dataclass(frozen=True)
class SummarizeRule(RuleConfig):
    """A long customer turn full of facts."""

    min_turn_s: float = _opt(20.0, lo=1.0, hi=600.0)
    min_words: int = _opt(55, lo=1, hi=2000)
    min_facts: int = _opt(2, lo=0, hi=100)


@dataclass(frozen=True)
class CoachConfig:
    """One section per nudge kind."""

    slow_down: SlowDownRule = field(default_factory=SlowDownRule)
    acknowledge: AcknowledgeRule = field(default_factory=AcknowledgeRule)
    set_boundary: RuleConfig = field(default_factory=RuleConfig)
    call_supervisor: RuleConfig = field(default_factory=RuleConfig)
    let_them_finish: RuleConfig = field(default_factory=RuleConfig)
    avoid_blame: RuleConfig = field(default_factory=RuleConfig)
    apologize_well: RuleConfig = field(default_factory=RuleConfig)
    keep_promises: RuleConfig = field(default_factory=RuleConfig)
    summarize: SummarizeRule = field(default_factory=SummarizeRule)


@dataclass(frozen=True)
class QaConfig:
    """QA ingest on Dask: reaching a scheduler, waiting on the archive, the first ETA."""

    connect_timeout_s: float = _opt(10.0, lo=0.5, hi=300.0)
    lock_wait_s: float = _opt(10.0, lo=0.1, hi=600.0)
    eta_speed: float = _opt(6.0, lo=0.1, hi=1000.0)


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    call: CallConfig = field(default_factory=CallConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    stt: SttConfig = field(default_factory=SttConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    coach: CoachConfig = field(default_factory=CoachConfig)
    qa: QaConfig = field(default_factory=QaConfig)


def default_config_path() -> Path:
    """Where `default.toml` is: inside the installed package, else in the source tree's config/."""
    return project_file("config/default.toml")


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load the defaults, merge the user's file over them, then dotted `overrides` over that."""
    merged = _read_toml(default_config_path())
    if path is not None:
        _merge(merged, _read_toml(Path(path)), str(path))
    for dotted, value in (overrides or {}).items():
        *sections, key = dotted.split(".")
        node = merged
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = value
    cfg = _build(Config, merged, "")
    _check_order(cfg)
    return cfg


# Settings that only make sense in this order, each strictly below the next.
ORDERED = (
    ("analysis.tense", "analysis.hostile", "analysis.abusive"),
    ("vad.neg_threshold", "vad.threshold"),
    ("vad.end_partial_ms", "vad.min_silence_ms"),
    ("vad.early_decode_ms", "vad.min_silence_ms"),
    ("analysis.baseline_min_speech_s", "analysis.baseline_speech_s"),
    ("analysis.fast_min_wpm", "analysis.fast_wpm"),
)


def _check_order(cfg: Config) -> None:
    """Thresholds that must be ordered (tense < hostile < abusive, a negative threshold below its positive)."""
    for keys in ORDERED:
        values = [_get(cfg, key) for key in keys]
        if any(not a < b for a, b in zip(values, values[1:], strict=False)):
            got = ", ".join(f"{k} = {v!r}" for k, v in zip(keys, values, strict=True))
            raise ConfigError(f"config keys {' < '.join(keys)} must be in that order; got {got}")


def _get(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory, not a TOML file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text; give a TOML file like config/default.toml") from None
    except RecursionError:
        # tomllib parses nested arrays and tables recursively: thousands of levels exhaust the stack.
        raise ConfigError(f"config file {path} is nested too deeply to be a callmon config; "
                          "give a TOML file like config/default.toml") from None


def _merge(base: dict[str, Any], extra: dict[str, Any], source: str) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, source)
        else:
            base[key] = value


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            name = f"{prefix}{key}"
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else f"; known keys: {', '.join(fields)}"
            raise ConfigError(f"unknown config key {name}{hint}")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            continue
        value, kind, dotted = data[name], hints[name], f"{prefix}{name}"
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {dotted} must be a table ([{dotted}])")
            kwargs[name] = _build(kind, value, f"{dotted}.")
        else:
            kwargs[name] = _check(dotted, value, kind, f.metadata)
    return cls(**kwargs)


def _check(dotted: str, value: Any, kind: type, meta: Any) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"config key {dotted} must be {kind.__name__}, got {type(value).__name__} {value!r}")
    choices, lo, hi = meta.get("choices"), meta.get("lo"), meta.get("hi")
    if choices and value not in choices:
        raise ConfigError(f"config key {dotted} must be one of {', '.join(map(str, choices))}; got {value!r}")
    # Written as "not inside" so NaN, which compares false with everything, is refused too.
    if (lo is not None and not value >= lo) or (hi is not None and not value <= hi):
        raise ConfigError(f"config key {dotted} must be between {lo} and {hi}; got {value!r}")
    return value
