"""A plain resting-adult signal source, kept for tests that need a calm patient without drugs.

The ketamine/midazolam patient with scenarios is ``simulators.patient.SimulatedPatient``.

Seeded and time-injected: every value is a pure function of (seed, t), so the same scenario gives the same
numbers and samples, whatever the wall clock does. Ranges follow ../shared/clinical/CLINICAL.md Table 11
(normal adult rest: HR 60–100, SpO2 95–100 %, RR 12–20, EtCO2 35–45 mmHg, temperature 36.1–37.2 °C,
beat-to-beat respiratory sinus arrhythmia ±3–8 bpm, slow drift ±3 bpm over minutes, NIBP reading-to-
reading SD ~5–8 mmHg systolic).
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

#: Waveform channels this source produces: key -> (sampling rate in Hz, gain in unit per count).
CHANNELS: dict[str, tuple[float, float]] = {
    "ecg_ii": (250.0, 0.005),  # 5 µV per count
    "pleth": (125.0, 1.0),  # dimensionless counts
    "co2": (62.5, 0.1),  # 0.1 mmHg per count
}


@dataclass(frozen=True, slots=True)
class Baseline:
    """A patient's resting values."""

    hr: float
    spo2: float
    rr: float
    etco2: float
    sys: float
    dia: float
    temp: float


def _smooth_noise(seed: int, t: float, period: float) -> float:
    """Deterministic smooth noise in [-1, 1] with about ``period`` seconds between knots."""
    k = math.floor(t / period)
    f = t / period - k
    a = random.Random(seed * 1_000_003 + k).uniform(-1.0, 1.0)
    b = random.Random(seed * 1_000_003 + k + 1).uniform(-1.0, 1.0)
    w = (1 - math.cos(math.pi * f)) / 2
    return a * (1 - w) + b * w


