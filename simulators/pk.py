"""Linear mammillary pharmacokinetics (1–3 compartments) with an effect site, integrated exactly.

Drug amounts are in mg, volumes in L, rate constants per minute (as published), simulation time in seconds.
Concentrations are returned in ng/mL (1 mg/L = 1000 ng/mL).

The state ``x = (A1, A2, A3, Ce)`` obeys ``dx/dt = K·x + b·u`` with ``u`` the infusion rate (mg/min), which
is piecewise constant between dosing events. We integrate with the exact matrix exponential of the
augmented system ``[[K, b], [0, 0]]`` (scaling and squaring of a Taylor series; no ODE stepping error), on a
1-s grid extended lazily, splitting a step wherever an event falls inside it. Everything is a pure
function of (parameters, events): the same inputs give the same floats, bit for bit.

Parameter sets: CLINICAL.md Table 6 (as implemented in opentiva). Effect site: ke0 = 0.114 min⁻¹
(t½ke0 ≈ 6.1 min, Olofsen 2012 via CLINICAL.md §2.5 and the Ce figures under Table 7), not opentiva's
assumed 1-min time-to-peak ke0, which §2.5 does not recommend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

Matrix = list[list[float]]


@dataclass(frozen=True, slots=True)
class PKParams:
    """A population model: central volume per kg and micro rate constants (per minute)."""

    name: str
    v1_l_per_kg: float
    k10: float
    k12: float = 0.0
    k21: float = 0.0
    k13: float = 0.0
    k31: float = 0.0
    ke0: float = 0.114
    source: str = ""

    @property
    def compartments(self) -> int:
        """1, 2 or 3."""
        return 3 if self.k13 > 0 else 2 if self.k12 > 0 else 1


#: CLINICAL.md Table 6, Clements 1981 (250 µg/kg data), 2-compartment; default (Table 7 recommendation).
CLEMENTS = PKParams(
    "clements",
    v1_l_per_kg=1.7522,
    k10=0.0109,
    k12=0.0186,
    k21=0.0137,
    source="CLINICAL.md Table 6 (Clements 1981, BJA 53:27); ke0 0.114/min per §2.5",
)
#: CLINICAL.md Table 6, Domino 1982, 3-compartment: faster redistribution (Table 7 recommendation).
DOMINO = PKParams(
    "domino",
    v1_l_per_kg=0.063,
    k10=0.4381,
    k12=0.5921,
    k21=0.2470,
    k13=0.5900,
    k31=0.0146,
    source="CLINICAL.md Table 6 (Domino 1982, PMID 7198883); ke0 0.114/min per §2.5",
)
#: Midazolam premedication: a simple 2-compartment placeholder [I]. CLINICAL.md §2.5 gives only the
#: shape: onset 1–3 min, peak effect 3–5 min, elimination t½ 2–6 h, effect-site ke0 ~0.15/min. These
#: constants give a terminal t½ of ~3 h and a central volume of 0.3 L/kg (to be checked against a
#: published midazolam model before any clinical use).
MIDAZOLAM = PKParams(
    "midazolam",
    v1_l_per_kg=0.3,
    k10=0.015,
    k12=0.06,
    k21=0.02,
    ke0=0.15,
    source="CLINICAL.md §2.5 (shape only; constants are [I] placeholders)",
)

MODELS: dict[str, PKParams] = {p.name: p for p in (CLEMENTS, DOMINO)}


class Action(StrEnum):
    """Dosing actions (CLINICAL/ARCHITECTURE session workflow: start, rate change, pause, stop)."""

    BOLUS = "bolus"
    START = "start"
    RATE = "rate"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class DoseEvent:
    """One dosing event at ``t`` seconds: a bolus of ``mg`` or an infusion (re)set to ``mg_per_min``."""

    t: float
    action: Action
    mg: float = 0.0
    mg_per_min: float = 0.0


def infusion_rates(events: Iterable[DoseEvent]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Resolve events to (time, rate mg/min) steps and (time, mg) boluses, in time order."""
    steps: list[tuple[float, float]] = []
    boluses: list[tuple[float, float]] = []
    rate = 0.0
    paused_rate = 0.0
    for ev in sorted(events, key=lambda e: e.t):
        if ev.action is Action.BOLUS:
            boluses.append((ev.t, ev.mg))
            continue
        if ev.action in (Action.START, Action.RATE):
            rate = ev.mg_per_min
        elif ev.action is Action.PAUSE:
            paused_rate, rate = rate, 0.0
        elif ev.action is Action.RESUME:
            rate = paused_rate
        elif ev.action is Action.STOP:
            rate = 0.0
        steps.append((ev.t, rate))
    return steps, boluses


def _matmul(a: Matrix, b: Matrix) -> Matrix:
    n = len(a)
    m = len(b[0])
    inner = len(b)
    return [[sum(a[i][k] * b[k][j] for k in range(inner)) for j in range(m)] for i in range(n)]


