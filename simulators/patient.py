"""A patient under ketamine (+ midazolam): PK/PD, vital signs, technical conditions and waveforms.

``SimulatedPatient(scenario, seed)`` is a ``SignalSource`` for monitors/adapters/simulated.py and the
device emulators. Every output is a pure function of (scenario, seed, t): the drug models are integrated
exactly on a lazily extended grid, noise is hashed from (seed, stream, index), and the beat and breath
schedules are built forward from t = 0, so any time can be evaluated (seeking) and the same seed gives
the same numbers and samples bit for bit, however the caller chunks its requests.

Clinical defaults (all cite ../shared/clinical/CLINICAL.md):
- baselines: Table 11 (HR 60–100, anxious 70–95; SBP mix with ~35 % hypertensive; SpO2 95–100 %, 98–100 %
  on O2; RR 14 ± 3; EtCO2 38 ± 3 minus nasal-sampling offset; temperature 36.1–37.2 °C);
- hemodynamic PD: §2.5 Emax models (SBP Emax 30 %, DBP 25 %, EC50 500 ng/mL; HR Emax 45 %, EC50 1500),
  midazolam factor 0.75, hypertension/age ≥ 60 factor 1.5, individual η log-normal CV 60 %;
- anxiety offset +5–10 % decaying with midazolam (t½ 10 min), §2.5;
- respiration: midazolam RR −10 % and EtCO2 +2 mmHg at peak; ketamine leaves RR unchanged or slightly
  raised (§2.5); apnoea: EtCO2 disappears at once, SpO2 flat for a lag (median 60 s, 5–240 s, longer on O2)
  then falls 0.5–1 %/s (§2.5, Table 9);
- sedation: additive U = Ce_ket/600 + Ce_mdz/80 mapped to MOAA/S (§2.5); dissociation CADSS ≈ 0.04·Ce;
- temperature drifts −0.2 °C/h under sedation (Table 11).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulators import noise
from simulators.pk import CLEMENTS, MIDAZOLAM, MODELS, Action, DoseEvent, DrugModel
from simulators.scenario import ARTIFACTS, Event, Scenario
from simulators.waveforms import CHANNELS, Beat, Breath, WaveRenderer

__all__ = ["CHANNELS", "SimState", "SimulatedPatient", "Traits"]

# noise streams (arbitrary distinct integers)
_S_TRAITS, _S_HR, _S_BP, _S_SPO2, _S_RR, _S_CO2, _S_TEMP, _S_NIBP, _S_BEAT, _S_BREATH, _S_MOTION, _S_APNOEA = range(
    100, 112
)

# §2.5 hemodynamic PD
SBP_EMAX, DBP_EMAX, BP_EC50 = 0.30, 0.25, 500.0
HR_EMAX, HR_EC50 = 0.45, 1500.0
M_MIDAZOLAM, M_RISK = 0.75, 1.5
ETA_CV = 0.60
# §2.5 sedation model
C50_KET, C50_MDZ = 600.0, 80.0
#: U at which MOAA/S = 3 is 1 (awakening ~640 ng/mL); with a Hill slope of 2, U50 = 1.5 ** 0.5.
MOAAS_U50, MOAAS_GAMMA = 1.5**0.5, 2.0
#: Ce of midazolam at the peak after 2 mg in 70 kg with the placeholder PK (≈ 49 ng/mL) [I].
MDZ_PEAK_CE = 50.0


@dataclass(frozen=True, slots=True)
class Traits:
    """A patient's individual constants (drawn from the seed unless the scenario fixes them)."""

    weight_kg: float
    age: int
    hypertensive: bool
    supplemental_o2: bool
    hr: float
    sbp: float
    dbp: float
    spo2: float
    rr: float
    etco2: float
    temp: float
    anxiety: float
    pressor_eta: float
    hr_eta: float
    rsa_bpm: float
    cl_factor: float
    v1_factor: float


@dataclass(frozen=True, slots=True)
class SimState:
    """The patient's true state at one instant (before the monitor's artifacts)."""

    t: float
    hr: float
    sbp: float
    dbp: float
    map: float
    spo2: float
    rr: float
    etco2: float
    temp: float
    perfusion: float  # pleth amplitude relative to baseline
    sedation: float  # MOAA/S on a continuous 0–5 scale
    agitation: float  # RASS points above 0
    dissociation: float  # CADSS estimate
    cp_ketamine: float
    ce_ketamine: float
    cp_midazolam: float
    ce_midazolam: float
    apnoeic: bool


