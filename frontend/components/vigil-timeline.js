// <vigil-timeline>: a whole recorded session at a glance (plotly, served at /vendor/plotly.min.js as the
// global `Plotly`; the page loads it with a classic <script> before its modules).
//
// Stacked trends of every numeric (HR/PR, SpO₂, NIBP, RR, EtCO₂, temperature, then any other parameter),
// the session's phases as coloured bands (named above the plot), an alarm strip on top (one marker per
// raise/escalation, coloured by priority AND marked "!!!"/"!!"/"!" with the alarm's text beside it, plus
// acknowledgements) with a thin line through every trend at each raise, and a charting strip at the bottom
// (RASS / MOAA/S, side effects, medications, pump events). Hovering shows every value at that time.
//
// The x axis is the clinic's wall clock (lib/format.js wallMs): plotly draws dates in UTC, so it is given
// wall times dressed as UTC.
//
// Clicking anywhere on the plot dispatches `vigil-seek` {detail: {t}} (Unix s, bubbling) — the same event
// the what-if panel sends; the page seeks its replay there. A playhead line follows the page clock
// (the replay position) on every render.
//
// Set `.data` to the GET /api/recordings/{sid}/timeline body. Hooks: [data-ready] once drawn,
// [data-traces] (number of numeric traces), .timeline-plot (the plotly element), .playhead[data-t],
// [data-alarm-markers] (raise markers drawn).

import { context } from '../lib/context.js';
import { formatClock, h, setAttr, unixFromWallMs, wallMs, zoneAbbreviation } from '../lib/format.js';
import { CANVAS_COLOUR, PARAM_COLOUR, param } from '../lib/params.js';
import { onRender } from '../lib/ticker.js';

/** Trend rows, top to bottom: which parameters share a row. Parameters not listed get a row each. */
const GROUPS = Object.freeze([
  { keys: ['hr', 'pr'], title: 'HR · PR', unit: 'bpm' },
  { keys: ['spo2'], title: 'SpO₂', unit: '%' },
  { keys: ['nibp_sys', 'nibp_mean', 'nibp_dia'], title: 'NIBP', unit: 'mmHg' },
  { keys: ['rr'], title: 'RR', unit: 'rpm' },
  { keys: ['etco2'], title: 'EtCO₂', unit: 'mmHg' },
  { keys: ['temp'], title: 'Temp', unit: '°C' },
]);

const DASH = Object.freeze({ pr: 'dot', nibp_mean: 'dot' });

const PRIORITY = Object.freeze({
  high: { colour: '#ff2a2a', mark: '!!!', word: 'HIGH' },
  medium: { colour: '#ffd21a', mark: '!!', word: 'MEDIUM' },
  low: { colour: '#27d3ff', mark: '!', word: 'LOW' },
  info: { colour: '#9aa4ae', mark: 'i', word: 'INFO' },
});

// Phase bands: dark tints that keep the trends readable; the phase is also named in text above the plot.
const PHASE_FILL = Object.freeze({
  planned: 'rgba(120,130,140,0.10)',
  baseline: 'rgba(80,140,220,0.16)',
  premedication: 'rgba(150,110,230,0.18)',
  infusion: 'rgba(60,200,110,0.16)',
  recovery: 'rgba(230,170,40,0.15)',
  ready_for_discharge: 'rgba(40,200,200,0.14)',
  discharged: 'rgba(120,130,140,0.08)',
  aborted: 'rgba(255,60,60,0.12)',
});
const PHASE_WORD = Object.freeze({ ready_for_discharge: 'ready', premedication: 'premed' });

const PAPER = '#0a0c0f';
const GRID = '#1d232b';
const TEXT = '#c9d1d9';
const DIM = '#8b949e';
const STRIP_ALARM = 0.085; // fraction of the plot height for the alarm strip (top) ...
const STRIP_CHART = 0.065; // ... and the charting strip (bottom)
const ROW_GAP = 0.012;
const LABEL_ROOM = 0.16; // a marker's text needs this fraction of the session's width before the next one

function colourOf(key) {
  if (key === 'pr') return '#1aa6b0';
  return CANVAS_COLOUR[PARAM_COLOUR[key]] ?? CANVAS_COLOUR.other;
}

function hoverTime(t) {
  return `${formatClock(t)} ${zoneAbbreviation(t)}`;
}

function shorten(text, n) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

