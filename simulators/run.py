"""Offline (faster than real time) runs of a scenario: state timelines and checks of a scenario's ``expect``."""

from __future__ import annotations

from dataclasses import dataclass

from simulators.patient import SimState, SimulatedPatient
from simulators.scenario import Expect


def timeline(patient: SimulatedPatient, step_s: float = 1.0, duration_s: float | None = None) -> list[SimState]:
    """The patient's state every ``step_s`` seconds over the scenario (or ``duration_s``)."""
    end = patient.scenario.duration_min * 60.0 if duration_s is None else duration_s
    n = int(end / step_s) + 1
    return [patient.state(k * step_s) for k in range(n)]


@dataclass(frozen=True, slots=True)
class Outcome:
    """Whether an expectation was met, with the extreme value seen in its window (None for conditions)."""

    expect: Expect
    met: bool
    observed: float | None


def check(patient: SimulatedPatient, exp: Expect, step_s: float = 1.0) -> Outcome:
    """Evaluate one ``expect`` entry of the patient's scenario on an offline run."""
    a, b = exp.between_min
    times = [a * 60.0 + k * step_s for k in range(int((b - a) * 60.0 / step_s) + 1)]
    if exp.condition is not None:
        return Outcome(exp, any(exp.condition in patient.conditions(t) for t in times), None)
    assert exp.param is not None
    values: list[float] = []
    for t in times:
        if exp.param in SimState.__dataclass_fields__:
            values.append(float(getattr(patient.state(t), exp.param)))
        else:
            v = patient.numerics(t).get(exp.param)
            if v is not None:
                values.append(float(v))
    if not values:
        return Outcome(exp, False, None)
    if exp.op == ">=":
        best = max(values)
        return Outcome(exp, best >= exp.value, best)
    best = min(values)
    return Outcome(exp, best <= exp.value, best)


def check_all(patient: SimulatedPatient, step_s: float = 1.0) -> list[Outcome]:
    """Every ``expect`` of the scenario."""
    return [check(patient, e, step_s) for e in patient.scenario.expect]
