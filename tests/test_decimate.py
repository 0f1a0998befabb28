"""Station waveforms: peak-preserving decimation that is continuous across chunks."""

from __future__ import annotations

import itertools

from app.decimate import Decimator


def test_factor_brings_rate_under_the_cap() -> None:
    d = Decimator(25.0)
    assert (d.factor(250), d.factor(125), d.factor(62.5), d.factor(25), d.factor(10)) == (10, 5, 3, 1, 1)


def test_chunks_continue_and_peaks_survive() -> None:
    d = Decimator(25.0)
    fs = 250.0
    signal = [0] * 500
    signal[123] = 1000  # an R wave one sample wide
    outs = []
    for k in range(0, 500, 37):  # awkward chunk sizes that do not divide the factor
        got = d.feed(("dev", "ecg_ii"), k / fs, fs, signal[k : k + 37])
        if got is not None:
            outs.append(got)
    samples = [s for _, _, block in outs for s in block]
    assert len(samples) == 50  # 500 samples / 10
    assert max(samples) == 1000  # the peak is not averaged away
    # output blocks are contiguous in time at 25 Hz
    for (t0a, fsa, a), (t0b, _, _) in itertools.pairwise(outs):
        assert abs(t0a + len(a) / fsa - t0b) < 1e-9


def test_gap_restarts_the_stream() -> None:
    d = Decimator(25.0)
    assert d.feed(("dev", "pleth"), 0.0, 125.0, [1] * 7) is not None
    got = d.feed(("dev", "pleth"), 10.0, 125.0, [2] * 5)  # 10 s later: the 2 carried samples are dropped
    assert got is not None
    t0, fs, samples = got
    assert (t0, fs, samples) == (10.0, 25.0, [2])
