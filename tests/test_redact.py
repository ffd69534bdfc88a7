"""Personal data is masked before a transcript leaves the agent's process (floor, archive, reports)."""

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
    ],
)
def test_personal_data_is_masked(said, stored):
    assert redact_text(said) == stored


@pytest.mark.parametrize(
    "said",
    ["my internet has been down for 3 days", "since March 2024", "I paid $45 on the 12th", "one of them said no", "oh no"],
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
