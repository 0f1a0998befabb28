// <vigil-trends bay="bay1">: the bedside's trends of the session so far (issue 9).
//
// One plotly figure, four stacked panels lined up with the bedside rows they belong to: HR beside the ECG,
// SpO2 beside the pleth, RR + EtCO2 beside the CO2 wave, NIBP (sys/dia markers, mean dotted) beside the
// NIBP numeric. Loaded once from GET /api/bays/{bay}/trends (the open session, else the last 2 h; min/max
// downsampled on the server), then extended from the live `vitals` messages folded into the same 20 s
// min/max buckets (checked every 5 s) and drawn with Plotly.extendTraces at most every 30 s (sooner when a
// value leaves the panel's scale); once a minute the same redraw also stretches the time axis and the
// current phase band (Plotly.react). All of it off the animation-frame loop: a redraw of this figure costs
// tens of milliseconds, so it happens about once per 30 s, never per frame. Phase bands (baseline, infusion, recovery …) shade the background.
// A phase change, a new session or a reconnect (readings missed without a link) reloads the whole figure.
//
// Hooks: data-state ("loading" | "ready" | "error"), data-loads (loads so far), data-points (points drawn),
// data-updates (live extensions so far), data-window ("session" | "2h"), .trend-plot (the plotly div).

import { context } from '../lib/context.js';
import { formatClock, h, setAttr, setText } from '../lib/format.js';
import { CANVAS_COLOUR } from '../lib/params.js';
import { fetchTrends, LiveBuckets, plotTimeMs, readingPoint } from '../lib/trend-data.js';

const FLUSH_MS = 5000; // live readings are folded into buckets every 5 s (cheap) …
const DRAW_MS = 30000; // … and drawn at most every 30 s: a plotly redraw of this figure takes tens of ms
const RANGE_MS = 60000; // the x range and the current phase band are stretched once a minute
const RELOAD_DEBOUNCE_MS = 1500;
const ERROR_RETRY_MS = 15000;
const MIN_SPAN_S = 900;

// Panel order top → bottom, with the bedside row each lines up with and its default (fixed) y range:
// monitor trends keep a stable scale so a slow drift reads as a drift; data outside widens it.
const PANELS = [
  { row: 'row-ecg', label: 'HR', range: [30, 160], traces: [{ param: 'hr', colour: CANVAS_COLOUR.ecg }] },
  { row: 'row-pleth', label: 'SpO₂', range: [80, 100], traces: [{ param: 'spo2', colour: CANVAS_COLOUR.spo2 }] },
  {
    row: 'row-co2',
    label: 'EtCO₂ · RR',
    range: [0, 50],
    traces: [
      { param: 'etco2', colour: CANVAS_COLOUR.co2 },
      { param: 'rr', colour: '#f2f2f2', dash: 'dot' },
    ],
  },
  {
    row: 'row-bottom',
    label: 'NIBP',
    range: [40, 200],
    traces: [
      { param: 'nibp_sys', colour: CANVAS_COLOUR.nibp, marker: 'triangle-down' },
      { param: 'nibp_dia', colour: CANVAS_COLOUR.nibp, marker: 'triangle-up' },
      { param: 'nibp_mean', colour: '#9aa4ae', dash: 'dot' },
    ],
  },
];
const TRACES = PANELS.flatMap((p, i) => p.traces.map((t) => ({ ...t, panel: i })));
const PARAMS = TRACES.map((t) => t.param);
const EPISODIC = new Set(['nibp_sys', 'nibp_dia', 'nibp_mean']);

const PHASE_FILL = {
  planned: 'rgba(140,150,160,0.07)',
  baseline: 'rgba(140,200,255,0.08)',
  premedication: 'rgba(180,140,255,0.10)',
  infusion: 'rgba(255,160,60,0.13)',
  recovery: 'rgba(80,220,140,0.10)',
  ready_for_discharge: 'rgba(80,220,140,0.05)',
};
const PHASE_WORD = {
  planned: 'PLANNED', baseline: 'BASELINE', premedication: 'PREMED', infusion: 'INFUSION',
  recovery: 'RECOVERY', ready_for_discharge: 'READY',
};

let plotlyPromise = null;

/** The vendored plotly (served from the installed package at /vendor/plotly.min.js), loaded once. */
function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyPromise) {
    plotlyPromise = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = '/vendor/plotly.min.js';
      s.async = true;
      s.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error('plotly did not load')));
      s.onerror = () => reject(new Error('/vendor/plotly.min.js failed to load'));
      document.head.append(s);
    });
    plotlyPromise.catch(() => { plotlyPromise = null; });
  }
  return plotlyPromise;
}

