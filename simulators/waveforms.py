"""Waveform rendering from a beat and breath schedule: ECG lead II, pleth and capnogram as int16 counts.

Per-sample work is kept to table look-ups and list slicing (pure Python must render 100 bays × 437.5
samples/s cheaply): the ECG complex is a precomputed template placed at each R wave, the pleth and the
capnogram are shape tables stretched to each beat or breath. The schedules are built forward from t = 0
by callbacks into the physiology (so a cycle's length follows HR or RR at its start); sample i depends only
on (seed, i), never on how requests are chunked.

Artifacts (CLINICAL.md §2.7) are applied per whole second of signal time: leads off (flat ECG), probe off
(flat pleth), cannula dislodged (capnogram at room-air baseline), motion (EMG-like noise on the ECG, an
erratic pleth).
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from simulators import noise

#: Waveform channels: key -> (sampling rate in Hz, gain in unit per count). Issue 3: ECG ≥ 250 Hz,
#: pleth ≥ 100 Hz, capnogram ≥ 25 Hz.
CHANNELS: dict[str, tuple[float, float]] = {
    "ecg_ii": (250.0, 0.005),  # 5 µV per count
    "pleth": (125.0, 1.0),  # dimensionless counts
    "co2": (62.5, 0.1),  # 0.1 mmHg per count
}

_ECG_FS, _ECG_GAIN = CHANNELS["ecg_ii"]
_PLETH_FS = CHANNELS["pleth"][0]
_CO2_FS, _CO2_GAIN = CHANNELS["co2"]
_ECG_PRE_S, _ECG_POST_S = 0.30, 0.45
_ECG_PRE = round(_ECG_PRE_S * _ECG_FS)
_TABLE = 256  # entries per pleth / capnogram cycle
_NOISE = 4096  # noise table length (power of two)
_PTT_S = 0.20  # R wave to pleth upstroke (pulse transit time) [I]


@dataclass(frozen=True, slots=True)
class Beat:
    """A cardiac cycle: R-wave time, length (s) and pleth amplitude (relative perfusion)."""

    t: float
    length: float
    amplitude: float


@dataclass(frozen=True, slots=True)
class Breath:
    """A respiratory cycle: start, length (s) and end-tidal CO2 of its plateau (0 = no breath)."""

    t: float
    length: float
    etco2: float


def _ecg_template() -> list[int]:
    """P, QRS and T as Gaussians (mV) around the R wave, sampled at 250 Hz, in counts."""
    waves = (  # (centre s, width s, amplitude mV)
        (-0.16, 0.022, 0.12),  # P
        (-0.025, 0.008, -0.10),  # Q
        (0.0, 0.010, 1.10),  # R
        (0.025, 0.009, -0.22),  # S
        (0.25, 0.045, 0.28),  # T
    )
    n = _ECG_PRE + round(_ECG_POST_S * _ECG_FS)
    out = []
    for i in range(n):
        x = (i - _ECG_PRE) / _ECG_FS
        v = sum(a * math.exp(-((x - mu) ** 2) / (2 * s * s)) for mu, s, a in waves)
        out.append(round(v / _ECG_GAIN))
    return out


def _pleth_table() -> list[float]:
    """One pulse (phase 0..1): systolic peak and dicrotic wave, peak ≈ 1."""
    out = []
    for i in range(_TABLE):
        x = i / _TABLE
        out.append(math.exp(-((x - 0.18) ** 2) / (2 * 0.07**2)) + 0.35 * math.exp(-((x - 0.45) ** 2) / (2 * 0.06**2)))
    return out


def _co2_table() -> list[float]:
    """One breath (phase 0..1) as a fraction of EtCO2: inspiration, upstroke, sloped plateau, downstroke."""
    out = []
    for i in range(_TABLE):
        x = i / _TABLE
        if x < 0.40:
            v = 0.0
        elif x < 0.48:
            v = 0.9 * (x - 0.40) / 0.08
        elif x < 0.92:
            v = 0.9 + 0.1 * (x - 0.48) / 0.44
        else:
            v = 1.0 - (x - 0.92) / 0.08
        out.append(v)
    return out


ECG_TEMPLATE = _ecg_template()
PLETH_TABLE = _pleth_table()
CO2_TABLE = _co2_table()


class _Cycle(Protocol):
    @property
    def t(self) -> float: ...
    @property
    def length(self) -> float: ...


C = TypeVar("C", bound=_Cycle)


class _Schedule(Generic[C]):
    """Cycles (beats or breaths) built forward lazily by ``after(t, k)``."""

    def __init__(self, first: float, after: Callable[[float, int], C]) -> None:
        self._after = after
        self.items: list[C] = [after(first, 0)]
        self.times: list[float] = [first]

    def ensure(self, t: float) -> None:
        items = self.items
        while items[-1].t + items[-1].length <= t:
            last = items[-1]
            nxt = self._after(last.t + last.length, len(items))
            items.append(nxt)
            self.times.append(nxt.t)

    def overlapping(self, a: float, b: float) -> range:
        """Indices of cycles that may overlap [a, b) (the caller has ensured b)."""
        j0 = max(0, bisect.bisect_right(self.times, a) - 1)
        j1 = bisect.bisect_left(self.times, b)
        return range(j0, max(j0, j1))


class WaveRenderer:
    """Renders the three channels for one patient."""

    def __init__(
        self,
        seed: int,
        beat_after: Callable[[float, int], Beat],
        breath_after: Callable[[float, int], Breath],
        conditions: Callable[[float], frozenset[str]],
        rr: float,
    ) -> None:
        self.seed = seed
        self._beats = _Schedule(-noise.uniform(seed, 1, 0), beat_after)
        self._breaths = _Schedule(-3.0 * noise.uniform(seed, 1, 1), breath_after)
        self._conditions = conditions
        self._cond_cache: dict[int, frozenset[str]] = {}
        self._noise = [round(noise.gauss(seed, 2, k) * 4) for k in range(_NOISE)]  # ~20 µV ECG noise
        # baseline wander at the resting breathing frequency, ±0.04 mV
        period = max(8, round(_ECG_FS * 60.0 / rr))
        self._wander = [round(0.04 / _ECG_GAIN * math.sin(2 * math.pi * k / period)) for k in range(period)]
        pp = max(8, round(_PLETH_FS * 60.0 / rr))
        self._pleth_resp = [80.0 * math.sin(2 * math.pi * k / pp) for k in range(pp)]

    def _cond(self, sec: int) -> frozenset[str]:
        got = self._cond_cache.get(sec)
        if got is None:
            if len(self._cond_cache) > 600:
                self._cond_cache.clear()
            got = self._cond_cache[sec] = self._conditions(float(sec))
        return got

    def _artifact(
        self, out: list[int], start: int, fs: float, fn: Callable[[list[int], int, int, frozenset[str], int], None]
    ) -> None:
        """Call ``fn(out, lo, hi, conditions, start)`` for each whole second of signal that has any condition."""
        n = len(out)
        sec = math.floor(start / fs)
        while True:
            lo = max(0, math.ceil(sec * fs) - start)
            if lo >= n:
                return
            hi = min(n, math.ceil((sec + 1) * fs) - start)
            cond = self._cond(sec)
            if cond:
                fn(out, lo, hi, cond, start)
            sec += 1

    def samples(self, channel: str, start: int, n: int) -> list[int]:
        """Samples ``start .. start+n-1`` of a channel, int16 counts."""
        if n <= 0:
            return []
        if channel == "ecg_ii":
            out = self._ecg(start, n)
        elif channel == "pleth":
            out = self._pleth(start, n)
        elif channel == "co2":
            out = self._co2(start, n)
        else:
            raise KeyError(f"unknown channel {channel!r}")
        return [-32768 if v < -32768 else 32767 if v > 32767 else v for v in out]

    # ---- ECG --------------------------------------------------------------------------------------

    def _ecg(self, start: int, n: int) -> list[int]:
        fs = _ECG_FS
        end = start + n
        nz, wander = self._noise, self._wander
        period = len(wander)
        out = [wander[i % period] + nz[i & (_NOISE - 1)] for i in range(start, end)]
        self._beats.ensure(end / fs + _ECG_PRE_S)
        tmpl = ECG_TEMPLATE
        tl = len(tmpl)
        items = self._beats.items
        add = operator.add
        for j in self._beats.overlapping(start / fs - _ECG_POST_S, end / fs + _ECG_PRE_S):
            r = round(items[j].t * fs)
            lo = max(start, r - _ECG_PRE)
            hi = min(end, r - _ECG_PRE + tl)
            if lo >= hi:
                continue
            a, b = lo - start, hi - start
            c = lo - r + _ECG_PRE
            out[a:b] = map(add, out[a:b], tmpl[c : c + (b - a)])
        self._artifact(out, start, fs, self._ecg_artifact)
        return out

    def _ecg_artifact(self, out: list[int], lo: int, hi: int, cond: frozenset[str], start: int) -> None:
        if "leads_off" in cond:
            out[lo:hi] = [0] * (hi - lo)
        elif "motion" in cond:
            nz = self._noise
            out[lo:hi] = [v + 8 * nz[(k * 7) & (_NOISE - 1)] for k, v in enumerate(out[lo:hi], start + lo)]

    # ---- pleth ------------------------------------------------------------------------------------

    def _pleth(self, start: int, n: int) -> list[int]:
        fs = _PLETH_FS
        end = start + n
        resp = self._pleth_resp
        period = len(resp)
        base = [200.0 + resp[i % period] for i in range(start, end)]
        self._beats.ensure(end / fs)
        items = self._beats.items
        tab = PLETH_TABLE
        for j in self._beats.overlapping(start / fs - _PTT_S, end / fs - _PTT_S):
            bt = items[j]
            t0 = bt.t + _PTT_S
            lo = max(start, math.ceil(t0 * fs))
            hi = min(end, math.ceil((t0 + bt.length) * fs))
            if lo >= hi:
                continue
            amp = 1000.0 * bt.amplitude
            k = _TABLE / (bt.length * fs)
            off = t0 * fs
            for i in range(lo, hi):
                base[i - start] += amp * tab[min(_TABLE - 1, int((i - off) * k))]
        out = [round(v) for v in base]
        self._artifact(out, start, fs, self._pleth_artifact)
        return out

    def _pleth_artifact(self, out: list[int], lo: int, hi: int, cond: frozenset[str], start: int) -> None:
        if "probe_off" in cond:
            out[lo:hi] = [0] * (hi - lo)
        elif "motion" in cond:
            nz = self._noise
            out[lo:hi] = [
                v + 60 * nz[(k * 13) & (_NOISE - 1)] + 300 * nz[(k // 20) & (_NOISE - 1)]
                for k, v in enumerate(out[lo:hi], start + lo)
            ]

    # ---- capnogram --------------------------------------------------------------------------------

    def _co2(self, start: int, n: int) -> list[int]:
        fs = _CO2_FS
        end = start + n
        out = [0] * n
        self._breaths.ensure(end / fs)
        items = self._breaths.items
        tab = CO2_TABLE
        for j in self._breaths.overlapping(start / fs, end / fs):
            br = items[j]
            if br.etco2 <= 0:
                continue
            lo = max(start, math.ceil(br.t * fs))
            hi = min(end, math.ceil((br.t + br.length) * fs))
            if lo >= hi:
                continue
            amp = br.etco2 / _CO2_GAIN
            k = _TABLE / (br.length * fs)
            off = br.t * fs
            for i in range(lo, hi):
                out[i - start] = round(amp * tab[min(_TABLE - 1, int((i - off) * k))])
        self._artifact(out, start, fs, self._co2_artifact)
        return out

    def _co2_artifact(self, out: list[int], lo: int, hi: int, cond: frozenset[str], start: int) -> None:
        if "cannula_dislodged" in cond:
            nz = self._noise
            out[lo:hi] = [abs(nz[(k * 3) & (_NOISE - 1)]) for k in range(start + lo, start + hi)]
