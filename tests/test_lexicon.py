"""The intent lexicon catches phrasings no fixture uses, and leaves civil talk alone."""

import pytest

from monitor.analysis.lexicon import default_lexicon

CAUGHT = [
    ("get me your boss", "manager_request"),
    ("I want to talk to someone above you", "manager_request"),
    ("put your supervisor on the phone now", "manager_request"),
    ("who is your manager", "manager_request"),
    ("I'll see you in court", "legal_threat"),
    ("my solicitor is going to hear about this", "legal_threat"),
    ("I'm reporting you to the ombudsman", "legal_threat"),
    ("if I come down there you'll regret it", "violent_threat"),
    ("I know where you work", "violent_threat"),
    ("you're a complete clown", "insult"),
    ("are you thick or something", "insult"),
    ("put someone competent on", "insult"),
    ("you people are useless", "insult"),
    ("this is absolutely bloody ridiculous", "profanity"),
    ("what the f***ing hell is going on", "profanity"),
    ("I'm cancelling my contract", "churn_threat"),
    ("I'll take my business elsewhere", "churn_threat"),
    ("this is the fourth time I've rung", "exasperation"),
    ("I'm sick and tired of this", "exasperation"),
    ("nobody ever calls back", "exasperation"),
]

AGENT = [
    ("I completely understand", "acknowledgement"),
    ("that must be really stressful", "acknowledgement"),
    ("I can't accept that kind of language", "boundary"),
    ("let me get my team leader", "supervisor_handoff"),
    ("that's not my department", "blame"),
    ("the courier messed it up", "blame"),
    ("I'm sorry you feel that way", "poor_apology"),
    ("please calm down", "poor_apology"),
    ("I promise it'll be sorted today", "overpromise"),
    ("just to confirm, you were charged twice in March", "summary"),
]

CIVIL = [
    "could you check my bill please",
    "hello, thanks for calling",
    "I'd like to change my address",
    "what time will the engineer arrive",
    "that's great, thank you so much",
    "I moved house last month and the account is still at the old address",
    "can you tell me why the bill went up",
    "the hell of a week I've had, but thanks for sorting it",  # idiom with a swear: profanity only
]


@pytest.mark.parametrize("text,category", CAUGHT)
def test_customer_intents(text, category):
    assert category in {m.category for m in default_lexicon().match(text, role="customer")}


@pytest.mark.parametrize("text,category", AGENT)
def test_agent_phrasing(text, category):
    assert category in {m.category for m in default_lexicon().match(text, role="agent")}


@pytest.mark.parametrize("text", CIVIL)
def test_civil_customer_talk_has_no_hostile_intent(text):
    hits = {m.category for m in default_lexicon().match(text, role="customer")}
    assert not hits - {"profanity"}, hits


# Near misses: what tiny.en makes of trigger words on narrowband or synthetic speech. These are
# mishearings of the kind seen in the wild (one letter off, or the same consonants), written for
# this test, not copied from the evaluation corpus.
MISHEARD = [
    ("I want to speak to your manger", "manager_request"),
    ("put your super visor on the phone now", "manager_request"),
    ("can I talk to your supervizor", "manager_request"),
    ("my lawyar will be in touch", "legal_threat"),
    ("my solicitar is going to hear about this", "legal_threat"),
    ("you're a complete moran", "insult"),
    ("you'll use less twit", "insult"),  # "you're useless" heard as "you'll use less"
    ("you are an idiat", "insult"),
]

# Ordinary talk that contains the same near-miss words, or a misheard word on its own.
NEAR_BUT_CIVIL = [
    "I think it's the router",
    "do you think the engineer will come today",
    "my manager at work said I could take the call",
    "I'd like to speak to your sales team",
    "the manger in the nativity play",
    "it was thick fog this morning",
    "I think people here are lovely",
    "you are a class act",
    "you are so close",
    "the liars in the news",
    "who's in charge of billing",
    "you'll be useless without a charger",
    "the court date is on Monday",
    "the courier left it with a neighbour",
    "I thought the price was stupidly cheap",
]


@pytest.mark.parametrize("text,category", MISHEARD)
def test_a_near_miss_inside_a_whole_phrase_is_caught_and_marked(text, category):
    hits = [m for m in default_lexicon().match(text, role="customer") if m.category == category]
    assert hits, f"{text!r}: no {category}"
    assert all(m.near_miss for m in hits), "the exact text does not match, so the hit must be marked as a near miss"
    assert all(m.last_word > m.first_word for m in hits), "a near miss needs context: at least two words"


@pytest.mark.parametrize("text", NEAR_BUT_CIVIL)
def test_near_misses_do_not_turn_ordinary_talk_hostile(text):
    hits = {(m.category, m.phrase) for m in default_lexicon().match(text, role="customer")}
    assert not {c for c, _ in hits} - {"profanity", "exasperation"}, hits


def test_a_misheard_word_alone_never_matches():
    for word in ("manger", "supervizor", "moran", "idiat", "lawyar"):
        assert default_lexicon().match(word, role="customer") == []


def test_exact_matches_are_unchanged_and_not_marked():
    for text, category in CAUGHT:
        hits = [m for m in default_lexicon().match(text, role="customer") if m.category == category]
        assert hits and any(not m.near_miss for m in hits), text


def test_a_trigger_heard_as_two_words_is_joined_and_indexed_in_the_heard_text():
    text = "there's nothing here, you're a use less moron"
    (hit,) = [m for m in default_lexicon().match(text, role="customer") if m.category == "insult"]
    words = text.replace("'", " ").replace(",", "").split()
    assert hit.near_miss and words[hit.first_word : hit.last_word + 1] == ["you", "re", "a", "use", "less"]
    assert hit.phrase == "you re a use less"


@pytest.mark.parametrize("text,category", [
    ("can you put me through to a supervisor", "manager_request"),
    ("transfer me over to your manager", "manager_request"),
    ("I'd like my complaint escalated to a senior manager", "manager_request"),
    ("I want this complaint escalated", "manager_request"),
    ("I'll kick your head in", "violent_threat"),
    ("someone should knock his block off", "violent_threat"),
    ("who's in charge over there", "manager_request"),
])
def test_phrasings_added_after_the_tuning_set(text, category):
    # added for phrasings the tuning calls showed missing; worded differently here
    assert category in {m.category for m in default_lexicon().match(text, role="customer")}


@pytest.mark.parametrize("text,poor", [
    ("You need to come down, please.", True),  # "calm down" as tiny.en hears it
    ("Just come down.", True),
    ("Please come down to the branch with your ID.", False),
    ("The price will come down next month.", False),
    ("An engineer can come down on Tuesday.", False),
])
def test_calm_down_misheard_as_come_down_is_a_poor_apology_only_as_an_imperative(text, poor):
    hits = {m.category for m in default_lexicon().match(text, role="agent")}
    assert ("poor_apology" in hits) == poor, hits