class VigilTrends extends HTMLElement {
  static get observedAttributes() {
    return ['bay'];
  }

  attributeChangedCallback(name, oldValue, newValue) {
    if (name === 'bay' && oldValue !== newValue && this.isConnected && newValue) this._load();
  }

  connectedCallback() {
    if (!this._built) {
      this._built = true;
      const head = h('div', 'trend-head');
      this._title = h('span', 'trend-title', 'TRENDS');
      this._span = h('span', 'trend-span', 'loading…');
      head.append(this._title, this._span);
      this._plot = h('div', 'trend-plot');
      this._plot.setAttribute('role', 'img');
      this._plot.setAttribute('aria-label', 'Trends of HR, SpO2, EtCO2, RR and NIBP over the session');
      this.append(head, this._plot);
    }
    setAttr(this, 'data-state', 'loading');
    this._updates = 0;
    this._onChange = (ev) => this._change(ev.detail);
    this._timer = setInterval(() => this._flush(), FLUSH_MS);
    this._resize = new ResizeObserver(() => this._scheduleResize());
    this._resize.observe(this);
    this._attach();
    if (this.bay) this._load();
  }

  disconnectedCallback() {
    clearInterval(this._timer);
    clearTimeout(this._reloadTimer);
    clearTimeout(this._attachTimer);
    this._resize?.disconnect();
    this._store?.removeEventListener('change', this._onChange);
    this._store = null;
    if (window.Plotly && this._plotted) window.Plotly.purge(this._plot);
    this._plotted = false;
  }

  get bay() {
    return this.getAttribute('bay') ?? '';
  }

  /** Listen to the page's store (it may be created after this element connects). */
  _attach() {
    const { store } = context();
    if (!store) {
      this._attachTimer = setTimeout(() => this._attach(), 200);
      return;
    }
    this._store = store;
    store.addEventListener('change', this._onChange);
  }

  _change({ bay, kind }) {
    const store = this._store;
    if (kind === 'hello') {
      // Reconnected (same server or a restarted one): readings that arrived while this screen had no link
      // are in the server's store, not in the live stream; reload them.
      if (this._seenHello) this._reloadSoon();
      this._seenHello = true;
      return;
    }
    if (kind === 'snapshot') {
      this._phase = store.bays.get(this.bay)?.phase ?? this._phase;
      return;
    }
    if (bay !== this.bay) return;
    const b = store.bays.get(this.bay);
    if (kind === 'alarm' && b) {
      if (this._phase !== undefined && b.phase !== this._phase) this._reloadSoon();
      this._phase = b.phase;
      return;
    }
    if (kind !== 'vitals' || !b || !this._live) return;
    for (const param of PARAMS) {
      const p = readingPoint(b, b.vitals.get(param));
      if (p) this._live.get(param).add(p.t, p.v, p.tr);
    }
  }

  _reloadSoon() {
    clearTimeout(this._reloadTimer);
    this._reloadTimer = setTimeout(() => this._load(), RELOAD_DEBOUNCE_MS);
  }

