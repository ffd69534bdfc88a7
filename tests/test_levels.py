"""Loudness in LUFS: the streaming meter agrees with pyloudnorm (BS.1770) and follows level changes."""

import numpy as np
import pyloudnorm
import pytest

from monitor.audio.levels import LoudnessMeter

RATE = 16000


def tone(db, seconds=3.0, hz=997.0):
    t = np.arange(int(RATE * seconds)) / RATE
    return (10 ** (db / 20) * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("level_db", [-30.0, -20.0, -6.0])
def test_steady_tone_matches_pyloudnorm(level_db):
    x = tone(level_db)
    meter = LoudnessMeter(RATE)
    last = [meter.push(x[i : i + 1600]) for i in range(0, len(x), 1600)][-1]
    assert last == pytest.approx(pyloudnorm.Meter(RATE).integrated_loudness(x), abs=0.05)


def test_louder_by_10_db_reads_10_lu_higher_and_silence_reads_the_floor():
    meter = LoudnessMeter(RATE, floor_lufs=-70.0)
    quiet = [meter.push(b) for b in np.split(tone(-35.0, 2.0), 20)][-1]
    loud = [meter.push(b) for b in np.split(tone(-25.0, 2.0), 20)][-1]
    silent = [meter.push(b) for b in np.split(np.zeros(RATE, np.float32), 10)][-1]
    assert loud - quiet == pytest.approx(10.0, abs=0.1)
    assert silent == -70.0


def test_window_is_momentary_400_ms():
    meter = LoudnessMeter(RATE, window_s=0.4)
    for b in np.split(np.zeros(RATE, np.float32), 10):
        meter.push(b)
    burst = tone(-20.0, 0.1)
    readings = [meter.push(burst)] + [meter.push(np.zeros(1600, np.float32)) for _ in range(5)]
    # 100 ms of tone is seen for four hops (the 400 ms window), then only the filters' ringing.
    assert all(r > -30 for r in readings[:4]) and readings[4] < -60
