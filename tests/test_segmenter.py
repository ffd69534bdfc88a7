"""The utterance policy and the streaming VAD, on controlled input (no model, no sleeps)."""

from pathlib import Path

import numpy as np
import pytest
from faster_whisper import decode_audio
from faster_whisper.vad import get_vad_model

from monitor.config import VadConfig
from monitor.stt.segmenter import Segmenter
from monitor.stt.vad import FRAME, StreamingVad

RATE = 16000


def run(probs, cfg=None, flush=True):
    """Feed one probability per 32 ms frame (audio = the frame index, to check cuts)."""
    seg = Segmenter("customer", cfg or VadConfig())
    out = []
    for i, p in enumerate(probs):
        out += seg.push(np.full(FRAME, i, dtype=np.float32), np.array([p]))
    if flush:
        out += seg.flush()
    return out


def frames(seconds):
    return round(seconds * RATE / FRAME)


def test_one_utterance_with_pad_and_hangover():
    cfg = VadConfig(speech_pad_ms=96, min_silence_ms=320, partial_interval_s=30)
    probs = [0.0] * 10 + [0.9] * 40 + [0.0] * 30
    finals = [u for u in run(probs, cfg) if u.final]
    assert len(finals) == 1
    u = finals[0]
    assert u.start == (10 - 3) * FRAME  # 96 ms of pad before the first speech frame
    assert u.end == (50 + 3) * FRAME  # ... and after the last
    assert u.audio[0] == 7 and u.audio[-1] == 52  # the audio is exactly those frames
    assert len(u.audio) == u.end - u.start


def test_pause_shorter_than_hangover_keeps_one_utterance():
    cfg = VadConfig(min_silence_ms=400)
    probs = [0.9] * 30 + [0.1] * frames(0.3) + [0.9] * 30 + [0.0] * 40
    assert len([u for u in run(probs, cfg) if u.final]) == 1
    probs = [0.9] * 30 + [0.1] * frames(0.6) + [0.9] * 30 + [0.0] * 40
    assert len([u for u in run(probs, cfg) if u.final]) == 2


def test_between_thresholds_speech_goes_on():
    # Hysteresis: once speaking, 0.4 (between neg_threshold and threshold) is still speech.
    cfg = VadConfig(threshold=0.5, neg_threshold=0.35)
    probs = [0.9] * 10 + [0.4] * 60 + [0.0] * 30
    finals = [u for u in run(probs, cfg) if u.final]
    assert len(finals) == 1 and finals[0].end >= 70 * FRAME


def test_click_shorter_than_min_speech_is_dropped():
    cfg = VadConfig(min_speech_ms=200)
    assert [u for u in run([0.0] * 5 + [0.9] * 3 + [0.0] * 40, cfg) if u.final] == []


def test_partials_tick_while_speaking_then_final():
    cfg = VadConfig(partial_interval_s=1.0, end_partial_ms=0, early_decode_ms=0)
    out = run([0.9] * frames(3.5) + [0.0] * 30, cfg)
    partials = [u for u in out if not u.final]
    assert len(partials) == 3
    assert all(p.seq == out[-1].seq for p in partials) and out[-1].final
    assert [p.end for p in partials] == sorted(p.end for p in partials)


def test_early_in_a_pause_the_whole_utterance_is_offered_as_a_partial():
    cfg = VadConfig(partial_interval_s=30, end_partial_ms=192, min_silence_ms=480, speech_pad_ms=64, early_decode_ms=0)
    out = run([0.0] * 5 + [0.9] * 40 + [0.0] * 30, cfg)
    assert [u.final for u in out] == [False, True]
    early, final = out
    assert (early.start, early.end) == (final.start, final.end)  # the same audio, sooner
    # ...and a pause shorter than the early point offers nothing.
    out = run([0.9] * 40 + [0.0] * 4 + [0.9] * 40 + [0.0] * 30, cfg)
    assert [u.final for u in out] == [False, True]


