"""``python -m simulators``: list the scenarios, or check that each produces its named event offline.

python -m simulators list
python -m simulators check [NAME ...] [--seed N]
"""

from __future__ import annotations

import argparse

from simulators.patient import SimulatedPatient
from simulators.run import check_all
from simulators.scenario import load_scenario, scenario_names


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; exit status 1 when a checked scenario misses its event."""
    ap = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="scenario names and titles")
    check = sub.add_parser("check", help="run scenarios offline and check their expected events")
    check.add_argument("names", nargs="*")
    check.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    if args.command == "list":
        for name in scenario_names():
            print(f"{name:14} {load_scenario(name).title}")
        return 0
    ok = True
    for name in args.names or scenario_names():
        patient = SimulatedPatient(load_scenario(name), seed=args.seed)
        for o in check_all(patient):
            ok &= o.met
            seen = "" if o.observed is None else f" (extreme {o.observed:.1f})"
            print(f"{'ok  ' if o.met else 'MISS'} {name:14} {o.expect.what}{seen}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
