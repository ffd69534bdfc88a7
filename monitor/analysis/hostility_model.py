"""Hostility scorer for one transcribed customer utterance: probability (0..1) that it is offensive.

Design: a small transformer (all-MiniLM-L6-v2, 6 layers, 384 wide) fine-tuned on OLID subtask A
(offensive vs not), exported to ONNX and quantised to int8, run with onnxruntime and the
`tokenizers` package.  A linear TF-IDF model was tried first and is cheaper, but it stays well short
of the accuracy target (see models/hostility/README.md); the int8 transformer scores one short
utterance in a few milliseconds on two CPU cores, which fits the monitor's per-utterance budget.
The runtime needs only numpy, onnxruntime and tokenizers (no torch, no scikit-learn).

The text normalisation in `normalise` is shared with `scripts/train-hostility`, so training and
inference see identical input: Twitter artefacts (@USER, URL, '#', emojis) are dropped, censored
profanity as Whisper writes it ("f***ing") is spelled out, a few chat spellings are expanded, and
the text is lowercased.
"""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import numpy as np

from ..resources import project_file

DEFAULT_DIR = project_file("models/hostility")

_USER = re.compile(r"@\w+")
_URL = re.compile(r"\bURL\b|https?://\S+|www\.\S+")
_STAR = r"[\*#@$%!\-]"
_CENSORED = [
    (re.compile(rf"\bf(?:u|{_STAR})*{_STAR}+(?:c?k|ck)?(ing|in|ed|er|ers|s)?(?!\w)"), r"fuck\1"),
    (re.compile(rf"\bsh{_STAR}+t(ty|s)?\b"), r"shit\1"),
    (re.compile(rf"\bb{_STAR}+(?:tch|ch|h)(es|ing|y)?\b"), r"bitch\1"),
    (re.compile(rf"\ba{_STAR}{{1,2}}hole(s)?\b"), r"asshole\1"),
    (re.compile(rf"\bd{_STAR}+(?:mn|n)\b"), "damn"),
]
_SPELLING = {
    "u": "you", "ur": "your", "r": "are", "ya": "you", "im": "i'm", "dont": "don't", "wtf": "what the fuck",
    "stfu": "shut the fuck up", "fkn": "fucking", "fking": "fucking", "fuckin": "fucking", "mf": "motherfucker",
}
_TOKEN = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


def normalise(text: str) -> str:
    """Spoken-transcript style text: no @USER/URL/#/emoji, censored swearing spelled out, lowercase."""
    t = _USER.sub(" ", text)
    t = _URL.sub(" ", t)
    t = t.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    t = unicodedata.normalize("NFKC", t)
    t = t.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    t = "".join(ch for ch in t if ord(ch) < 0x2000)  # emojis, pictographs, symbols
    t = t.replace("#", " ").lower()
    for pattern, repl in _CENSORED:
        t = pattern.sub(repl, t)
    return " ".join(_SPELLING.get(w, w) for w in _TOKEN.findall(t))


# ---------------------------------------------------------------------------------------------
# The model


class HostilityModel:
    """Int8 ONNX transformer + WordPiece tokenizer; `score` gives P(offensive) in 0..1."""

    def __init__(self, session, tokenizer, threshold: float, max_length: int):
        self._session = session
        self._tokenizer = tokenizer
        self.threshold = float(threshold)
        self.max_length = int(max_length)
        self._inputs = {i.name for i in session.get_inputs()}

    @classmethod
    def load(cls, directory: Path | None = None, threads: int = 1) -> HostilityModel:
        """Load the model folder (default: the repository's models/hostility/).

        `threads`: onnxruntime intra-op threads; one keeps latency low for single short utterances
        and leaves the other cores to speech recognition.
        """
        import onnxruntime as ort
        from tokenizers import Tokenizer

        directory = Path(directory) if directory is not None else DEFAULT_DIR
        cfg = json.loads((directory / "config.json").read_text())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(str(directory / cfg["model"]), opts, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(directory / cfg["tokenizer"]))
        tokenizer.enable_truncation(int(cfg["max_length"]))
        tokenizer.no_padding()
        return cls(session, tokenizer, cfg["threshold"], cfg["max_length"])

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask}
        return self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]

    def score(self, text: str) -> float:
        """Probability (0..1) that the utterance is offensive/hostile."""
        ids = np.array([self._tokenizer.encode(normalise(text)).ids], dtype=np.int64)
        return float(np.clip(self._run(ids, np.ones_like(ids))[0], 0.0, 1.0))