def _lognormal(seed: int, k: int, cv: float) -> float:
    sigma = math.sqrt(math.log(1.0 + cv * cv))
    return math.exp(sigma * noise.gauss(seed, _S_TRAITS, k) - sigma * sigma / 2.0)


def draw_traits(scenario: Scenario, seed: int) -> Traits:
    """Individual constants: the scenario's patient spec, the rest drawn from CLINICAL.md Table 11 / §2.5."""
    p = scenario.patient

    def u(k: int, lo: float, hi: float) -> float:
        return lo + (hi - lo) * noise.uniform(seed, _S_TRAITS, k)

    hypertensive = p.hypertensive if p.hypertensive is not None else noise.uniform(seed, _S_TRAITS, 0) < 0.35
    elderly = p.age >= 60
    b = p.baseline
    sbp = b.get("sbp", u(1, 135, 158) if hypertensive else u(1, 108, 128))
    if p.supplemental_o2:
        spo2 = u(4, 98.5, 99.8)
    else:
        spo2 = u(4, 94.5, 97.5) if elderly else u(4, 96.5, 99.0)
    return Traits(
        weight_kg=p.weight_kg,
        age=p.age,
        hypertensive=hypertensive,
        supplemental_o2=p.supplemental_o2,
        hr=b.get("hr", u(2, 62, 84)),
        sbp=sbp,
        dbp=b.get("dbp", sbp * u(3, 0.58, 0.66)),
        spo2=b.get("spo2", spo2),
        rr=b.get("rr", min(20.0, max(10.0, 14.0 + 3.0 * noise.gauss(seed, _S_TRAITS, 50)))),
        etco2=b.get("etco2", min(42.0, max(30.0, 35.0 + 3.0 * noise.gauss(seed, _S_TRAITS, 51)))),
        temp=b.get("temp", u(7, 36.4, 37.0)),
        anxiety=p.anxiety if p.anxiety is not None else u(8, 0.05, 0.10),
        pressor_eta=p.pressor_eta if p.pressor_eta is not None else _lognormal(seed, 60, ETA_CV),
        hr_eta=_lognormal(seed, 61, ETA_CV),
        rsa_bpm=u(9, 1.5, 3.0) if elderly else u(9, 3.0, 6.0),  # Table 11: ±3–8 bpm, less in the elderly
        cl_factor=_lognormal(seed, 62, 0.35) if p.pk_variability else 1.0,
        v1_factor=_lognormal(seed, 63, 0.35) if p.pk_variability else 1.0,
    )


def _envelope(ev: Event, t: float) -> float:
    """0 → 1 over the onset ramp, 1 for the duration, → 0 over the offset ramp (smoothstep)."""
    a, b = ev.start_s, ev.end_s
    if t < a or t >= b + ev.offset_s:
        return 0.0
    if t < b:
        x = 1.0 if ev.onset_s == 0 else min(1.0, (t - a) / ev.onset_s)
    else:
        x = 1.0 - (t - b) / ev.offset_s if ev.offset_s > 0 else 0.0
    return x * x * (3.0 - 2.0 * x)