def expm(m: Matrix) -> Matrix:
    """Matrix exponential by scaling and squaring of a degree-18 Taylor series (small dense matrices)."""
    n = len(m)
    norm = max(sum(abs(v) for v in row) for row in m)
    s = max(0, math.ceil(math.log2(norm)) + 1) if norm > 0 else 0
    scale = 2.0**-s
    a = [[v * scale for v in row] for row in m]
    result = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    term = [row[:] for row in result]
    for k in range(1, 19):
        term = _matmul(term, a)
        term = [[v / k for v in row] for row in term]
        result = [[result[i][j] + term[i][j] for j in range(n)] for i in range(n)]
    for _ in range(s):
        result = _matmul(result, result)
    return result


@dataclass(slots=True)
class _Grid:
    step_s: float
    states: list[list[float]] = field(default_factory=list)  # x at k·step_s (after events at that instant)


class DrugModel:
    """One drug in one patient: dosing events in, plasma and effect-site concentrations (ng/mL) out."""

    def __init__(
        self,
        params: PKParams,
        weight_kg: float,
        events: Sequence[DoseEvent] = (),
        *,
        cl_factor: float = 1.0,
        v1_factor: float = 1.0,
        step_s: float = 1.0,
    ) -> None:
        if weight_kg <= 0:
            raise ValueError("weight must be positive")
        self.params = params
        self.weight_kg = weight_kg
        # Between-subject variability (CLINICAL.md §2.5: log-normal, CV ~35 % on CL and V1): scaling V1
        # by f_v and CL = k10·V1 by f_cl means k10' = k10·f_cl/f_v; inter-compartment constants unchanged.
        self.v1 = params.v1_l_per_kg * weight_kg * v1_factor
        k10 = params.k10 * cl_factor / v1_factor
        p = replace(params, k10=k10)
        self._k = self._system(p)
        self._steps, self._boluses = infusion_rates(events)
        self._grid = _Grid(step_s)
        self._cache: dict[float, Matrix] = {}
        self._grid.states.append(self._apply_boluses([0.0, 0.0, 0.0, 0.0], -math.inf, 0.0))

    def _system(self, p: PKParams) -> Matrix:
        """Augmented 5×5 generator (per second) for x = (A1, A2, A3, Ce, u)."""
        c = 1000.0 / self.v1  # mg in the central compartment -> ng/mL
        per_min = [
            [-(p.k10 + p.k12 + p.k13), p.k21, p.k31, 0.0, 1.0],
            [p.k12, -p.k21, 0.0, 0.0, 0.0],
            [p.k13, 0.0, -p.k31, 0.0, 0.0],
            [p.ke0 * c, 0.0, 0.0, -p.ke0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
        ]
        return [[v / 60.0 for v in row] for row in per_min]

    def _propagator(self, dt: float) -> Matrix:
        got = self._cache.get(dt)
        if got is None:
            got = expm([[v * dt for v in row] for row in self._k])
            if len(self._cache) < 64:
                self._cache[dt] = got
        return got

    def rate_at(self, t: float) -> float:
        """Infusion rate (mg/min) in force at time t (s)."""
        rate = 0.0
        for te, r in self._steps:
            if te > t:
                break
            rate = r
        return rate

    def _apply_boluses(self, x: list[float], after: float, upto: float) -> list[float]:
        """Add boluses given in (after, upto] to the central compartment."""
        for tb, mg in self._boluses:
            if after < tb <= upto:
                x = [x[0] + mg, *x[1:]]
        return x

    def _advance(self, x: list[float], t0: float, t1: float) -> list[float]:
        """Exact propagation from t0 to t1 with the events inside the interval."""
        cuts = sorted({t for t, _ in self._steps if t0 < t < t1} | {t for t, _ in self._boluses if t0 < t < t1})
        t = t0
        for tc in [*cuts, t1]:
            u = self.rate_at(t)
            e = self._propagator(tc - t)
            aug = [*x, u]
            x = [sum(e[i][j] * aug[j] for j in range(5)) for i in range(4)]
            x = self._apply_boluses(x, t, tc)
            t = tc
        return x

    def _ensure(self, k: int) -> None:
        g = self._grid
        while len(g.states) <= k:
            j = len(g.states) - 1
            g.states.append(self._advance(g.states[j], j * g.step_s, (j + 1) * g.step_s))

    def state(self, t: float) -> list[float]:
        """(A1, A2, A3 in mg, Ce in ng/mL) at time t ≥ 0 (linear between 1-s grid points)."""
        if t <= 0:
            return list(self._grid.states[0]) if t == 0 else [0.0, 0.0, 0.0, 0.0]
        g = self._grid
        k = int(t // g.step_s)
        self._ensure(k + 1)
        f = t / g.step_s - k
        a, b = g.states[k], g.states[k + 1]
        return [a[i] + (b[i] - a[i]) * f for i in range(4)]

    def exact_state(self, t: float) -> list[float]:
        """The state at time t by exact propagation from the nearest grid point (for tests)."""
        g = self._grid
        k = int(t // g.step_s)
        self._ensure(k)
        return self._advance(g.states[k], k * g.step_s, t)

    def cp(self, t: float) -> float:
        """Plasma (central) concentration in ng/mL."""
        return self.state(t)[0] * 1000.0 / self.v1

    def ce(self, t: float) -> float:
        """Effect-site concentration in ng/mL."""
        return self.state(t)[3]

    def concentrations(self, t: float) -> tuple[float, float]:
        """(Cp, Ce) in ng/mL at time t."""
        x = self.state(t)
        return x[0] * 1000.0 / self.v1, x[3]
