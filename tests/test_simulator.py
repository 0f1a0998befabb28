"""The physiology source: waveforms consistent with the numerics, seeking, and the simulated adapter."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from monitors.adapters.simulated import Fault, SimulatedAdapter
from monitors.base import Batch
from monitors.models import DeviceAlarm, Quality, Reading, WaveformChunk
from simulators.patient import CHANNELS, SimulatedPatient
from simulators.scenario import load_scenario


def r_peaks(ecg: list[int], fs: float) -> list[float]:
    """Times of R waves: local maxima above half the maximum, at least 0.25 s apart."""
    thr = max(ecg) * 0.5
    out: list[float] = []
    for i in range(1, len(ecg) - 1):
        if ecg[i] > thr and ecg[i] >= ecg[i - 1] and ecg[i] > ecg[i + 1] and (not out or i / fs - out[-1] > 0.25):
            out.append(i / fs)
    return out


def upstrokes(co2: list[int], level: int) -> int:
    """Breaths: crossings of ``level`` counts upwards."""
    return sum(1 for a, b in itertools.pairwise(co2) if a < level <= b)


@pytest.mark.parametrize(("name", "minute"), [("uneventful", 10), ("tachycardia", 30), ("vasovagal", 73)])
def test_ecg_rate_follows_hr(name: str, minute: float) -> None:
    p = SimulatedPatient(load_scenario(name))
    fs, _ = CHANNELS["ecg_ii"]
    t0 = minute * 60.0
    peaks = r_peaks(p.samples("ecg_ii", int(t0 * fs), int(30 * fs)), fs)
    rate = 60.0 * (len(peaks) - 1) / (peaks[-1] - peaks[0])
    mean_hr = sum(p.state(t0 + k).hr for k in range(30)) / 30
    assert rate == pytest.approx(mean_hr, rel=0.06)


def test_capnogram_plateau_is_etco2_and_breath_rate_is_rr() -> None:
    p = SimulatedPatient(load_scenario("oversedation"))
    fs, gain = CHANNELS["co2"]
    for minute in (10.0, 33.0):  # before and during hypoventilation
        t0 = minute * 60.0
        co2 = p.samples("co2", int(t0 * fs), int(60 * fs))
        s = p.state(t0 + 30)
        assert max(co2) * gain == pytest.approx(s.etco2, abs=3.0)
        breaths = upstrokes(co2, int(5 / gain))
        mean_rr = sum(p.state(t0 + k).rr for k in range(60)) / 60
        assert abs(breaths - mean_rr) <= 2.5, (minute, breaths, mean_rr)


def test_pleth_amplitude_follows_perfusion() -> None:
    p = SimulatedPatient(load_scenario("vasovagal"))
    fs, _ = CHANNELS["pleth"]

    def swing(minute: float) -> int:
        x = p.samples("pleth", int(minute * 60 * fs), int(10 * fs))
        return max(x) - min(x)

    assert p.state(73.5 * 60).perfusion < 0.6 * p.state(65 * 60).perfusion
    assert swing(73.5) < 0.7 * swing(65)


def test_samples_do_not_depend_on_chunking_or_history() -> None:
    sc = load_scenario("emergence")  # includes motion artifact windows
    for ch, (fs, _) in CHANNELS.items():
        start = int(50 * 60 * fs) - 7
        n = int(20 * fs)
        whole = SimulatedPatient(sc).samples(ch, start, n)
        chunked: list[int] = []
        fresh = SimulatedPatient(sc)
        i = start
        for k in itertools.cycle((1, 13, 50, 7)):
            if i >= start + n:
                break
            k = min(k, start + n - i)
            chunked.extend(fresh.samples(ch, i, k))
            i += k
        assert chunked == whole, ch
        assert all(-32768 <= v <= 32767 for v in whole)


def test_motion_makes_the_pleth_erratic_and_spo2_falsely_low() -> None:
    sc = load_scenario("emergence")
    p = SimulatedPatient(sc)
    motion = next(e for e in sc.events if e.kind == "motion")
    t = motion.start_s + 20
    assert "motion" in p.conditions(t)
    assert p.numerics(t)["spo2"] is not None
    assert p.numerics(t)["spo2"] < round(p.state(t).spo2)  # type: ignore[operator]
    assert p.nibp(t)["nibp_sys"] is None  # continuous movement: the cuff fails (§2.7)


def test_estimated_concentrations_are_exposed() -> None:
    p = SimulatedPatient(load_scenario("uneventful"))
    before = p.estimated_concentrations(60.0)
    assert before["ketamine_cp"] == 0.0 and before["midazolam_cp"] == 0.0
    during = p.estimated_concentrations(50 * 60.0)
    assert 80 < during["ketamine_cp"] < 200  # Table 7 regimen B range
    assert 0 < during["ketamine_ce"] < during["ketamine_cp"] * 1.1
    assert during["midazolam_ce"] > 0


def test_nibp_cycle_duration_is_about_30_s() -> None:
    p = SimulatedPatient(load_scenario("uneventful"))
    d = [p.nibp_duration(k) for k in range(50)]
    assert all(25 <= x <= 40 for x in d) and len(set(d)) > 40


class SteppingClock:
    """A monotonic clock that advances a fixed step on every read (no real waiting in tests)."""

    def __init__(self, step: float) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


WALL0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


async def run_adapter(adapter: SimulatedAdapter, until_s: float) -> list[Reading | WaveformChunk | DeviceAlarm]:
    """Everything the adapter yields until its device time passes ``until_s`` (scenario seconds)."""
    got: list[Reading | WaveformChunk | DeviceAlarm] = []
    async with adapter:
        async for item in adapter.readings():
            items = item.items if isinstance(item, Batch) else (item,)
            for it in items:
                assert isinstance(it, Reading | WaveformChunk | DeviceAlarm)
                got.append(it)
                t = it.t_device if isinstance(it, Reading) else it.t0 if isinstance(it, WaveformChunk) else it.t
                if (t - WALL0).total_seconds() > until_s:
                    return got
    return got


def make_adapter(
    name: str, *, offset_min: float, speed: float = 60.0, nibp_interval_s: float = 180.0, nibp_first_s: float = 5.0
) -> SimulatedAdapter:
    return SimulatedAdapter(
        name="sim",
        device_id="dev1",
        source=SimulatedPatient(load_scenario(name)),
        channels=CHANNELS,
        speed=speed,
        offset_s=offset_min * 60.0,
        clock=SteppingClock(0.15),
        wall=lambda: WALL0 + timedelta(minutes=offset_min),
        nibp_interval_s=nibp_interval_s,
        nibp_first_s=nibp_first_s,
    )


async def test_adapter_reports_technical_conditions_as_device_alarms_and_invalid_readings() -> None:
    adapter = make_adapter("sensor_off", offset_min=19.5)
    got = await run_adapter(adapter, 22 * 60.0)
    alarms = [a for a in got if isinstance(a, DeviceAlarm)]
    assert [(a.code, a.active) for a in alarms] == [("SPO2_PROBE_OFF", True), ("SPO2_PROBE_OFF", False)]
    assert alarms[0].alarm_kind.value == "technical"
    on = (alarms[0].t - WALL0).total_seconds()
    off = (alarms[1].t - WALL0).total_seconds()
    assert 20 * 60 <= on < 20 * 60 + 20 and 21 * 60 <= off < 21 * 60 + 20
    spo2 = [r for r in got if isinstance(r, Reading) and r.param == "spo2"]
    blank = [r for r in spo2 if 20 * 60 + 1 < (r.t_device - WALL0).total_seconds() < 21 * 60]
    assert blank and all(r.value is None and r.quality is Quality.INVALID for r in blank)
    assert any(r.value is not None and r.quality is Quality.VALID for r in spo2)
    assert sum(1 for r in got if isinstance(r, Reading) and r.param == "hr") >= 2.4 * 60  # every second


async def test_adapter_goes_silent_while_disconnected() -> None:
    adapter = make_adapter("disconnect", offset_min=24.5)
    got = await run_adapter(adapter, 27.5 * 60.0)
    times = sorted(
        (it.t_device if isinstance(it, Reading) else it.t0 if isinstance(it, WaveformChunk) else it.t) - WALL0
        for it in got
    )
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert max(gaps) >= 80  # 90 s disconnected, minus the ticks at the edges
    assert times[-1].total_seconds() > 26.5 * 60  # and it came back


async def test_adapter_nibp_arrives_first_at_nibp_first_s_then_about_30_s_after_each_cycle_start() -> None:
    adapter = make_adapter("uneventful", offset_min=0.0, nibp_first_s=4.0, nibp_interval_s=120.0)
    source = adapter.source
    got = await run_adapter(adapter, 9 * 60.0)
    arrivals = sorted(
        {(r.t_device - WALL0).total_seconds() for r in got if isinstance(r, Reading) and r.param == "nibp_sys"}
    )
    assert arrivals[0] == pytest.approx(4.0)
    first_start = 4.0 - source.nibp_duration(0)
    for k, t in enumerate(arrivals):
        assert t == pytest.approx(first_start + 120.0 * k + source.nibp_duration(k))
        assert 25 <= t - (first_start + 120.0 * k) <= 40
    assert len(arrivals) == 5


async def test_adapter_runs_faster_than_real_time() -> None:
    # 0.15 s of (stepped) clock per read, two reads per tick, speed 10: a simulated minute in ~20 ticks
    adapter = make_adapter("uneventful", offset_min=0.0, speed=10.0)
    got = await run_adapter(adapter, 60.0)
    for ch, (fs, _) in CHANNELS.items():
        n = sum(len(w.samples) for w in got if isinstance(w, WaveformChunk) and w.channel == ch)
        assert n == pytest.approx(60 * fs, rel=0.06), ch
    assert adapter.fault is Fault.NONE
