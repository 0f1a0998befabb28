"""Infusion sessions: the pure workflow (phases, gates, dosing, charting, discharge scores) and its service.

``model`` (contracts), ``workflow`` (the state machine), ``dosing`` (calculator, guardrails, estimates),
``scores`` (Aldrete, PADSS, readiness) are pure; ``service`` runs them against the store, alarms and hub.
"""
