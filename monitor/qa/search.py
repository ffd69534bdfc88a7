"""`qa search`: the query language over the transcripts, matches that survive ASR errors, and events.

Query: words in a row are a phrase (in that order, within one utterance); "quoted words" too;
`a OR b`, `a AND b`, `a NEAR b` (within 10 words; `NEAR/5` for 5); `word*` matches the start of
a word. Case and punctuation are ignored. Whisper tiny.en often writes a near-miss ("supervisers",
"super visor", "lones" for "loans"): each plain word of five letters or more also matches the
archive's words within one edit (two from eight letters) or with the same consonants (`skeleton`),
and itself split in two archived words; `--exact` turns that off.
The FTS5 query is built from the parsed words alone, so no input is an FTS5 syntax error.

`--kind` with no words lists events: nudges of a kind, supervisor requests and bookmarks.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from dataclasses import dataclass

from ..analysis.lexicon import edit_distance
from ..errors import BadInput
from .queries import MARK_KINDS, Filters
from .scorecard import KINDS

EVENT_KINDS = (*KINDS, *MARK_KINDS)
MAX_VARIANTS = 6  # near-misses kept per word (closest first)
MAX_COMBOS = 32  # phrases one query term may expand into
_TOKEN = re.compile(r'"([^"]*)"|(\bOR\b|\bAND\b|\bNEAR(?:/\d+)?\b)|([\w\']+\*?)')


@dataclass(frozen=True)
class Hit:
    """One search result: a matching utterance, or an event with what was said then."""

    call_id: str
    role: str
    start: float
    snippet: str
    source: str | None


@dataclass(frozen=True)
class Phrase:
    """Words in order; the last may be a prefix."""

    words: tuple[str, ...]
    prefix: bool = False


def parse(text: str) -> list[list[tuple[str, list[Phrase]]]]:
    """The query as OR-ed clauses; each clause a list of (operator joining it to the previous, phrases)."""
    clauses: list[list[tuple[str, list[Phrase]]]] = [[]]
    pending_op, run = "AND", []

    def close_run() -> None:
        nonlocal run, pending_op
        if run:
            words = tuple(w.rstrip("*").lower() for w in run)
            clauses[-1].append((pending_op, [Phrase(words, run[-1].endswith("*"))]))
            run, pending_op = [], "AND"

    for quoted, op, word in _TOKEN.findall(text):
        if op:
            close_run()
            if op == "OR":
                if clauses[-1]:
                    clauses.append([])
            else:
                pending_op = op
        elif quoted:
            close_run()
            words = tuple(w.lower() for w in re.findall(r"[\w']+", quoted))
            if words:
                clauses[-1].append((pending_op, [Phrase(words)]))
                pending_op = "AND"
        elif word.strip("'*"):
            run.append(word.strip("'"))
            if word.endswith("*"):
                close_run()
    close_run()
    clauses = [c for c in clauses if c]
    if not clauses:
        raise BadInput(f"nothing to search for in {text!r}; give some words, e.g. callmon qa search \"speak to a manager\"")
    return clauses


def skeleton(word: str) -> str:
    """The word's sound, roughly: its first letter, then its consonants, doubles collapsed ("lones", "loans": "lns")."""
    out = word[:1]
    for ch in word[1:]:
        if ch not in "aeiouyhw'" and ch != out[-1]:
            out += ch
    return out


class Vocabulary:
    """The words in the archive's transcripts (FTS5's own vocabulary), for near-miss matching."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.segments_vocab USING fts5vocab(main, segments_fts, row)")
        self.terms = [r[0] for r in conn.execute("SELECT term FROM temp.segments_vocab")]
        self.known = set(self.terms)

    def variants(self, word: str) -> list[tuple[str, ...]]:
        """The word, the archive's words within one or two edits of it, and splits of it into two archived words."""
        out: list[tuple[str, ...]] = [(word,)]
        if len(word) < 5:
            return out
        cap = 2 if len(word) >= 8 else 1
        sound = skeleton(word)
        near = sorted(
            (d, t) for t in self.terms if t != word
            and ((d := edit_distance(word, t, cap)) <= cap or (skeleton(t) == sound and (d := cap + 1)))
        )
        out += [(t,) for _, t in near[:MAX_VARIANTS]]
        for i in range(2, len(word) - 1):
            if word[:i] in self.known and word[i:] in self.known:
                out.append((word[:i], word[i:]))
        return out


