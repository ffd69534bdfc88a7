"""Event builders for stage tests: transcripts and metrics at given call times."""

from dataclasses import replace

from monitor.events import Metrics, RoleMetrics, TranscriptFinal, TranscriptPartial, Word

CALL = "c-test"


def final(role, text, start, end=None, p=0.9):
    words = text.split()
    end = end if end is not None else start + 0.3 * len(words)
    step = (end - start) / max(1, len(words))
    ws = [Word(w, round(start + i * step, 3), round(start + (i + 1) * step, 3), p) for i, w in enumerate(words)]
    return TranscriptFinal(CALL, end, end, role, text, start, end, ws)


def pause_partial(role, text, start, end=None, p=0.9):
    """The partial the segmenter sends 200 ms into a pause: the words so far of an utterance not yet final."""
    f = final(role, text, start, end, p)
    return TranscriptPartial(**{k: getattr(f, k) for k in ("call_id", "t", "wall", "role", "text", "start", "end", "words")},
                             pause=True)


def later_final(partial, text=None):
    """The final of the utterance a pause partial began, 0.5 s later (same start)."""
    f = final(partial.role, text or partial.text, partial.start, partial.end + 0.2 if text is None else None)
    return replace(f, t=partial.t + 0.5, wall=partial.wall + 0.5)


def metrics(t, agent=(False, -70.0), customer=(False, -70.0)):
    roles = {
        "agent": RoleMetrics(loudness_lufs=agent[1], speaking=agent[0]),
        "customer": RoleMetrics(loudness_lufs=customer[1], speaking=customer[0]),
    }
    return Metrics(CALL, round(t, 2), round(t, 2), roles, overlap=agent[0] and customer[0], silence_s=0.0)
