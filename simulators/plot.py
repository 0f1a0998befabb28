"""Plot one full session of a scenario offline: ``python -m simulators.plot NAME --out file.html [--png file.png]``.

The session runs faster than real time (pure functions of t). The HTML (plotly, inlined, no CDN) shows
what the monitor displays (numerics every 5 s, NIBP results per cuff cycle), the model's Cp/Ce and the
sedation level, with the infusion and the scenario's events shaded, and a 10-s strip of the three
waveforms at the scenario's first event. ``--png`` renders it with Chromium (Playwright, Debian chromium).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from simulators.patient import CHANNELS, SimulatedPatient
from simulators.scenario import load_scenario

ROWS = ("HR / PR (/min)", "NIBP (mmHg)", "SpO₂ (%)", "RR (/min) · EtCO₂ (mmHg)", "Ketamine (ng/mL)", "Sedation")


def session_figure(p: SimulatedPatient, step_s: float = 5.0, nibp_every_s: float = 180.0) -> go.Figure:
    """Trend plot of one whole session."""
    sc = p.scenario
    end = sc.duration_min * 60.0
    ts = [k * step_s for k in range(int(end / step_s) + 1)]
    mins = [t / 60.0 for t in ts]
    nums = [p.numerics(t) for t in ts]
    states = [p.state(t) for t in ts]
    fig = make_subplots(rows=len(ROWS), cols=1, shared_xaxes=True, vertical_spacing=0.025, subplot_titles=ROWS)

    def line(row: int, key: str, name: str, color: str) -> None:
        fig.add_trace(
            go.Scatter(x=mins, y=[n.get(key) for n in nums], name=name, line={"color": color, "width": 1.5}),
            row=row,
            col=1,
        )

    line(1, "hr", "HR", "#2ca02c")
    line(1, "pr", "PR", "#98df8a")
    arrivals = [30.0 + k * nibp_every_s for k in range(int(end / nibp_every_s) + 1)]
    cuff = [(t / 60.0, p.nibp(t)) for t in arrivals]
    for key, name, color in (
        ("nibp_sys", "SBP", "#d62728"),
        ("nibp_dia", "DBP", "#ff9896"),
        ("nibp_mean", "MAP", "#9467bd"),
    ):
        fig.add_trace(
            go.Scatter(
                x=[m for m, _ in cuff],
                y=[v[key] for _, v in cuff],
                name=name,
                mode="lines+markers",
                line={"color": color},
            ),
            row=2,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=mins, y=[s.sbp for s in states], name="SBP (true)", line={"color": "#d62728", "dash": "dot", "width": 1}
        ),
        row=2,
        col=1,
    )
    line(3, "spo2", "SpO₂", "#17becf")
    line(4, "rr", "RR", "#ff7f0e")
    line(4, "etco2", "EtCO₂", "#bcbd22")
    for attr, name, color in (
        ("cp_ketamine", "ketamine Cp", "#1f77b4"),
        ("ce_ketamine", "ketamine Ce", "#aec7e8"),
        ("ce_midazolam", "midazolam Ce", "#8c564b"),
    ):
        fig.add_trace(
            go.Scatter(x=mins, y=[getattr(s, attr) for s in states], name=name, line={"color": color}), row=5, col=1
        )
    fig.add_trace(
        go.Scatter(x=mins, y=[s.sedation for s in states], name="MOAA/S (model)", line={"color": "#7f7f7f"}),
        row=6,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=mins, y=[s.agitation for s in states], name="agitation (RASS+)", line={"color": "#e377c2"}),
        row=6,
        col=1,
    )

    window = sc.regimen.infusion_window_min
    if window is not None:
        fig.add_vrect(x0=window[0], x1=min(window[1], sc.duration_min), fillcolor="#1f77b4", opacity=0.07, line_width=0)
    for ev in sc.events:
        fig.add_vrect(
            x0=ev.at_min,
            x1=ev.at_min + ev.duration_min,
            fillcolor="#d62728" if ev.kind in ("physio", "apnoea") else "#7f7f7f",
            opacity=0.12,
            line_width=0,
        )
    tr = p.traits
    fig.update_layout(
        title=(
            f"{sc.title} — seed {p.seed}: {tr.age} y, {tr.weight_kg:g} kg"
            f"{', hypertensive' if tr.hypertensive else ''}; midazolam {sc.regimen.midazolam_mg:g} mg; "
            f"ketamine model {sc.regimen.model} (blue band: infusion, red: events, grey: artifacts)"
        ),
        height=1150,
        width=1400,
        template="plotly_white",
        legend={"orientation": "v"},
        margin={"l": 60, "r": 20, "t": 80, "b": 40},
    )
    fig.update_xaxes(title_text="minutes since monitoring started", row=len(ROWS), col=1)
    return fig


def waveform_figure(p: SimulatedPatient, at_min: float, seconds: float = 10.0) -> go.Figure:
    """A strip of ECG II, pleth and capnogram starting at ``at_min``."""
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05, subplot_titles=("ECG II (mV)", "Pleth", "CO₂ (mmHg)")
    )
    for row, (ch, (fs, gain)) in enumerate(CHANNELS.items(), start=1):
        start = int(at_min * 60 * fs)
        ys = p.samples(ch, start, int(seconds * fs))
        xs = [at_min * 60 + k / fs for k in range(len(ys))]
        fig.add_trace(go.Scatter(x=xs, y=[v * gain for v in ys], name=ch, line={"width": 1.2}), row=row, col=1)
    fig.update_layout(
        title=f"Waveforms at {at_min:g} min", height=520, width=1400, template="plotly_white", showlegend=False
    )
    fig.update_xaxes(title_text="seconds since monitoring started", row=3, col=1)
    return fig


def write_html(name: str, out: Path, seed: int | None = None) -> SimulatedPatient:
    """Run the scenario and write the HTML report; returns the patient."""
    p = SimulatedPatient(load_scenario(name), seed=seed)
    first = min((e.at_min for e in p.scenario.events), default=30.0)
    body = session_figure(p).to_html(full_html=False, include_plotlyjs=True)
    strip = waveform_figure(p, first + 0.5).to_html(full_html=False, include_plotlyjs=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{p.scenario.title}</title></head>"
        f"<body style='margin:0;background:#fff'>{body}{strip}</body></html>",
        encoding="utf-8",
    )
    return p


def render_png(html: Path, png: Path, chromium: str = "/usr/bin/chromium") -> None:
    """Screenshot the HTML page with Playwright driving the system Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        page = browser.new_page(viewport={"width": 1420, "height": 1700})
        page.goto(html.resolve().as_uri())
        page.wait_for_timeout(1500)
        page.screenshot(path=str(png), full_page=True)
        browser.close()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(prog="python -m simulators.plot", description=__doc__)
    ap.add_argument("scenario")
    ap.add_argument("--out", type=Path, required=True, help="HTML file to write")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--png", type=Path, default=None, help="also render a PNG screenshot (needs Chromium)")
    args = ap.parse_args(argv)
    write_html(args.scenario, args.out, args.seed)
    if args.png is not None:
        render_png(args.out, args.png)
    print(args.out if args.png is None else f"{args.out}\n{args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