/** Plotly figure (data + layout) for a timeline body. Pure apart from the clinic zone in lib/format.js. */
export function buildFigure(tl) {
  const series = tl.series ?? {};
  const present = Object.keys(series).filter((k) => (series[k]?.t?.length ?? 0) > 0);
  const rows = [];
  for (const g of GROUPS) {
    const keys = g.keys.filter((k) => present.includes(k));
    if (keys.length) rows.push({ ...g, keys });
  }
  const grouped = new Set(GROUPS.flatMap((g) => g.keys));
  for (const k of present) {
    if (!grouped.has(k)) rows.push({ keys: [k], title: series[k].label ?? param(k).label, unit: series[k].unit ?? '' });
  }

  // Vertical layout (paper fractions): alarm strip on top, trend rows, charting strip at the bottom.
  const n = rows.length;
  const top = 1 - STRIP_ALARM;
  const bottom = STRIP_CHART;
  const rowH = n ? (top - bottom - ROW_GAP * (n + 1)) / n : 0;
  const data = [];
  const layout = {
    paper_bgcolor: PAPER,
    plot_bgcolor: '#000',
    font: { color: TEXT, family: 'system-ui, sans-serif', size: 11 },
    margin: { l: 128, r: 14, t: 24, b: 26 },
    showlegend: false,
    hovermode: 'x unified',
    hoverlabel: { bgcolor: '#14181d', bordercolor: '#39424c', font: { color: TEXT, size: 12 } },
    dragmode: false,
    xaxis: {
      type: 'date',
      range: [wallMs(tl.start), wallMs(tl.end ?? tl.start + 60)],
      fixedrange: true,
      showgrid: true,
      gridcolor: GRID,
      linecolor: GRID,
      tickformat: '%H:%M',
      hoverformat: '%H:%M:%S',
      anchor: 'y',
      domain: [0, 1],
      showspikes: true,
      spikemode: 'across',
      spikecolor: '#5f666e',
      spikethickness: 1,
      spikedash: 'solid',
    },
    shapes: [],
    annotations: [],
  };
  const axis = (i) => (i === 0 ? 'y' : `y${i + 1}`);
  const axisKey = (i) => (i === 0 ? 'yaxis' : `yaxis${i + 1}`);

  // Charting strip: yaxis (index 0) at the bottom, the one the x axis hangs from.
  layout.yaxis = { domain: [0, bottom], range: [0, 1], visible: false, fixedrange: true };
  rows.forEach((row, r) => {
    const i = r + 1;
    const y1 = top - ROW_GAP - r * (rowH + ROW_GAP);
    const y0 = y1 - rowH;
    layout[axisKey(i)] = {
      domain: [y0, y1],
      anchor: 'x',
      fixedrange: true,
      gridcolor: GRID,
      zeroline: false,
      nticks: 3,
      tickfont: { size: 10, color: DIM },
      automargin: false,
    };
    const c = colourOf(row.keys[0]);
    layout.annotations.push({
      xref: 'paper', yref: 'paper', x: 0, xshift: -30, y: (y0 + y1) / 2, xanchor: 'right', yanchor: 'middle',
      text: `<b>${row.title}</b> <span style="font-size:10px">${row.unit}</span>`,
      showarrow: false, font: { color: c, size: 12 }, align: 'right',
    });
    for (const key of row.keys) {
      const s = series[key];
      const episodic = param(key).cadence === 'episodic' || key.startsWith('nibp');
      data.push({
        type: 'scatter',
        mode: episodic ? 'lines+markers' : 'lines',
        name: `${s.label ?? param(key).label}${s.unit ? ` (${s.unit})` : ''}`,
        x: s.t.map(wallMs),
        y: s.v,
        xaxis: 'x',
        yaxis: axis(i),
        connectgaps: episodic,
        line: { color: colourOf(key), width: key === 'nibp_mean' ? 1 : 1.5, dash: DASH[key] ?? 'solid' },
        marker: { size: 4, color: colourOf(key) },
        hovertemplate: `%{y}<extra>${s.label ?? param(key).label}</extra>`,
        meta: { key },
      });
    }
  });
  const numeric = data.length;

  // Alarm strip (top).
  const alarmAxis = n + 1;
  layout[axisKey(alarmAxis)] = { domain: [top, 1], range: [0, 1], visible: false, fixedrange: true };
  const raises = [];
  const acks = [];
  for (const a of tl.alarms ?? []) {
    if (a.kind === 'raised' || a.kind === 'escalated') raises.push(a);
    else if (a.kind === 'acknowledged') acks.push(a);
  }
  // Text beside a marker only where it has room (the strip would otherwise be unreadable where alarms
  // cluster); every marker keeps its priority colour and shape, and hovering names it.
  const span = Math.max(60, (tl.end ?? tl.start) - tl.start);
  const labelled = new Set();
  let lastLabel = -Infinity;
  for (const a of [...raises].sort((x, y) => x.t - y.t)) {
    if (a.t - lastLabel >= span * LABEL_ROOM) {
      labelled.add(a);
      lastLabel = a.t;
    }
  }
  for (const [prio, look] of Object.entries(PRIORITY)) {
    const rs = raises.filter((a) => (a.priority ?? 'info') === prio);
    if (!rs.length) continue;
    data.push({
      type: 'scatter',
      mode: 'markers+text',
      x: rs.map((a) => wallMs(a.t)),
      y: rs.map(() => 0.45),
      xaxis: 'x',
      yaxis: axis(alarmAxis),
      marker: { symbol: 'triangle-down', size: 13, color: look.colour, line: { color: '#000', width: 1 } },
      text: rs.map((a) => (labelled.has(a) ? `${look.mark} ${shorten(a.text || a.rule_id || '', 24)}` : '')),
      textposition: 'middle right',
      textfont: { color: look.colour, size: 11 },
      cliponaxis: false,
      hovertemplate: rs.map((a) => `${a.kind === 'escalated' ? 'escalated' : 'raised'} ${look.word} ${look.mark}: ${a.text || a.rule_id}<extra>${hoverTime(a.t)}</extra>`),
      meta: { kind: 'alarms', priority: prio },
    });
    for (const a of rs) {
      layout.shapes.push({
        type: 'line', xref: 'x', yref: 'paper', x0: wallMs(a.t), x1: wallMs(a.t), y0: bottom, y1: top,
        line: { color: look.colour, width: 1, dash: 'dot' }, opacity: 0.55, layer: 'above',
      });
    }
  }
  if (acks.length) {
    data.push({
      type: 'scatter',
      mode: 'markers',
      x: acks.map((a) => wallMs(a.t)),
      y: acks.map(() => 0.45),
      xaxis: 'x',
      yaxis: axis(alarmAxis),
      marker: { symbol: 'circle-open', size: 9, color: '#e9ecef', line: { width: 2 } },
      hovertemplate: acks.map((a) => {
        const who = [a.user, Number.isFinite(a.time_to_ack_s) ? `after ${Math.round(a.time_to_ack_s)} s` : ''].filter(Boolean).join(' ');
        return `acknowledged ${a.text || a.rule_id || ''}${who ? ` (${who})` : ''}<extra>${hoverTime(a.t)}</extra>`;
      }),
      meta: { kind: 'acks' },
    });
  }
  layout.annotations.push({
    xref: 'paper', yref: 'paper', x: 0, xshift: -30, y: top + STRIP_ALARM / 2, xanchor: 'right', yanchor: 'middle',
    text: '<b>Alarms</b>', showarrow: false, font: { color: TEXT, size: 11 },
  });

  // Charting strip (bottom): chart entries and pump events.
  const chart = tl.chart ?? [];
  if (chart.length) {
    data.push({
      type: 'scatter', mode: 'markers', xaxis: 'x', yaxis: 'y',
      x: chart.map((c) => wallMs(c.t)), y: chart.map(() => 0.5),
      marker: { symbol: 'diamond', size: 9, color: '#8cc8ff', line: { color: '#000', width: 1 } },
      hovertemplate: chart.map((c) => `charted: ${c.text || c.kind}${c.user ? ` (${c.user})` : ''}<extra>${hoverTime(c.t)}</extra>`),
      meta: { kind: 'chart' },
    });
  }
  const pump = tl.pump ?? [];
  if (pump.length) {
    data.push({
      type: 'scatter', mode: 'markers', xaxis: 'x', yaxis: 'y',
      x: pump.map((p) => wallMs(p.t)), y: pump.map(() => 0.5),
      marker: { symbol: 'square', size: 8, color: '#c49bff', line: { color: '#000', width: 1 } },
      hovertemplate: pump.map((p) => `pump: ${pumpText(p)}<extra>${hoverTime(p.t)}</extra>`),
      meta: { kind: 'pump' },
    });
  }
  layout.annotations.push({
    xref: 'paper', yref: 'paper', x: 0, xshift: -30, y: bottom / 2, xanchor: 'right', yanchor: 'middle',
    text: '<b>Charting</b>', showarrow: false, font: { color: TEXT, size: 11 },
  });

  // Phase bands with their names above the plot.
  for (const p of tl.phases ?? []) {
    const end = p.end ?? tl.end;
    if (!Number.isFinite(p.start) || !Number.isFinite(end) || end <= p.start) continue;
    layout.shapes.push({
      type: 'rect', xref: 'x', yref: 'paper', x0: wallMs(p.start), x1: wallMs(end), y0: 0, y1: 1,
      fillcolor: PHASE_FILL[p.phase] ?? 'rgba(120,130,140,0.08)', line: { width: 0 }, layer: 'below',
    });
    const word = (PHASE_WORD[p.phase] ?? p.phase).toUpperCase().replace(/_/g, ' ');
    if ((end - p.start) / span < word.length * 0.009) continue; // too narrow to name: the band still shows
    layout.annotations.push({
      xref: 'x', yref: 'paper', x: wallMs((p.start + end) / 2), y: 1, yanchor: 'bottom', showarrow: false,
      text: word, font: { color: DIM, size: 10 },
    });
  }
  return { data, layout, numeric, raises: raises.length };
}