def test_early_decoding_offers_the_finals_very_audio_as_a_display_partial():
    cfg = VadConfig(partial_interval_s=30, min_silence_ms=480, speech_pad_ms=96, early_decode_ms=64)
    out = run([0.0] * 5 + [0.9] * 40 + [0.0] * 30, cfg)
    assert [(u.final, u.ordered) for u in out] == [(False, False), (True, True)]  # decides nothing
    early, final = out
    assert (early.seq, early.start, early.end) == (final.seq, final.start, final.end)
    np.testing.assert_array_equal(early.audio, final.audio)  # so its words are the final's words
    # It waits for the pad (96 ms, three frames) even when asked sooner, or the final's tail would be missing...
    out = run([0.9] * 40 + [0.0] * 2 + [0.9] * 40 + [0.0] * 30, cfg)
    assert [u.final for u in out] == [False, True]
    # ...and a pause long enough for it but not for a final offers it once, then the final has more audio.
    out = run([0.9] * 40 + [0.0] * 6 + [0.9] * 40 + [0.0] * 30, cfg)
    assert [u.final for u in out] == [False, False, True]
    assert out[0].end < out[2].end and out[1].end == out[2].end


def test_an_early_decoding_stands_in_for_the_next_periodic_partial():
    cfg = VadConfig(partial_interval_s=1.0, min_silence_ms=480, speech_pad_ms=96, early_decode_ms=96)
    probs = [0.9] * frames(0.8) + [0.0] * 5 + [0.9] * frames(2.5) + [0.0] * 30
    early, *periodic, last, final = run(probs, cfg)
    assert final.final and not any(u.final for u in periodic) and last.end == final.end  # the pause that ends it
    # Two periodic partials in 2.5 s of speech, the first a whole interval after the early one
    # (not at the 1 s mark of the utterance, where it would have cost one pass more).
    assert len(periodic) == 2 and periodic[0].end - early.end >= RATE


def test_monologue_is_cut_at_max_length_at_a_pause():
    cfg = VadConfig(max_utterance_s=4.0, partial_interval_s=30, min_silence_ms=1000)
    # 3 s of speech, a 0.2 s dip (shorter than the hangover), then 5 s more.
    probs = [0.9] * frames(3) + [0.1] * frames(0.2) + [0.9] * frames(5) + [0.0] * 40
    finals = [u for u in run(probs, cfg) if u.final]
    assert len(finals) == 3
    assert finals[0].end == frames(3) * FRAME  # cut at the dip, not mid-word
    assert finals[1].start == finals[0].end  # nothing lost between the pieces
    assert all(u.end - u.start <= 4 * RATE for u in finals)


def test_speech_running_at_the_end_is_flushed():
    out = run([0.0] * 5 + [0.9] * 50, flush=True)
    assert out and out[-1].final and out[-1].end == 55 * FRAME
    assert [u for u in run([0.0] * 5 + [0.9] * 50, flush=False) if u.final] == []


@pytest.mark.parametrize("block", [160, 1600, 4096, 16000])
def test_streaming_vad_matches_whole_clip_at_any_block_size(shared_data, block):
    audio = decode_audio(str(shared_data / "asr/faster_whisper/jfk.flac"))
    audio = audio[: len(audio) // FRAME * FRAME]
    whole = get_vad_model()(audio)
    vad = StreamingVad()
    streamed = np.concatenate([vad.push(audio[i : i + block]) for i in range(0, len(audio), block)])
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_vad_run_ahead_gives_the_block_by_block_probabilities():
    """A fast replay primes the VAD with a second of audio at once; the numbers must not change."""
    from monitor.audio.source import FileSource

    source = FileSource(Path(__file__).parent / "fixtures/calls/short.flac", 1600)
    source.use_roles({"agent": 0, "customer": 1})
    audio = np.concatenate([b.roles["customer"][: b.length] for b in source])
    blocks = [audio[i : i + 1600] for i in range(0, len(audio), 1600)]
    plain = StreamingVad()
    one_by_one = [plain.push(b) for b in blocks]
    ahead = StreamingVad()
    primed = []
    for i in range(0, len(blocks), 10):
        ahead.prime(np.concatenate(blocks[i : i + 10]))
        primed += [ahead.push(b) for b in blocks[i : i + 10]]
    assert [len(p) for p in primed] == [len(p) for p in one_by_one]
    assert np.array_equal(np.concatenate(primed), np.concatenate(one_by_one))
    assert np.concatenate(primed).max() > 0.5, "the customer speaks in this call: a silent run would prove nothing"
    ahead.prime(np.zeros(5, dtype=np.float32))
    with pytest.raises(ValueError, match="more audio than was primed"):
        ahead.push(np.zeros(10, dtype=np.float32))
