"""The STT worker's backpressure policy, with a fake transcriber it can hold (a slow CPU)."""

import threading
import time

import numpy as np
from fakes import FakeTranscriber

from monitor.stt.segmenter import Utterance
from monitor.stt.worker import SttWorker


def utt(role, seq, n, final):
    return Utterance(role, seq, 0, n, np.zeros(n, np.float32), final)


def test_finals_first_stale_partials_dropped_no_final_lost():
    fake = FakeTranscriber()
    done = []
    worker = SttWorker(fake, lambda u, words: done.append((u.role, u.seq, u.final)), final_queue=8)
    worker.start()
    fake.gate.clear()  # the model is busy: everything below waits
    worker.submit(utt("agent", 0, 100, final=True))
    for n in (200, 300, 400):  # three partials of the customer's utterance 0: only the newest survives
        worker.submit(utt("customer", 0, n, final=False))
    worker.submit(utt("agent", 1, 500, final=True))
    worker.submit(utt("customer", 1, 600, final=False))
    worker.submit(utt("customer", 0, 700, final=True))  # finalising 0 drops its waiting partial
    fake.gate.set()
    for _ in range(500):
        if len(done) == 4:
            break
        time.sleep(0.01)
    worker.close()
    # Finals in order, then the one live partial; the customer's stale partials never reach the model.
    assert done == [("agent", 0, True), ("agent", 1, True), ("customer", 0, True), ("customer", 1, False)]
    assert worker.partials_dropped == 3


def test_full_final_queue_blocks_the_producer_instead_of_dropping():
    import threading

    fake = FakeTranscriber()
    done = []
    worker = SttWorker(fake, lambda u, words: done.append(u.seq), final_queue=2)
    worker.start()
    fake.gate.clear()
    producer = threading.Thread(target=lambda: [worker.submit(utt("agent", i, 10, True)) for i in range(6)])
    producer.start()
    producer.join(0.5)
    assert producer.is_alive()  # it waits for room rather than dropping a final
    fake.gate.set()
    producer.join(10)
    worker.close()
    assert done == list(range(6))


def test_a_final_over_the_audio_already_decoded_reuses_the_words():
    fake = FakeTranscriber()
    done = []
    worker = SttWorker(fake, lambda u, words: done.append((u.final, [w.text for w in words])), final_queue=8)
    worker.start()
    audio = np.arange(800, dtype=np.float32)
    worker.submit(Utterance("customer", 3, 100, 900, audio, final=False))  # early in the pause
    for _ in range(500):
        if done:
            break
        time.sleep(0.01)
    worker.submit(Utterance("customer", 3, 100, 900, audio, final=True))  # the hangover ended: same audio
    worker.submit(Utterance("customer", 4, 1000, 1400, audio[:400], final=True))  # another utterance
    worker.close()
    assert fake.calls == [800, 400]  # one pass for the first utterance, not two
    assert done == [(False, ["len800"]), (True, ["len800"]), (True, ["len400"])]


def _wait_for(cond, tries=1000):
    for _ in range(tries):
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_with_two_lanes_a_final_does_not_wait_behind_a_display_partial():
    fake = FakeTranscriber(parallel=2)
    fake.holds[300] = threading.Event()  # the customer's display partial takes long
    done = []
    worker = SttWorker(fake, lambda u, words: done.append((u.role, u.seq, u.final)), final_queue=8)
    worker.start()
    worker.submit(utt("customer", 0, 300, final=False))
    assert _wait_for(lambda: fake.started == [300])  # the partial is in the model
    worker.submit(utt("agent", 0, 100, final=True))
    assert _wait_for(lambda: done == [("agent", 0, True)])  # out while the partial is still being decoded
    fake.holds[300].set()
    worker.close()
    assert done == [("agent", 0, True), ("customer", 0, False)]


def test_with_two_lanes_results_keep_their_order_and_a_final_reuses_a_decoding_in_flight():
    fake = FakeTranscriber(parallel=2)
    fake.holds[500] = threading.Event()  # the agent's final is slow
    done = []
    worker = SttWorker(fake, lambda u, words: done.append((u.role, u.seq, u.final, words[0].text)), final_queue=8)
    worker.start()
    audio = np.zeros(700, np.float32)
    fake.holds[700] = threading.Event()
    worker.submit(Utterance("customer", 2, 0, 700, audio, final=False))  # early decoding of the pause
    assert _wait_for(lambda: fake.started == [700])
    worker.submit(utt("agent", 0, 500, final=True))
    worker.submit(Utterance("customer", 2, 0, 700, audio, final=True))  # same audio: waits for those words
    assert _wait_for(lambda: fake.started == [700, 500])
    fake.holds[700].set()
    assert _wait_for(lambda: done)
    assert done == [("customer", 2, False, "len700")]  # the agent's earlier final is not out, so neither is this
    fake.holds[500].set()
    worker.close()
    assert done == [("customer", 2, False, "len700"), ("agent", 0, True, "len500"), ("customer", 2, True, "len700")]
    assert sorted(fake.calls) == [500, 700]  # one pass each


def test_with_two_lanes_the_early_decoding_of_a_pause_starts_beside_a_periodic_partial():
    fake = FakeTranscriber(parallel=2)
    fake.holds[300] = threading.Event()
    done = []
    worker = SttWorker(fake, lambda u, words: done.append((u.role, u.early)), final_queue=8)
    worker.start()
    worker.submit(utt("customer", 0, 300, final=False))  # a periodic partial, in the model
    assert _wait_for(lambda: fake.started == [300])
    worker.submit(Utterance("agent", 0, 0, 200, np.zeros(200, np.float32), final=False, early=True))
    assert _wait_for(lambda: done == [("agent", True)])  # decoded while the customer's partial still is
    fake.holds[300].set()
    worker.close()
    assert done == [("agent", True), ("customer", False)]