  async _load() {
    const token = (this._loadToken = (this._loadToken ?? 0) + 1);
    let Plotly;
    let data;
    try {
      [Plotly, data] = await Promise.all([loadPlotly(), fetchTrends(this.bay, { params: PARAMS })]);
    } catch (err) {
      if (token !== this._loadToken) return;
      console.warn('vigil: trends unavailable:', err);
      setAttr(this, 'data-state', 'error');
      setText(this._span, 'trends unavailable');
      clearTimeout(this._reloadTimer);
      this._reloadTimer = setTimeout(() => this._load(), ERROR_RETRY_MS);
      return;
    }
    if (token !== this._loadToken || !this.isConnected) return;
    this._data = data;
    const series = new Map(data.series.map((s) => [s.param, s]));
    this._live = new Map();
    this._extent = PANELS.map((p) => [...p.range]);
    let points = 0;
    const traces = TRACES.map((tr) => {
      const s = series.get(tr.param) ?? { t: [], v: [] };
      const last = s.t.length ? s.t[s.t.length - 1] : null;
      this._live.set(tr.param, new LiveBuckets(EPISODIC.has(tr.param) ? 0.001 : data.bucket_s, EPISODIC.has(tr.param) ? Infinity : undefined, last));
      for (const v of s.v) if (v !== null) this._widen(tr.panel, v);
      points += s.t.length;
      return this._trace(tr, s.t.map(plotTimeMs), s.v);
    });
    // A session is shown from its start; without one, from the first reading of the last 2 h, so a bay
    // that just started is not a sliver at the right edge (the axis is at least 15 min wide).
    const first = Math.min(...data.series.filter((x) => x.t.length).map((x) => x.t[0]), Infinity);
    const fromData = Number.isFinite(first) ? Math.max(data.since, first - 60) : data.now - MIN_SPAN_S;
    this._since = data.session_id ? data.since : fromData;
    this._windowKind = data.session_id ? 'session' : '2h';
    this._phases = data.phases;
    this._lastRange = performance.now(); // just drawn: the next stretch in a minute
    this._lastDraw = this._lastRange;
    this._pending = new Map();
    await Plotly.react(this._plot, traces, this._layout(data.now), {
      staticPlot: true,
      displayModeBar: false,
      responsive: false,
    });
    this._plotted = true;
    this._points = points;
    setAttr(this, 'data-points', points);
    setAttr(this, 'data-window', this._windowKind);
    setAttr(this, 'data-state', 'ready');
    setAttr(this, 'data-loads', token);
    setText(this._span, this._windowKind === 'session' ? `session since ${formatClock(data.since, false)}` : 'last 2 h · no open session');
  }

  _trace(tr, x, y) {
    const episodic = EPISODIC.has(tr.param);
    const trace = {
      type: 'scatter',
      mode: tr.marker ? 'lines+markers' : 'lines',
      x,
      y,
      name: tr.param,
      xaxis: 'x',
      yaxis: tr.panel === 0 ? 'y' : `y${tr.panel + 1}`,
      line: { color: tr.colour, width: tr.dash ? 1.2 : 1.6, dash: tr.dash ?? 'solid', shape: 'linear' },
      connectgaps: episodic,
      hoverinfo: 'skip',
    };
    if (tr.marker) trace.marker = { symbol: tr.marker, size: 7, color: tr.colour };
    return trace;
  }

  _widen(panel, v) {
    const e = this._extent[panel];
    if (v < e[0]) e[0] = Math.floor(v / 10) * 10;
    if (v > e[1]) e[1] = Math.ceil(v / 10) * 10;
  }

  /** Vertical domains of the panels, lined up with the bedside grid rows (equal split without a grid). */
  _domains() {
    const box = this._plot.getBoundingClientRect();
    const grid = this.closest('.bedside-grid');
    const out = [];
    for (const p of PANELS) {
      const cell = grid?.querySelector(`.num-cell.${p.row}`);
      const r = cell?.getBoundingClientRect();
      if (!r || box.height <= 0) return PANELS.map((_, i) => [1 - (i + 1) / PANELS.length + 0.03, 1 - i / PANELS.length - 0.03]);
      const pad = 8;
      const top = Math.min(1, Math.max(0, 1 - (r.top + pad - box.top) / box.height));
      const bottom = Math.min(1, Math.max(0, 1 - (r.bottom - pad - box.top) / box.height));
      out.push([Math.min(bottom, top - 0.02), top]);
    }
    return out;
  }

  _bands(now) {
    const shapes = [];
    const annotations = [];
    const span = Math.max(MIN_SPAN_S, now + RANGE_MS / 1000 + 30 - this._since);
    const width = this._plot.clientWidth || 300;
    for (const b of this._phases ?? []) {
      const start = Math.max(b.start, this._since);
      const end = b.end ?? now;
      if (end <= start) continue;
      shapes.push({
        type: 'rect', xref: 'x', yref: 'paper', x0: plotTimeMs(start), x1: plotTimeMs(end), y0: 0, y1: 1,
        fillcolor: PHASE_FILL[b.phase] ?? 'rgba(0,0,0,0)', line: { width: 0 }, layer: 'below',
      });
      shapes.push({
        type: 'line', xref: 'x', yref: 'paper', x0: plotTimeMs(start), x1: plotTimeMs(start), y0: 0, y1: 1,
        line: { color: 'rgba(200,210,220,0.25)', width: 1, dash: 'dot' }, layer: 'below',
      });
      if (((end - start) / span) * width > 44) {
        annotations.push({
          xref: 'x', yref: 'paper', x: plotTimeMs(start), y: 1, xanchor: 'left', yanchor: 'top',
          text: PHASE_WORD[b.phase] ?? b.phase, showarrow: false,
          font: { size: 10, color: '#aab4be' },
        });
      }
    }
    return { shapes, annotations };
  }