function pumpText(p) {
  const parts = [String(p.action ?? 'event').replace(/_/g, ' ')];
  if (Number.isFinite(p.mg_per_h)) parts.push(`${p.mg_per_h.toFixed(1)} mg/h`);
  if (Number.isFinite(p.ml_per_h)) parts.push(`(${p.ml_per_h.toFixed(1)} mL/h)`);
  if (p.bolus_mg > 0) parts.push(`bolus ${p.bolus_mg} mg`);
  if (p.user) parts.push(`· ${p.user}`);
  return parts.join(' ');
}

class VigilTimeline extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this._plot = h('div', 'timeline-plot');
      this._head = h('div', 'playhead');
      this._head.hidden = true;
      this._headLabel = h('span', 'playhead-label');
      this._head.append(this._headLabel);
      this._wrap = h('div', 'timeline-wrap');
      this._wrap.append(this._plot, this._head);
      this.append(this._wrap);
      this._plot.addEventListener('click', (ev) => this._onClick(ev));
      this._resize = new ResizeObserver(() => {
        if (this._drawn) window.Plotly?.Plots.resize(this._plot);
      });
      this._resize.observe(this);
    }
    this._off = onRender((now) => this.renderHead(now));
  }

  disconnectedCallback() {
    this._off?.();
  }

  /** The timeline body (GET /api/recordings/{sid}/timeline). */
  set data(tl) {
    this._data = tl;
    this._draw();
  }

  get data() {
    return this._data;
  }

  async _draw() {
    const tl = this._data;
    if (!tl) return;
    if (!window.Plotly) {
      this._plot.replaceChildren(h('div', 'timeline-error', 'The trend chart library (/vendor/plotly.min.js) did not load.'));
      console.error('vigil: Plotly is not loaded');
      return;
    }
    const fig = buildFigure(tl);
    await window.Plotly.react(this._plot, fig.data, fig.layout, {
      displayModeBar: false,
      responsive: true,
      scrollZoom: false,
      doubleClick: false,
    });
    this._drawn = true;
    setAttr(this, 'data-traces', String(fig.numeric));
    setAttr(this, 'data-alarm-markers', String(fig.raises));
    setAttr(this, 'data-ready', '');
    const { clock } = context();
    if (clock) this.renderHead(clock.now());
  }

  /** Plot area geometry: {l, t, w, h, r0, r1} with r0/r1 the x range as wall ms, or null before drawing. */
  _geometry() {
    const fl = this._plot._fullLayout;
    if (!this._drawn || !fl?._size || !fl.xaxis) return null;
    const [a, b] = fl.xaxis.range.map((v) => (typeof v === 'number' ? v : Date.parse(`${String(v).replace(' ', 'T')}Z`)));
    return { l: fl._size.l, t: fl._size.t, w: fl._size.w, h: fl._size.h, r0: a, r1: b };
  }

  _onClick(ev) {
    const g = this._geometry();
    if (!g) return;
    const rect = this._plot.getBoundingClientRect();
    const x = ev.clientX - rect.left - g.l;
    const y = ev.clientY - rect.top - g.t;
    if (x < 0 || x > g.w || y < -4 || y > g.h + 4) return;
    const t = unixFromWallMs(g.r0 + (x / g.w) * (g.r1 - g.r0));
    this.dispatchEvent(new CustomEvent('vigil-seek', { detail: { t, source: 'timeline' }, bubbles: true, composed: true }));
  }

  /** Put the playhead at the page clock (the replay position). */
  renderHead(now) {
    const g = this._geometry();
    const { clock } = context();
    if (!g || !clock?.known || !Number.isFinite(now)) {
      this._head.hidden = true;
      return;
    }
    const frac = (wallMs(now) - g.r0) / (g.r1 - g.r0);
    if (!(frac >= 0 && frac <= 1)) {
      this._head.hidden = true;
      return;
    }
    this._head.hidden = false;
    this._head.style.left = `${(g.l + frac * g.w).toFixed(1)}px`;
    this._head.style.top = `${g.t}px`;
    this._head.style.height = `${g.h}px`;
    this._head.dataset.t = now.toFixed(3);
    const label = formatClock(now);
    if (this._headLabel.textContent !== label) this._headLabel.textContent = label;
  }
}

customElements.define('vigil-timeline', VigilTimeline);
