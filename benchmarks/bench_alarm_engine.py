"""Alarm engine cost per ``evaluate`` on a realistic 90-minute session (the what-if review re-runs one).

Builds the default profile (``load_profile()``) and feeds one bay's inputs for a 90-minute outpatient
ketamine session, in time order, the way the live pipeline and the what-if re-run do:

- one monitor message a second (``ReadingsInput`` of hr, pr, spo2, rr, etco2) and one NIBP measurement
  (sys/dia/mean as one ``ReadingsInput``) every 3 minutes;
- a ``Tick`` in every second without a monitor message (an SpO₂ probe-off gap with its device condition,
  a monitor going stale and back);
- phase changes planned → baseline → premedication → infusion → recovery → ready_for_discharge, charted
  RASS / MOAA/S scores, a manual baseline;
- a desaturation episode (SpO₂ down to 84 %: MEDIUM, then HIGH, latched, escalated, acknowledged), an
  hypertensive NIBP, a questionable-quality run, an apnoea with EtCO₂ 0 and an audio pause.

Measures each ``evaluate`` (``perf_counter_ns``) over ``--repeats`` runs of the whole stream and reports
µs per evaluate (p50, p90, p99, max, mean) and the total per 90-minute re-run (best and median of the
repeats). A digest of every event and of the final state is saved as well, so that runs before and after
an engine change can be checked to behave the same.

Run: ``.venv/bin/python -m benchmarks.bench_alarm_engine [--label before|after] [--repeats 5]``; results
are kept per label in benchmarks/results/alarm_engine.json (other labels already there are kept).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from app.alarms.engine import AlarmEngine
from app.alarms.model import (
    AckInput,
    AlarmInput,
    AudioPauseInput,
    BaselineInput,
    ChartInput,
    DeviceConditionInput,
    DeviceStatusInput,
    Phase,
    PhaseInput,
    ReadingInput,
    ReadingsInput,
    Scale,
    Tick,
)
from app.alarms.profile import load_profile
from benchmarks.common import RESULTS, machine, save
from monitors.models import DeviceState, Quality

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SESSION_S = 90 * 60
NIBP_EVERY_S = 180
MON = "mon-1"


def _vitals(t: int) -> dict[str, float | None]:
    """The monitor's 1 Hz values at second ``t`` (small deterministic wobble around normal)."""
    w = (t * 7919) % 11 - 5  # -5..5
    v: dict[str, float | None] = {
        "hr": 76.0 + w * 0.6,
        "pr": 76.0 + w * 0.5,
        "spo2": 97.0 + (w % 3) * 0.5,
        "rr": 14.0 + (w % 4) * 0.5,
        "etco2": 37.0 + (w % 5) * 0.4,
    }
    if 1500 <= t < 1620:  # desaturation: 91 %, then 88 %, then 84 %, recovering
        v["spo2"] = 91.0 if t < 1525 else 88.0 if t < 1560 else 84.0 if t < 1575 else 95.0
    if 2400 <= t < 2500:  # tachycardia
        v["hr"] = 118.0 + w
    if 3300 <= t < 3340:  # apnoea: flat capnogram
        v["rr"], v["etco2"] = 0.0, 0.0
    return v