  _layout(now) {
    const domains = this._domains();
    const layout = {
      paper_bgcolor: '#000',
      plot_bgcolor: '#000',
      font: { family: 'DejaVu Sans, sans-serif', color: '#8b949e', size: 11 },
      margin: { l: 36, r: 8, t: 2, b: 20 },
      showlegend: false,
      hovermode: false,
      xaxis: {
        type: 'date',
        // Ends a little ahead of now so live points stay in view until the next minute's stretch; at least
        // 15 min wide so the first minutes of a session fill from the left instead of filling the panel.
        range: [plotTimeMs(this._since), plotTimeMs(Math.max(now + RANGE_MS / 1000 + 30, this._since + MIN_SPAN_S))],
        tickformat: '%H:%M',
        nticks: 5,
        gridcolor: '#1d232b',
        linecolor: '#2a3139',
        anchor: `y${PANELS.length}`,
        fixedrange: true,
      },
    };
    const { shapes, annotations } = this._bands(now);
    PANELS.forEach((p, i) => {
      const name = i === 0 ? 'yaxis' : `yaxis${i + 1}`;
      layout[name] = {
        domain: domains[i],
        range: this._extent[i],
        nticks: 4,
        gridcolor: '#1d232b',
        zeroline: false,
        tickfont: { size: 10 },
        fixedrange: true,
      };
      annotations.push({
        xref: 'paper', yref: 'paper', x: 1, y: domains[i][1], xanchor: 'right', yanchor: 'top',
        text: p.label, showarrow: false, font: { size: 12, color: p.traces[0].colour }, bgcolor: 'rgba(0,0,0,0.6)',
      });
    });
    layout.shapes = shapes;
    layout.annotations = annotations;
    return layout;
  }

  /** Every 5 s: append the completed live buckets; once a minute stretch the time axis and phase band. */
  _flush() {
    if (!this._plotted || !this._live || !window.Plotly || !this._store) return;
    const now = this._store.clock.now();
    this._pending ??= new Map();
    let widened = false;
    TRACES.forEach((tr, i) => {
      const pts = this._live.get(tr.param).take(now);
      if (!pts.length) return;
      const before = this._extent[tr.panel].join();
      for (const p of pts) if (p.v !== null) this._widen(tr.panel, p.v);
      if (this._extent[tr.panel].join() !== before) widened = true;
      const q = this._pending.get(i) ?? { x: [], y: [] };
      for (const p of pts) {
        q.x.push(plotTimeMs(p.t));
        q.y.push(p.v);
      }
      this._pending.set(i, q);
    });
    const t = performance.now();
    const relayout = widened || t - this._lastRange > RANGE_MS;
    if (!relayout && (!this._pending.size || t - (this._lastDraw ?? 0) < DRAW_MS)) return;
    this._lastDraw = t;
    const idx = [...this._pending.keys()];
    const added = idx.reduce((n, i) => n + this._pending.get(i).x.length, 0);
    if (relayout) {
      // One redraw for both: append to the traces' arrays in place, new layout, new data revision.
      this._lastRange = t;
      const gd = this._plot;
      for (const i of idx) {
        const q = this._pending.get(i);
        gd.data[i].x.push(...q.x);
        gd.data[i].y.push(...q.y);
      }
      this._revision = (this._revision ?? 0) + 1;
      window.Plotly.react(gd, gd.data, { ...this._layout(now), datarevision: this._revision });
    } else {
      window.Plotly.extendTraces(
        this._plot,
        { x: idx.map((i) => this._pending.get(i).x), y: idx.map((i) => this._pending.get(i).y) },
        idx,
      );
    }
    this._pending.clear();
    if (added) {
      this._updates += 1;
      this._points += added;
      setAttr(this, 'data-points', this._points);
      setAttr(this, 'data-updates', this._updates);
    }
  }

  _scheduleResize() {
    clearTimeout(this._resizeTimer);
    this._resizeTimer = setTimeout(() => {
      if (!this._plotted || !window.Plotly || !this._store) return;
      window.Plotly.relayout(this._plot, { ...this._layout(this._store.clock.now()), autosize: true });
      window.Plotly.Plots.resize(this._plot);
    }, 250);
  }
}

customElements.define('vigil-trends', VigilTrends);