class RestingPatient:
    """A calm adult at rest: numerics with drift and RSA, ECG, pleth and capnogram consistent with them."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        rnd = random.Random(seed)
        # Pre-procedure anxiety often puts HR at 70–95 (CLINICAL.md Table 11); ~30–45 % hypertensive mix.
        hypertensive = rnd.random() < 0.35
        sys = rnd.uniform(135, 155) if hypertensive else rnd.uniform(110, 128)
        self.baseline = Baseline(
            hr=rnd.uniform(68, 90),
            spo2=rnd.uniform(96.5, 99.0),
            rr=rnd.uniform(12, 17),
            etco2=rnd.uniform(35, 41),
            sys=sys,
            dia=sys * rnd.uniform(0.58, 0.66),
            temp=rnd.uniform(36.4, 37.0),
        )
        self._beats: list[float] = [rnd.uniform(0.0, 0.5)]
        self._breaths: list[float] = [rnd.uniform(0.0, 2.0)]

    # ---- numerics -----------------------------------------------------------------------------

    def rr_at(self, t: float) -> float:
        """Breaths per minute at time t."""
        return self.baseline.rr + 1.5 * _smooth_noise(self.seed + 11, t, 40.0)

    def hr_at(self, t: float) -> float:
        """Instantaneous heart rate: slow drift plus respiratory sinus arrhythmia."""
        b = self.baseline
        drift = 3.0 * _smooth_noise(self.seed + 7, t, 90.0)
        rsa = 4.0 * math.sin(2 * math.pi * self.rr_at(t) / 60.0 * t)
        return b.hr + drift + rsa

    def numerics(self, t: float) -> dict[str, float]:
        """The 1 Hz numerics a monitor would display at time t (display-averaged where monitors average)."""
        b = self.baseline
        hr = b.hr + 3.0 * _smooth_noise(self.seed + 7, t, 90.0)  # display average smooths the RSA away
        spo2 = min(100.0, b.spo2 + 0.8 * _smooth_noise(self.seed + 13, t, 8.0))
        return {
            "hr": round(hr),
            "pr": round(hr + _smooth_noise(self.seed + 17, t, 5.0)),
            "spo2": round(spo2),
            "rr": round(self.rr_at(t)),
            "etco2": round(b.etco2 + 1.5 * _smooth_noise(self.seed + 19, t, 20.0)),
            "temp": round(b.temp + 0.05 * _smooth_noise(self.seed + 23, t, 600.0), 1),
        }

    def conditions(self, t: float) -> frozenset[str]:
        """No technical conditions: the resting patient's sensors stay on."""
        return frozenset()

    def nibp_duration(self, k: int) -> float:
        """A fixed 30-s cuff cycle (typical oscillometric measurement 20–45 s, CLINICAL.md §2.7)."""
        return 30.0

    def nibp(self, t: float) -> dict[str, float]:
        """An oscillometric cuff measurement finishing at time t (MAP measured, ≈ DBP + PP/3)."""
        b = self.baseline
        rnd = random.Random(self.seed * 7919 + int(t))
        sys = b.sys + rnd.gauss(0, 6.0)
        dia = b.dia + rnd.gauss(0, 4.5)
        mean = dia + (sys - dia) / 3 + rnd.gauss(0, 1.5)
        return {"nibp_sys": round(sys), "nibp_dia": round(dia), "nibp_mean": round(mean)}

    # ---- waveforms ----------------------------------------------------------------------------

    def _event_times(self, times: list[float], rate_at: Callable[[float], float], t: float) -> tuple[float, float]:
        """Start and end of the cycle (beat or breath) containing t, extending the schedule lazily."""
        while len(times) < 2 or times[-1] <= t:
            times.append(times[-1] + 60.0 / rate_at(times[-1]))
        k = bisect.bisect_right(times, t) - 1
        if k < 0:  # before the first event: mirror the first cycle backwards
            first = times[1] - times[0]
            start = times[0] - first * math.ceil((times[0] - t) / first)
            return start, start + first
        return times[k], times[k + 1]

    def beat(self, t: float) -> tuple[float, float]:
        """Start (R wave) and end of the cardiac cycle containing t."""
        return self._event_times(self._beats, self.hr_at, t)

    def breath(self, t: float) -> tuple[float, float]:
        """Start and end of the respiratory cycle containing t."""
        return self._event_times(self._breaths, self.rr_at, t)

    def samples(self, channel: str, start: int, n: int) -> list[int]:
        """Samples ``start .. start+n-1`` of a channel (sample i is at t = i / fs), as int16 counts."""
        fs, gain = CHANNELS[channel]
        out: list[int] = []
        for i in range(start, start + n):
            t = i / fs
            if channel == "ecg_ii":
                v = self._ecg(t)
            elif channel == "pleth":
                v = self._pleth(t)
            elif channel == "co2":
                v = self._co2(t)
            else:  # pragma: no cover - CHANNELS is the source of truth
                raise KeyError(channel)
            out.append(max(-32768, min(32767, round(v / gain))))
        return out

    def _ecg(self, t: float) -> float:
        """Lead II in mV: P, QRS and T waves as Gaussians around the R wave."""
        start, end = self.beat(t)
        since_r = t - start
        x = since_r if since_r < (end - start) * 0.7 else t - end  # P and Q belong to the next beat
        wander = 0.04 * math.sin(2 * math.pi * self.rr_at(t) / 60.0 * t)

        def g(mu: float, sigma: float, amp: float) -> float:
            return amp * math.exp(-((x - mu) ** 2) / (2 * sigma * sigma))

        return (
            g(-0.16, 0.022, 0.12)  # P
            + g(-0.025, 0.008, -0.10)  # Q
            + g(0.0, 0.010, 1.10)  # R
            + g(0.025, 0.009, -0.22)  # S
            + g(0.25, 0.045, 0.28)  # T
            + wander
        )

    def _pleth(self, t: float) -> float:
        """Photoplethysmogram, delayed ~0.2 s after the R wave, with a dicrotic notch."""
        start, end = self.beat(t - 0.2)
        x = (t - 0.2 - start) / (end - start)
        systolic = math.exp(-((x - 0.18) ** 2) / (2 * 0.07**2))
        dicrotic = 0.35 * math.exp(-((x - 0.45) ** 2) / (2 * 0.06**2))
        resp = 0.08 * math.sin(2 * math.pi * self.rr_at(t) / 60.0 * t)
        return 1000.0 * (systolic + dicrotic + resp) + 200.0

    def _co2(self, t: float) -> float:
        """Capnogram in mmHg: inspiratory baseline, expiratory upstroke, alveolar plateau at EtCO2."""
        start, end = self.breath(t)
        x = (t - start) / (end - start)
        et = self.baseline.etco2 + 1.5 * _smooth_noise(self.seed + 19, t, 20.0)
        if x < 0.40:  # inspiration
            return 0.0
        if x < 0.48:  # expiratory upstroke
            return et * 0.9 * (x - 0.40) / 0.08
        if x < 0.92:  # alveolar plateau rising slightly
            return et * (0.9 + 0.1 * (x - 0.48) / 0.44)
        return et * (1.0 - (x - 0.92) / 0.08)  # inspiratory downstroke