def session() -> list[tuple[float, AlarmInput]]:
    """The inputs of one 90-minute session, as (seconds from T0, input), in time order."""
    out: list[tuple[float, AlarmInput]] = []
    phases = {
        0: Phase.BASELINE,
        420: Phase.PREMEDICATION,
        600: Phase.INFUSION,
        3600: Phase.RECOVERY,
        5100: Phase.READY_FOR_DISCHARGE,
    }
    nurse = "nurse"
    for t in range(SESSION_S):
        at = float(t)
        if t in phases:
            out.append((at, PhaseInput(phase=phases[t])))
        if t == 300:
            out.append((at, BaselineInput(param="nibp_sys", value=128.0, user=nurse)))
        if t > 600 and t % 600 == 30:  # charted every 10 min during infusion and recovery
            out.append((at, ChartInput(scale=Scale.RASS, value=-1 if t < 3600 else 0, user=nurse)))
            out.append((at, ChartInput(scale=Scale.MOAAS, value=4, user=nurse)))
        if t == 1590:
            out.append((at + 0.5, AudioPauseInput(user=nurse)))
        if t in (1600, 2480, 3360):
            out.append((at + 0.5, AckInput(user=nurse)))
        if t == 900:
            out.append((at, DeviceConditionInput(device_id=MON, code="SPO2_PROBE_OFF", text="probe off")))
        if t == 920:
            out.append((at, DeviceConditionInput(device_id=MON, code="SPO2_PROBE_OFF", active=False)))
        if t == 4200:
            out.append((at, DeviceStatusInput(device_id=MON, state=DeviceState.STALE)))
        if t == 4215:
            out.append((at, DeviceStatusInput(device_id=MON, state=DeviceState.ONLINE)))
        if t % NIBP_EVERY_S == 5:
            sys_ = 172.0 if 1800 <= t < 2200 else 126.0 + (t // NIBP_EVERY_S) % 5
            nibp = {"nibp_sys": sys_, "nibp_dia": 78.0, "nibp_mean": 94.0}
            out.append((at + 0.2, ReadingsInput(readings=tuple(_reading(p, x) for p, x in nibp.items()))))
        if 900 <= t < 920 or 4200 <= t < 4215:  # probe off / monitor stale: no monitor message
            out.append((at + 0.9, Tick()))
            continue
        vitals = _vitals(t)
        q = Quality.QUESTIONABLE if 2000 <= t < 2030 else Quality.VALID
        out.append(
            (
                at + 0.9,
                ReadingsInput(readings=tuple(_reading(p, x, q if p == "spo2" else None) for p, x in vitals.items())),
            )
        )
    return out


def _reading(param: str, value: float | None, quality: Quality | None = None) -> ReadingInput:
    return ReadingInput(param=param, value=value, quality=quality or Quality.VALID, device_id=MON)


def run_once(engine: AlarmEngine, stream: list[tuple[float, AlarmInput]]) -> tuple[list[int], str, int]:
    """One pass: ns per evaluate, digest of all events and the final state, number of events."""
    state = engine.new_state()
    times: list[int] = []
    digest = hashlib.sha256()
    n_events = 0
    clock = time.perf_counter_ns
    for t, inp in stream:
        now = T0 + timedelta(seconds=t)
        t0 = clock()
        state, events = engine.evaluate(state, inp, now)
        times.append(clock() - t0)
        for e in events:
            digest.update(e.model_dump_json().encode())
        n_events += len(events)
    digest.update(state.model_dump_json().encode())
    return times, digest.hexdigest(), n_events


def _pct(sorted_us: list[float], q: float) -> float:
    return sorted_us[min(len(sorted_us) - 1, round(q * (len(sorted_us) - 1)))]


def main() -> dict[str, Any]:
    """Run the benchmark, print it and save it (per label) as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", default="latest", help="name of this run in the JSON (e.g. before, after)")
    ap.add_argument("--repeats", type=int, default=5, help="passes over the 90-minute stream")
    args = ap.parse_args()

    profile = load_profile()
    engine = AlarmEngine(profile)
    stream = session()
    engine.evaluate(engine.new_state(), Tick(), T0)  # warm imports and caches
    all_us: list[float] = []
    totals: list[float] = []
    digests: set[str] = set()
    n_events = 0
    for _ in range(args.repeats):
        ns, digest, n_events = run_once(engine, stream)
        digests.add(digest)
        all_us.extend(x / 1000 for x in ns)
        totals.append(sum(ns) / 1e9)
    if len(digests) != 1:
        raise SystemExit(f"the engine is not deterministic: {len(digests)} different digests")
    us = sorted(all_us)
    run: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(),
        "evaluations_per_session": len(stream),
        "events_per_session": n_events,
        "repeats": args.repeats,
        "us_per_evaluate": {
            "p50": round(_pct(us, 0.50), 1),
            "p90": round(_pct(us, 0.90), 1),
            "p99": round(_pct(us, 0.99), 1),
            "max": round(us[-1], 1),
            "mean": round(statistics.fmean(us), 1),
        },
        "session_total_s": {"best": round(min(totals), 3), "median": round(statistics.median(totals), 3)},
        "digest": digests.pop(),
        "load_average": machine()["load_average"],
    }
    path = RESULTS / "alarm_engine.json"
    runs: dict[str, Any] = {}
    if path.exists():
        try:
            runs = dict(json.loads(path.read_text()).get("runs", {}))
        except (ValueError, AttributeError):
            runs = {}
    runs[args.label] = run
    result: dict[str, Any] = {
        "profile": profile.id,
        "rules": len(profile.rules),
        "stream": "90-min session: 1 Hz hr/pr/spo2/rr/etco2, NIBP every 3 min, ticks in gaps, phases, charts, "
        "desaturation, tachycardia, apnoea, hypertension, probe off, stale monitor, ack, audio pause",
        "runs": runs,
    }
    if "before" in runs and args.label != "before":
        b, a = runs["before"], run
        result["speedup_vs_before"] = {
            "p50": round(b["us_per_evaluate"]["p50"] / a["us_per_evaluate"]["p50"], 2),
            "p99": round(b["us_per_evaluate"]["p99"] / a["us_per_evaluate"]["p99"], 2),
            "session_total_best": round(b["session_total_s"]["best"] / a["session_total_s"]["best"], 2),
            "same_events_and_state": b["digest"] == a["digest"],
        }
    saved = save("alarm_engine", result)
    u = run["us_per_evaluate"]
    print(
        f"{args.label}: {len(stream)} evaluations, {n_events} events per session; µs per evaluate "
        f"p50 {u['p50']} p90 {u['p90']} p99 {u['p99']} max {u['max']} mean {u['mean']}; "
        f"session total best {run['session_total_s']['best']} s, median {run['session_total_s']['median']} s"
    )
    if "speedup_vs_before" in result:
        print(f"speed-up vs before: {result['speedup_vs_before']}")
    print(f"saved {saved}")
    return result


if __name__ == "__main__":
    main()