def _expand(phrase: Phrase, vocab: Vocabulary | None) -> tuple[list[str], list[str]]:
    """FTS5 phrase strings for a phrase and its near-misses, and the near-misses found (for the user)."""
    if vocab is None:
        options = [[(w,)] for w in phrase.words]
    else:
        options = [[(w,)] if (phrase.prefix and i == len(phrase.words) - 1) else vocab.variants(w)
                   for i, w in enumerate(phrase.words)]
    found = [" ".join(v) for opts in options for v in opts[1:]]
    out = []
    for combo in itertools.islice(itertools.product(*options), MAX_COMBOS):
        words = " ".join(w for part in combo for w in part)
        out.append(f'"{words}"' + (" *" if phrase.prefix else ""))
    return out, found


def fts_query(text: str, vocab: Vocabulary | None = None) -> tuple[str, list[str]]:
    """The FTS5 MATCH expression for a query, and the near-misses it also looks for."""
    ors, found = [], []
    for clause in parse(text):
        groups: list[tuple[str, list[list[str]]]] = []  # (NEAR distance or "", the forms of each term in it)
        for op, phrases in clause:
            alts, extra = _expand(phrases[0], vocab)
            found += extra
            if op.startswith("NEAR") and groups:
                distance = op.partition("/")[2] or "10"
                _, terms = groups[-1]
                groups[-1] = (distance, [*terms, alts])
            else:
                groups.append(("", [alts]))
        parts = []
        for distance, terms in groups:
            if not distance:
                parts.append(f"({' OR '.join(terms[0])})")
            else:  # NEAR takes phrases only, so each combination of forms is a NEAR of its own
                combos = itertools.islice(itertools.product(*terms), MAX_COMBOS)
                parts.append("(" + " OR ".join(f"NEAR({' '.join(c)}, {distance})" for c in combos) + ")")
        ors.append("(" + " AND ".join(parts) + ")")
    return " OR ".join(ors), found


def search(conn: sqlite3.Connection, text: str, filters: Filters, *, limit: int = 50, exact: bool = False,
           mark: tuple[str, str] = ("«", "»")) -> tuple[list[Hit], list[str]]:
    """Utterances that match, best first, with the match marked in a snippet; and the near-misses searched too."""
    query, found = fts_query(text, None if exact else Vocabulary(conn))
    where, params = filters.where()
    sql = (
        "SELECT s.call_id, s.role, s.start, c.source, snippet(segments_fts, 0, ?, ?, '…', 12) AS snip "
        "FROM segments_fts JOIN segments s ON s.id = segments_fts.rowid JOIN calls c ON c.call_id = s.call_id "
        f"WHERE segments_fts MATCH ? AND {where} ORDER BY bm25(segments_fts), s.call_id, s.start LIMIT ?"
    )
    rows = conn.execute(sql, [mark[0], mark[1], query, *params, limit])
    return [Hit(r["call_id"], r["role"], r["start"], r["snip"], r["source"]) for r in rows], found


def events(conn: sqlite3.Connection, kind: str, filters: Filters, *, limit: int = 50) -> list[Hit]:
    """Nudges of `kind`, or supervisor requests / bookmarks, each with what the customer or agent said then."""
    where, params = Filters(filters.since, filters.until, filters.agent, filters.min_heat).where()
    said = ("(SELECT s.role || char(31) || s.text FROM segments s WHERE s.call_id = e.call_id AND s.start <= e.t + 1 "
            "ORDER BY s.start DESC LIMIT 1)")
    if kind in MARK_KINDS:
        inner = "SELECT call_id, t, '*** ' || replace(kind, '.', ' ') || CASE WHEN note != '' THEN ': ' || note ELSE '' END " \
                "AS label FROM marks WHERE kind = ?"
        key = MARK_KINDS[kind]
    else:
        inner = "SELECT call_id, t, '>>> ' || kind || ': ' || reason AS label FROM nudges WHERE kind = ?"
        key = kind
    sql = (f"SELECT e.call_id, e.t, e.label, c.source, {said} AS said FROM ({inner}) e JOIN calls c ON c.call_id = e.call_id "
           f"WHERE {where} ORDER BY c.call_date DESC, e.call_id, e.t LIMIT ?")
    out = []
    for r in conn.execute(sql, [key, *params, limit]):
        role, _, text = (r["said"] or "").partition("\x1f")
        snippet = r["label"] + (f' (after {role}: "{text}")' if text else "")
        out.append(Hit(r["call_id"], "event", r["t"], snippet, r["source"]))
    return out
