"""Redaction recall and false positives on the committed set (tests/fixtures/redaction/); evaluation only.

A PII string counts as caught when nothing of it survives redaction: none of its digits in a run
of three or more, and (e-mails) neither the user part nor the domain. A civil line is a false
positive when redaction changes it at all. Used by tests/test_redact.py and scripts/eval-redaction.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from monitor.redact import redact_text

TYPES = ("card", "ssn", "phone", "email", "sort_code", "account")


@dataclass
class Scores:
    """Per split: caught / total per type, and changed / total civil lines, with the misses."""

    caught: Counter = field(default_factory=Counter)
    total: Counter = field(default_factory=Counter)
    civil_changed: int = 0
    civil_total: int = 0
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (type, sentence, redacted)
    false_positives: list[tuple[str, str]] = field(default_factory=list)

    def recall(self, kind: str) -> float:
        """Share of the type's strings caught."""
        return self.caught[kind] / self.total[kind] if self.total[kind] else float("nan")

    def fp_rate(self) -> float:
        """Share of civil lines changed."""
        return self.civil_changed / self.civil_total if self.civil_total else float("nan")


_DIGIT_WORD = re.compile(r"\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|double|triple)\b", re.IGNORECASE)


def survives(pii: str, kind: str, redacted: str) -> bool:
    """True when part of the PII is still readable in the redacted sentence."""
    if kind == "email":
        user = re.split(r"\s*(?:@|\bat\b)", pii, maxsplit=1)[0].strip()
        words = [w for w in re.findall(r"[A-Za-z0-9]+", user) if w.lower() not in ("dot", "underscore")]
        domain = re.split(r"@|\bat (?:the rate (?:of )?)?", pii)[-1]
        dom = re.findall(r"[A-Za-z0-9]+", domain)[:1]
        return any(re.search(rf"\b{re.escape(w)}\b", redacted, re.IGNORECASE) for w in words + dom if len(w) > 1)
    if re.search(r"\d{3,}", re.sub(r"[^\d]", "", pii)) is None and not _DIGIT_WORD.search(pii):
        return pii in redacted
    letters = re.findall(r"[A-Z]{4}", pii)  # an IBAN's bank code
    if any(x in redacted for x in letters):
        return True
    numerals = re.findall(r"\d+", redacted)
    spoken = _DIGIT_WORD.findall(redacted)
    written = "".join(numerals)
    pii_digits = re.sub(r"\D", "", pii)
    return (len(written) >= 3 and any(written[i:i + 3] in pii_digits for i in range(len(written) - 2))) or len(spoken) >= 3


def evaluate(folder: Path) -> dict[str, Scores]:
    """Scores per split (dev, test) over the set in `folder`."""
    out = {"dev": Scores(), "test": Scores()}
    with (folder / "pii.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            s = out[row["split"]]
            redacted = redact_text(row["sentence"])
            s.total[row["type"]] += 1
            if survives(row["pii"], row["type"], redacted):
                s.misses.append((row["type"], row["sentence"], redacted))
            else:
                s.caught[row["type"]] += 1
    with (folder / "civil.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            s = out[row["split"]]
            s.civil_total += 1
            redacted = redact_text(row["sentence"])
            if redacted != row["sentence"]:
                s.civil_changed += 1
                s.false_positives.append((row["sentence"], redacted))
    return out
