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
