"""The STT worker's backpressure policy, with a fake transcriber it can hold (a slow CPU)."""

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