class SimulatedPatient:
    """One seeded patient running one scenario; a ``SignalSource`` (numerics, nibp, samples, conditions)."""

    channels = CHANNELS

    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.traits = draw_traits(scenario, self.seed)
        tr = self.traits
        reg = scenario.regimen
        self.ketamine = DrugModel(
            MODELS.get(reg.model, CLEMENTS),
            tr.weight_kg,
            reg.dose_events(tr.weight_kg),
            cl_factor=tr.cl_factor,
            v1_factor=tr.v1_factor,
        )
        self.midazolam_at_s: float | None = reg.midazolam_at_min * 60.0 if reg.midazolam_mg > 0 else None
        self.midazolam = DrugModel(
            MIDAZOLAM,
            tr.weight_kg,
            [DoseEvent(self.midazolam_at_s, Action.BOLUS, mg=reg.midazolam_mg)]
            if self.midazolam_at_s is not None
            else [],
        )
        starts = [d.at_min * 60.0 for d in reg.ketamine if d.action in (Action.START, Action.BOLUS)]
        self._ket_start_s = min(starts) if starts else math.inf
        self._physio = [e for e in scenario.events if e.kind == "physio"]
        self._apnoeas = [(e, *self._apnoea_params(i, e)) for i, e in enumerate(scenario.events) if e.kind == "apnoea"]
        self._artifacts = [e for e in scenario.events if e.kind in ARTIFACTS]
        self._state_cache: dict[float, SimState] = {}
        self.waves = WaveRenderer(self.seed, self._beat_after, self._breath_after, self.conditions, tr.rr)

    # ---- drugs ------------------------------------------------------------------------------------

    def phase_at(self, t: float) -> str:
        """The session phase the scenario's regimen implies at t: baseline, premedication, infusion, recovery.

        Stands in for the nurse's session workflow (issue 7) when a simulated bay is not run by a session.
        """
        regimen = self.scenario.regimen
        minutes = t / 60.0
        window = regimen.infusion_window_min
        if window is not None and minutes >= window[1]:
            return "recovery"
        if window is not None and minutes >= window[0]:
            return "infusion"
        if regimen.midazolam_mg > 0 and minutes >= regimen.midazolam_at_min:
            return "premedication"
        return "baseline"

    def estimated_concentrations(self, t: float) -> dict[str, float]:
        """Model-estimated concentrations (ng/mL) at t: ketamine and midazolam, plasma and effect site."""
        cpk, cek = self.ketamine.concentrations(t)
        cpm, cem = self.midazolam.concentrations(t)
        return {"ketamine_cp": cpk, "ketamine_ce": cek, "midazolam_cp": cpm, "midazolam_ce": cem}

    # ---- state ------------------------------------------------------------------------------------

    def _apnoea_params(self, i: int, ev: Event) -> tuple[float, float]:
        """(SpO2 lag s, fall %/s) for an apnoea: the event's values, else drawn per CLINICAL.md §2.5."""
        if ev.lag_s is not None:
            lag = ev.lag_s
        else:  # log-normal with median 60 s clipped to 5–240 s (Table 9, Deitch 2010 via §2.5)
            lag = min(240.0, max(5.0, 60.0 * math.exp(0.6 * noise.gauss(self.seed, _S_APNOEA, 2 * i))))
            if self.traits.supplemental_o2:
                lag = min(600.0, lag * 3.0)  # supplemental O2 masks hypoventilation (Fu 2004, §2.5) [I factor]
        fall = ev.fall_pct_per_s or 0.5 + 0.5 * noise.uniform(self.seed, _S_APNOEA, 2 * i + 1)
        return lag, fall

    def _apnoea_effect(self, t: float) -> tuple[bool, float, float]:
        """(apnoeic now, SpO2 deficit in %, post-apnoea EtCO2 excess in mmHg)."""
        apnoeic = False
        deficit = 0.0
        excess = 0.0
        for ev, lag, fall in self._apnoeas:
            a, b = ev.start_s, ev.end_s
            if t < a:
                continue
            room = max(0.0, self.traits.spo2 - ev.spo2_floor)
            at_end = min(room, max(0.0, fall * (b - a - lag)))
            if t < b:
                apnoeic = True
                deficit = max(deficit, min(room, max(0.0, fall * (t - a - lag))))
            else:
                # the fall continues for a circulation delay (~15 s), then recovers at ~1 %/s [I]
                tail = min(15.0, t - b)
                peak = min(room, at_end + (fall * tail if at_end > 0 else 0.0))
                deficit = max(deficit, max(0.0, peak - max(0.0, t - b - 15.0) * 1.0))
                excess = max(excess, min(15.0, (b - a) / 10.0) * math.exp(-(t - b) / 60.0))
        return apnoeic, deficit, excess

    def state(self, t: float) -> SimState:
        """The true physiological state at t seconds (pure; memoised for recent times)."""
        got = self._state_cache.get(t)
        if got is not None:
            return got
        s = self._compute_state(t)
        if len(self._state_cache) > 4096:
            self._state_cache.clear()
        self._state_cache[t] = s
        return s

    def _compute_state(self, t: float) -> SimState:
        tr = self.traits
        seed = self.seed
        cpk, cek = self.ketamine.concentrations(t)
        cpm, cem = self.midazolam.concentrations(t)
        mdz_frac = min(1.0, cem / MDZ_PEAK_CE)

        # anxiety offset: decays with midazolam (t½ 10 min), otherwise slowly (t½ 30 min) [I, §2.5]
        if self.midazolam_at_s is not None and t > self.midazolam_at_s:
            anxiety = tr.anxiety * 0.5 ** ((t - self.midazolam_at_s) / 600.0)
        else:
            anxiety = tr.anxiety * 0.5 ** (max(0.0, t) / 1800.0)

        m = (M_MIDAZOLAM if self.midazolam_at_s is not None else 1.0) * (
            M_RISK if tr.hypertensive or tr.age >= 60 else 1.0
        )
        d_sbp = SBP_EMAX * cek / (BP_EC50 + cek) * m * tr.pressor_eta
        d_dbp = DBP_EMAX * cek / (BP_EC50 + cek) * m * tr.pressor_eta
        d_hr = HR_EMAX * cek / (HR_EC50 + cek) * m * tr.hr_eta

        hr = tr.hr * (1.0 + anxiety + d_hr) + 3.0 * noise.smooth(seed, _S_HR, t, 90.0)  # drift ±3 (Table 11)
        sbp = tr.sbp * (1.0 + anxiety + d_sbp) + 3.0 * noise.smooth(seed, _S_BP, t, 300.0)
        dbp = tr.dbp * (1.0 + anxiety * 0.8 + d_dbp) + 2.0 * noise.smooth(seed, _S_BP + 50, t, 300.0)
        rr = tr.rr * (1.0 - 0.10 * mdz_frac) * (1.0 + 0.05 * cek / (cek + 200.0))
        rr += 1.0 * noise.smooth(seed, _S_RR, t, 40.0)
        etco2 = tr.etco2 + 2.0 * mdz_frac + 1.2 * noise.smooth(seed, _S_CO2, t, 25.0)
        spo2 = tr.spo2 + 0.6 * noise.smooth(seed, _S_SPO2, t, 8.0)
        u = cek / C50_KET + cem / C50_MDZ
        sedation = 5.0 / (1.0 + (u / MOAAS_U50) ** MOAAS_GAMMA)
        agitation = 0.0
        perfusion = 1.0
        hours_sedated = max(0.0, t - self._ket_start_s) / 3600.0
        temp = tr.temp - min(0.4, 0.2 * hours_sedated) + 0.05 * noise.smooth(seed, _S_TEMP, t, 600.0)

        for ev in self._physio:
            w = _envelope(ev, t)
            if w == 0.0:
                continue
            hr += ev.hr * w
            sbp += ev.sbp * w
            dbp += ev.dbp * w
            spo2 += ev.spo2 * w
            rr += ev.rr * w
            etco2 += ev.etco2 * w
            temp += ev.temp * w
            sedation += ev.sedation * w
            agitation += ev.agitation * w
            perfusion += ev.perfusion * w

        apnoeic, deficit, excess = self._apnoea_effect(t)
        spo2 -= deficit
        etco2 += excess
        if apnoeic:
            rr, etco2 = 0.0, 0.0

        pp0 = max(1.0, tr.sbp - tr.dbp)
        perfusion *= math.sqrt(max(0.0, sbp - dbp) / pp0)
        dbp = min(dbp, sbp - 10.0)
        return SimState(
            t=t,
            hr=min(220.0, max(30.0, hr)),
            sbp=min(280.0, max(40.0, sbp)),
            dbp=min(200.0, max(20.0, dbp)),
            map=max(25.0, dbp + (sbp - dbp) / 3.0),
            spo2=min(100.0, max(50.0, spo2)),
            rr=max(0.0, rr),
            etco2=min(120.0, max(0.0, etco2)),
            temp=temp,
            perfusion=min(2.0, max(0.05, perfusion)),
            sedation=min(5.0, max(0.0, sedation)),
            agitation=max(0.0, agitation),
            dissociation=0.04 * cek,
            cp_ketamine=cpk,
            ce_ketamine=cek,
            cp_midazolam=cpm,
            ce_midazolam=cem,
            apnoeic=apnoeic,
        )

    # ---- the monitor's view -----------------------------------------------------------------------

    def conditions(self, t: float) -> frozenset[str]:
        """Technical conditions active at t: probe_off, leads_off, cannula_dislodged, motion, disconnected."""
        active = [e.kind for e in self._artifacts if e.start_s <= t < e.end_s]
        return frozenset(active)

    def numerics(self, t: float) -> dict[str, float | None]:
        """The 1 Hz numerics a monitor displays at t; None where the monitor has no valid value."""
        s = self.state(t)
        cond = self.conditions(t)
        seed = self.seed
        hr = round(s.hr)
        pr: float | None = round(s.hr + 0.8 * noise.smooth(seed, _S_HR + 7, t, 5.0))
        spo2: float | None = round(min(100.0, s.spo2 + 0.7 * noise.smooth(seed, _S_SPO2 + 7, t, 6.0)))
        if "motion" in cond:  # false desaturation and a pulse rate that disagrees with the ECG (§2.7)
            spo2 = round(max(60.0, s.spo2 - 4.0 - 6.0 * noise.uniform(seed, _S_MOTION, int(t / 3))))
            pr = round(s.hr + 15.0 + 30.0 * noise.uniform(seed, _S_MOTION + 1, int(t / 2)))
        if "probe_off" in cond:
            spo2 = pr = None
        rr: float | None = round(s.rr)
        etco2: float | None = round(s.etco2)
        if "cannula_dislodged" in cond:
            rr = etco2 = None
        return {
            "hr": None if "leads_off" in cond else hr,
            "pr": pr,
            "spo2": spo2,
            "rr": rr,
            "etco2": etco2,
            "temp": round(s.temp, 1),
        }

    def nibp_duration(self, k: int) -> float:
        """Seconds from the start of cuff cycle k to its result: 25–40 s (typical 20–45 s, CLINICAL.md §2.7)."""
        return 25.0 + 15.0 * noise.uniform(self.seed, _S_NIBP + 1, k)

    def nibp(self, t: float) -> dict[str, float | None]:
        """An oscillometric measurement completing at t (reading-to-reading SD 6/4.5 mmHg, Table 11).

        None values when the measurement fails (continuous movement, CLINICAL.md §2.7)."""
        if "motion" in self.conditions(t) or "motion" in self.conditions(t - 15.0):
            return {"nibp_sys": None, "nibp_dia": None, "nibp_mean": None}
        s = self.state(t - 10.0)  # the cuff reads the pressure of the last part of the cycle
        k = int(t)
        sys = s.sbp + 6.0 * noise.gauss(self.seed, _S_NIBP, 3 * k)
        dia = min(sys - 10.0, s.dbp + 4.5 * noise.gauss(self.seed, _S_NIBP, 3 * k + 1))
        mean = dia + (sys - dia) / 3.0 + 1.5 * noise.gauss(self.seed, _S_NIBP, 3 * k + 2)
        return {"nibp_sys": round(sys), "nibp_dia": round(dia), "nibp_mean": round(mean)}

    # ---- waveforms --------------------------------------------------------------------------------

    def _beat_after(self, t: float, k: int) -> Beat:
        """The cardiac cycle starting at t (R wave): its length follows HR with respiratory sinus arrhythmia."""
        s = self.state(round(t, 3))
        rsa = self.traits.rr / 60.0
        hr = s.hr + self.traits.rsa_bpm * math.sin(2.0 * math.pi * rsa * t)
        hr *= 1.0 + 0.01 * noise.signed(self.seed, _S_BEAT, k)
        return Beat(t=t, length=60.0 / max(25.0, hr), amplitude=s.perfusion)

    def _breath_after(self, t: float, k: int) -> Breath:
        """The respiratory cycle starting at t; during apnoea a 1-s flat segment (no breath)."""
        s = self.state(round(t, 3))
        if s.apnoeic or s.rr < 2.0:
            return Breath(t=t, length=1.0, etco2=0.0)
        rr = s.rr + 1.5 * noise.signed(self.seed, _S_BREATH, k)  # ±2 /min breath to breath (Table 11)
        return Breath(t=t, length=60.0 / max(2.0, rr), etco2=s.etco2 + 1.0 * noise.signed(self.seed, _S_BREATH + 1, k))

    def samples(self, channel: str, start: int, n: int) -> list[int]:
        """Samples ``start .. start+n-1`` of a channel (sample i at t = i / fs) as int16 counts."""
        return self.waves.samples(channel, start, n)
