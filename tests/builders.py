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


def metrics(t, agent=(False, -70.0), customer=(False, -70.0), roles=("agent", "customer")):
    """One metrics block; `roles` names the sides the call has (("agent",) for an agent-only mono call)."""
    given = {"agent": agent, "customer": customer}
    ms = {r: RoleMetrics(loudness_lufs=given[r][1], speaking=given[r][0]) for r in roles}
    overlap = len(ms) == 2 and all(m.speaking for m in ms.values())
    return Metrics(CALL, round(t, 2), round(t, 2), ms, overlap=overlap, silence_s=0.0)


def periodic_partial(role, text, start, end=None, p=0.9):
    """A partial sent while the utterance grows (not at a pause): for display only."""
    return replace(pause_partial(role, text, start, end, p), pause=False)
