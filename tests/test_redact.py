"""Personal data is masked before a transcript leaves the agent's process (floor, archive, reports)."""

import sys

import pytest

from monitor.events import Metrics, Nudge, RoleMetrics, TranscriptFinal, Word
from monitor.redact import luhn_ok, redact_event, redact_text


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("my card is 4111 1111 1111 1111, thanks", "my card is [card], thanks"),
        ("it's 4111-1111-1111-1111", "it's [card]"),
        ("my social is 123-45-6789.", "my social is [ssn]."),
        ("call me on 555-123-4567", "call me on [phone]"),
        ("call me on (555) 123 4567 please", "call me on [phone] please"),
        ("the office is +44 20 7946 0958", "the office is [phone]"),
        ("email jo.smith@example.com now", "email [email] now"),
        ("send it to smith at gmail dot com", "send it to [email]"),
        ("my account number is four one one one two", "my account number is [digits]"),
        ("the code is 4, 1, 1, 1.", "the code is [digits]."),
        ("the PIN is double seven three one", "the PIN is [digits]"),
        ("policy 12345678 was cancelled", "policy [digits] was cancelled"),
        # tiny.en wrote "M L four four eight two" as "ML-4 482": two groups, neither long enough alone
        ("It's ML-4 482. I was told there would be no fee.", "It's ML-[digits]. I was told there would be no fee."),
        ("the reference is QC 5512", "the reference is QC [digits]"),
    ],
)
def test_personal_data_is_masked(said, stored):
    assert redact_text(said) == stored


@pytest.mark.parametrize(
    "said",
    ["my internet has been down for 3 days", "since March 2024", "I paid $45 on the 12th", "one of them said no", "oh no",
     "the UK 2024 budget", "COVID-19 rules changed"],
)
def test_ordinary_numbers_and_words_stay(said):
    assert redact_text(said) == said


def test_a_sixteen_digit_number_that_fails_luhn_is_still_masked_as_digits():
    assert luhn_ok("4111111111111111")
    assert not luhn_ok("4111111111111112")
    assert redact_text("ref 4111 1111 1111 1112") == "ref [digits]"


def test_transcript_words_are_masked_with_the_text_and_keep_their_times():
    words = [Word("my", 0.0, 0.2, 0.9), Word("card", 0.2, 0.5, 0.9), Word("is", 0.5, 0.6, 0.9)]
    words += [Word(g, 0.6 + i, 1.5 + i, 0.8) for i, g in enumerate(["4111", "1111", "1111", "1111"])]
    words += [Word("thanks", 5.0, 5.4, 0.9)]
    event = TranscriptFinal("c-1", 6.0, 6.1, "customer", "my card is 4111 1111 1111 1111 thanks", 0.0, 5.4, words)
    out = redact_event(event)
    assert out.text == "my card is [card] thanks"
    assert [w.w for w in out.words] == ["my", "card", "is", "[card]", "thanks"]
    assert (out.words[3].start, out.words[3].end) == (0.6, 4.5)
    assert "4111" not in out.to_json()


def test_nudge_quotes_are_masked_and_other_events_pass_unchanged():
    nudge = Nudge("c-1", 3.0, 3.1, "n1-acknowledge", "acknowledge", "warn", "Acknowledge", "they vented",
                  {"quote": "I gave you my number 555 123 4567 twice", "loud_db": 8.0})
    assert redact_event(nudge).evidence == {"quote": "I gave you my number [phone] twice", "loud_db": 8.0}
    metrics = Metrics("c-1", 1.0, 1.0, {"customer": RoleMetrics()}, False, 0.0)
    assert redact_event(metrics) is metrics


# --- the committed evaluation set (tests/fixtures/redaction, written by scripts/make-redaction-set) ---


def test_recall_and_false_positives_on_the_committed_set():
    """>= 98 % of each type caught and <= 2 % of civil lines touched, on the tuned half and the held-out half."""
    from conftest import FIXTURES, REPO_ROOT

    sys.path.insert(0, str(REPO_ROOT / "scripts"))  # the evaluation lives with the scripts
    from redact_eval import TYPES, evaluate

    scores = evaluate(FIXTURES / "redaction")
    assert sum(sum(s.total.values()) for s in scores.values()) >= 300
    assert sum(s.civil_total for s in scores.values()) >= 200
    for split, s in scores.items():
        for kind in TYPES:
            assert s.total[kind] >= 10, f"{split}: too few {kind} strings to measure"
            missed = [m for m in s.misses if m[0] == kind]
            assert s.recall(kind) >= 0.98, f"{split} {kind}: recall {s.recall(kind):.1%}; missed {missed[:3]}"
        assert s.fp_rate() <= 0.02, f"{split}: {s.civil_changed} civil lines changed, e.g. {s.false_positives[:3]}"


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("my email is john.smith at gmail dot com", "my email is [email]"),
        ("it's jsmith at the rate yahoo dot co dot uk.", "it's [email]."),
        ("john.smith @ gmail. com is fine", "[email] is fine"),
        ("the sort code is 20-00-00", "the sort code is [sort_code]"),
        ("my IBAN is GB29 NWBK 6016 1331 9268 19", "my IBAN is [account]"),
        ("account number 3192 6819", "account number [digits]"),
    ],
)
def test_whisper_forms_of_emails_sort_codes_and_accounts(said, stored):
    assert redact_text(said) == stored


@pytest.mark.parametrize(
    "said",
    ["the laptop was $12,499.00 before tax", "we paid $1,250,000 for it", "my contract started on 1/10/2017",
     "I have one, two, three reasons", "1, 2, 3, 4, 5, I counted them", "the engineer comes at 10:30 am",
     "meet me at the shop at five", "it was 3,415,000 dollars"],
)
def test_money_dates_counts_and_times_stay(said):
    assert redact_text(said) == said


def test_callmon_redact_masks_each_line_of_stdin():
    import subprocess
    import sys

    from conftest import REPO_ROOT

    result = subprocess.run(
        [sys.executable, "-m", "monitor", "redact"], input="call me on 555-123-4567\nno numbers here\n",
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "call me on [phone]\nno numbers here\n"


def test_a_reference_split_over_whisper_words_is_one_redacted_word():
    words = [Word("It's", 10.0, 10.2, 0.9), Word("ML", 10.2, 10.6, 0.8), Word("-4", 10.6, 10.9, 0.7),
             Word("482.", 10.9, 11.6, 0.8), Word("Thanks", 11.8, 12.1, 0.9)]
    final = TranscriptFinal("c", 12.1, 12.2, "customer", "It's ML-4 482. Thanks", 10.0, 12.1, words)
    out = redact_event(final)
    assert out.text == "It's ML-[digits]. Thanks"
    assert [w.w for w in out.words] == ["It's", "ML", "- [digits]", "Thanks"]
    assert (out.words[2].start, out.words[2].end) == (10.6, 11.6)
