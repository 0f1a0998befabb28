// <vigil-trends bay="bay1">: the bedside's trends of the session so far (issue 9), on a canvas of its own.
//
// Four stacked panels lined up with the bedside rows they belong to: HR beside the ECG, SpO2 beside the
// pleth, EtCO2 + RR beside the CO2 wave, NIBP (sys ▼ / dia ▲ markers, mean dotted) beside the NIBP numeric.
// Loaded once from GET /api/bays/{bay}/trends (the open session, else the last 2 h; min/max downsampled on
// the server), then extended from the live `vitals` messages folded into the same 20 s min/max buckets.
//
// Drawing is ours, not plotly's (a plotly redraw of this figure cost 30–150 ms: a visible stutter beside the
// waveforms). The canvas is redrawn whole, from a timer, never from the animation-frame loop, and only when
// something it shows changed: new points (checked every 5 s; a bucket completes every 20 s), the time axis
// stretching (once a minute), a parameter going stale or coming back, a resize. A redraw is a few hundred
// line segments and some text: about a millisecond.
//
// What it shows: the clinic's wall clock on the time axis (lib/format.js), a value scale per panel (fixed
// clinical ranges, widened by data outside them), the alarm profile's absolute limits as dashed lines with
// their priority mark ("!!" …), phase bands shaded and named, gaps where there was no valid data, and a
// hatched "NO DATA" stretch from a parameter's last point to now while it is stale (colour is never the only
// cue: every line and band is named in text). A phase change, a new session or a reconnect (readings missed
// without a link) reloads the whole window.
//
// Hooks: data-state ("loading" | "ready" | "error"), data-loads (loads so far), data-points (points held),
// data-updates (live extensions so far), data-draws (canvas redraws so far), data-window ("session" | "2h"),
// data-stale (parameters drawn as stale, space separated), .trend-span (window text), canvas.trend-canvas,
// and figure() (what is drawn: series, phases, limits, x range) for tests.

import { context } from '../lib/context.js';
import { numericView } from '../lib/derive.js';
import { formatClock, h, setAttr, setText, zoneOffsetS } from '../lib/format.js';
import { CANVAS_COLOUR } from '../lib/params.js';
import { fetchTrends, LiveBuckets, readingPoint } from '../lib/trend-data.js';

const FLUSH_MS = 5000; // live readings are folded into buckets (and drawn if a bucket completed) every 5 s
const RANGE_MS = 60000; // the time axis is stretched once a minute
const STALE_CHECK_MS = 1000; // staleness is checked once a second (a redraw only when it changes)
const RELOAD_DEBOUNCE_MS = 1500;
const ERROR_RETRY_MS = 15000;
const MIN_SPAN_S = 900;
const HEAD_S = 90; // the axis ends this far ahead of now, so live points stay in view until the next stretch
const WINDOW_2H_S = 7200;

const BG = '#000000';
const GRID = '#1d232b';
const AXIS_TEXT = '#8b949e';
const STALE = '#5f666e';
const PRIORITY_COLOUR = { high: '#ff2a2a', medium: '#ffd21a', low: '#27d3ff' };
const PRIORITY_MARK = { high: '!!!', medium: '!!', low: '!' };
const PRIORITY_RANK = { high: 3, medium: 2, low: 1 };

// Panel order top → bottom, with the bedside row each lines up with and its default (fixed) y range:
// monitor trends keep a stable scale so a slow drift reads as a drift; data outside widens it.
const PANELS = [
  { row: 'row-ecg', label: 'HR', unit: '/min', range: [30, 160], traces: [{ param: 'hr', name: 'HR', colour: CANVAS_COLOUR.ecg }] },
  { row: 'row-pleth', label: 'SpO₂', unit: '%', range: [80, 100], traces: [{ param: 'spo2', name: 'SpO₂', colour: CANVAS_COLOUR.spo2 }] },
  {
    row: 'row-co2',
    label: 'EtCO₂ · RR',
    unit: 'mmHg · /min',
    range: [0, 50],
    traces: [
      { param: 'etco2', name: 'EtCO₂', colour: CANVAS_COLOUR.co2 },
      { param: 'rr', name: 'RR', colour: '#f2f2f2', dash: [2, 3] },
    ],
  },
  {
    row: 'row-bottom',
    label: 'NIBP',
    unit: 'mmHg',
    range: [40, 200],
    traces: [
      { param: 'nibp_sys', name: 'sys ▼', colour: CANVAS_COLOUR.nibp, marker: 'down' },
      { param: 'nibp_dia', name: 'dia ▲', colour: CANVAS_COLOUR.nibp, marker: 'up' },
      { param: 'nibp_mean', name: 'mean', colour: '#9aa4ae', dash: [2, 3], marker: 'dot' },
    ],
  },
];
const TRACES = PANELS.flatMap((p, i) => p.traces.map((t) => ({ ...t, panel: i })));
const PARAMS = TRACES.map((t) => t.param);
const EPISODIC = new Set(['nibp_sys', 'nibp_dia', 'nibp_mean']);
// The numeric whose state says whether a panel is stale (NIBP: the group).
const PANEL_STATE_PARAM = ['hr', 'spo2', 'etco2', 'nibp'];

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
const TICK_STEPS_MIN = [1, 2, 5, 10, 15, 30, 60, 120, 240];

let limitsPromise = null;

/**
 * Absolute alarm limits of the server's profile (GET /api/alarm-profile), per parameter: for each direction
 * the limit that trips first, with its priority and phases. Loaded once per page; [] when unavailable.
 */
function loadLimits() {
  if (!limitsPromise) {
    limitsPromise = fetch('/api/alarm-profile', { headers: { Accept: 'application/json' } })
      .then((res) => (res.ok ? res.json() : { rules: [] }))
      .then((profile) => {
        const out = [];
        for (const rule of profile.rules ?? []) {
          if (rule.category && rule.category !== 'physiological') continue;
          for (const lvl of rule.levels ?? []) {
            for (const lim of lvl.limits ?? []) {
              if (!Number.isFinite(lim.value) || !PARAMS.includes(lim.param)) continue;
              const below = lim.op.startsWith('<');
              if (!below && !lim.op.startsWith('>')) continue;
              out.push({ param: lim.param, op: lim.op, value: lim.value, below, priority: lvl.priority, phases: lvl.phases ?? rule.phases ?? null });
            }
          }
        }
        return out;
      })
      .catch((err) => {
        console.warn('vigil: alarm limits unavailable for the trends:', err);
        return [];
      });
  }
  return limitsPromise;
}

/** A "nice" value step for about ``n`` ticks over [lo, hi]. */
function niceStep(lo, hi, n) {
  const raw = (hi - lo) / Math.max(1, n);
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
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
      this._canvas = h('canvas', 'trend-canvas');
      this._canvas.setAttribute('role', 'img');
      this._canvas.setAttribute('aria-label', 'Trends of HR, SpO2, EtCO2, RR and NIBP over the session');
      this.append(head, this._canvas);
      this._draws = 0;
      this._updates = 0;
    }
    setAttr(this, 'data-state', 'loading');
    this._onChange = (ev) => this._change(ev.detail);
    this._timer = setInterval(() => this._flush(), FLUSH_MS);
    this._staleTimer = setInterval(() => this._checkStale(), STALE_CHECK_MS);
    this._resize = new ResizeObserver(() => this._measure());
    this._resize.observe(this);
    const grid = this.closest('.bedside-grid');
    if (grid) this._resize.observe(grid);
    this._attach();
    loadLimits().then((l) => { this._limits = l; this._redraw(); });
    if (this.bay) this._load();
  }

  disconnectedCallback() {
    clearInterval(this._timer);
    clearInterval(this._staleTimer);
    clearTimeout(this._reloadTimer);
    clearTimeout(this._attachTimer);
    this._resize?.disconnect();
    this._store?.removeEventListener('change', this._onChange);
    this._store = null;
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
    let data;
    try {
      data = await fetchTrends(this.bay, { params: PARAMS });
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
    const series = new Map(data.series.map((s) => [s.param, s]));
    this._live = new Map();
    this._series = new Map();
    this._extent = PANELS.map((p) => [...p.range]);
    for (const tr of TRACES) {
      const s = series.get(tr.param) ?? { t: [], v: [] };
      const last = s.t.length ? s.t[s.t.length - 1] : null;
      const ep = EPISODIC.has(tr.param);
      this._live.set(tr.param, new LiveBuckets(ep ? 0.001 : data.bucket_s, ep ? Infinity : undefined, last));
      this._series.set(tr.param, { t: [...s.t], v: [...s.v] });
      for (const v of s.v) if (v !== null) this._widen(tr.panel, v);
    }
    // A session is shown from its start; without one, from the first reading of the last 2 h, so a bay
    // that just started is not a sliver at the right edge (the axis is at least 15 min wide).
    const first = Math.min(...data.series.filter((x) => x.t.length).map((x) => x.t[0]), Infinity);
    const fromData = Number.isFinite(first) ? Math.max(data.since, first - 60) : data.now - MIN_SPAN_S;
    this._since = data.session_id ? data.since : fromData;
    this._windowKind = data.session_id ? 'session' : '2h';
    this._phases = data.phases;
    this._nowAtLoad = data.now;
    this._lastRange = performance.now();
    setAttr(this, 'data-window', this._windowKind);
    setAttr(this, 'data-state', 'ready');
    setAttr(this, 'data-loads', token);
    setText(this._span, this._windowKind === 'session' ? `session since ${formatClock(data.since, false)}` : 'last 2 h');
    this._stale = this._staleSet();
    this._redraw();
  }

  _widen(panel, v) {
    const e = this._extent[panel];
    if (v < e[0]) e[0] = Math.floor(v / 10) * 10;
    if (v > e[1]) e[1] = Math.ceil(v / 10) * 10;
  }

  _now() {
    return this._store?.clock?.known ? this._store.clock.now() : (this._nowAtLoad ?? Date.now() / 1000);
  }

  /** Every 5 s: append completed live buckets; redraw when points were added or once a minute. */
  _flush() {
    if (!this._series || !this._live) return;
    const now = this._now();
    let added = 0;
    for (const tr of TRACES) {
      const pts = this._live.get(tr.param).take(now);
      if (!pts.length) continue;
      const s = this._series.get(tr.param);
      for (const p of pts) {
        s.t.push(p.t);
        s.v.push(p.v);
        if (p.v !== null) this._widen(tr.panel, p.v);
      }
      added += pts.length;
    }
    if (this._windowKind === '2h') this._trim(now - WINDOW_2H_S);
    const t = performance.now();
    if (added) {
      this._updates += 1;
      setAttr(this, 'data-updates', this._updates);
    }
    if (added || t - this._lastRange > RANGE_MS) {
      this._lastRange = t;
      this._redraw();
    }
  }

  /** Without a session the window is the last 2 h: forget what fell out of it. */
  _trim(cut) {
    if (!(cut > this._since)) return;
    this._since = cut;
    for (const s of this._series.values()) {
      let k = 0;
      while (k < s.t.length && s.t[k] < cut) k += 1;
      if (k) { s.t.splice(0, k); s.v.splice(0, k); }
    }
  }

  /** Parameters (panel state keys) that are stale or without data now, as a sorted list. */
  _staleSet() {
    const store = this._store;
    if (!store) return [];
    const bay = store.bays.get(this.bay);
    const now = this._now();
    const out = [];
    for (const key of PANEL_STATE_PARAM) {
      if (key === 'nibp') {
        const st = store.connected ? (bay?.vitals.get('nibp_sys') ? 'live' : 'empty') : 'stale';
        // NIBP is episodic: stale only with its device or the link (lib/derive.js nibpView rules).
        const sys = bay?.vitals.get('nibp_sys');
        const dev = sys ? bay.devices.get(sys.device_id) : null;
        if (st === 'stale' || (dev && (dev.state === 'stale' || dev.state === 'offline'))) out.push(key);
        continue;
      }
      const v = numericView(store, bay, key, now);
      if (v.state === 'stale' || v.state === 'empty') out.push(key);
    }
    return out;
  }

  _checkStale() {
    if (!this._series) return;
    const s = this._staleSet();
    if (s.join() !== (this._stale ?? []).join()) {
      this._stale = s;
      this._redraw();
    }
  }

  /** Panel boxes (CSS px within the canvas) lined up with the bedside rows; an equal split without a grid. */
  _measure() {
    const box = this._canvas.getBoundingClientRect();
    this._cssW = box.width;
    this._cssH = box.height;
    const grid = this.closest('.bedside-grid');
    const top = 4;
    const bottom = box.height - 36; // room for the time axis labels and, under them, the title line
    const panels = [];
    for (const [i, p] of PANELS.entries()) {
      const r = grid?.querySelector(`.num-cell.${p.row}`)?.getBoundingClientRect();
      if (!r || box.height <= 0) {
        const hgt = (bottom - top) / PANELS.length;
        panels.length = 0;
        for (let k = 0; k < PANELS.length; k += 1) panels.push({ y0: top + k * hgt + 6, y1: top + (k + 1) * hgt - 6 });
        break;
      }
      const y0 = Math.max(top, r.top - box.top + 6);
      const y1 = Math.min(bottom, r.bottom - box.top - (i === PANELS.length - 1 ? 0 : 6));
      panels.push({ y0, y1: Math.max(y0 + 10, y1) });
    }
    this._panels = panels;
    this._redraw();
  }

  /** The x range [since, end] at ``now``. */
  _xRange(now) {
    const end = Math.max(Math.ceil((now + HEAD_S) / 60) * 60, this._since + MIN_SPAN_S);
    return [this._since, end];
  }

  _redraw() {
    if (!this._series || !this._panels || !(this._cssW > 0) || !(this._cssH > 0)) return;
    const c = this._canvas;
    const dpr = window.devicePixelRatio || 1;
    const pw = Math.max(1, Math.round(this._cssW * dpr));
    const ph = Math.max(1, Math.round(this._cssH * dpr));
    if (c.width !== pw) c.width = pw;
    if (c.height !== ph) c.height = ph;
    const ctx = c.getContext('2d', { alpha: false });
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const W = this._cssW;
    const H = this._cssH;
    const now = this._now();
    const [t0, t1] = this._xRange(now);
    const L = 34; // left margin: value labels
    const R = 6;
    const xOf = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    ctx.fillStyle = BG;
    ctx.fillRect(0, 0, W, H);
    ctx.font = '11px system-ui, sans-serif';
    ctx.textBaseline = 'middle';

    // Phase bands (all panels), with the phase named at the top of the first panel.
    const top = this._panels[0].y0;
    const bottom = this._panels[this._panels.length - 1].y1;
    for (const b of this._phases ?? []) {
      const s = Math.max(b.start, t0);
      const e = Math.min(b.end ?? now, t1);
      if (e <= s) continue;
      const xa = xOf(s);
      const xb = xOf(e);
      ctx.fillStyle = PHASE_FILL[b.phase] ?? 'rgba(0,0,0,0)';
      ctx.fillRect(xa, top - 4, xb - xa, bottom - top + 4);
      ctx.strokeStyle = 'rgba(200,210,220,0.3)';
      ctx.setLineDash([2, 3]);
      ctx.beginPath();
      ctx.moveTo(Math.round(xa) + 0.5, top - 4);
      ctx.lineTo(Math.round(xa) + 0.5, bottom);
      ctx.stroke();
      ctx.setLineDash([]);
      const word = PHASE_WORD[b.phase] ?? b.phase.toUpperCase();
      if (xb - xa > ctx.measureText(word).width + 6) {
        ctx.fillStyle = '#aab4be';
        ctx.textAlign = 'left';
        ctx.fillText(word, xa + 3, top + 5);
      }
    }

    // Time axis: ticks on whole clinic-clock minutes, labelled HH:MM in the clinic's zone.
    const pxPerMin = ((W - L - R) / (t1 - t0)) * 60;
    const stepMin = TICK_STEPS_MIN.find((m) => m * pxPerMin >= 62) ?? 240;
    const step = stepMin * 60;
    const off = zoneOffsetS(t0);
    ctx.strokeStyle = GRID;
    ctx.lineWidth = 1;
    ctx.fillStyle = AXIS_TEXT;
    ctx.textAlign = 'center';
    for (let t = Math.ceil((t0 + off) / step) * step - off; t <= t1; t += step) {
      const x = Math.round(xOf(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
      ctx.stroke();
      ctx.fillText(formatClock(t, false), Math.min(W - 16, Math.max(L + 14, x)), bottom + 11);
    }
    // "now" marker.
    const xn = Math.round(xOf(now)) + 0.5;
    ctx.strokeStyle = '#39424c';
    ctx.beginPath();
    ctx.moveTo(xn, top);
    ctx.lineTo(xn, bottom);
    ctx.stroke();

    const stale = new Set(this._stale ?? []);
    const phase = this._store?.bays.get(this.bay)?.phase ?? null;
    PANELS.forEach((p, i) => this._drawPanel(ctx, p, i, this._panels[i], { xOf, L, W, now, t0, stale: stale.has(PANEL_STATE_PARAM[i]), phase }));

    this._draws += 1;
    setAttr(this, 'data-draws', this._draws);
    let points = 0;
    for (const s of this._series.values()) points += s.t.length;
    setAttr(this, 'data-points', points);
    setAttr(this, 'data-stale', stale.size ? [...stale].join(' ') : null);
  }

  _drawPanel(ctx, p, i, box, { xOf, L, W, now, t0, stale, phase }) {
    const [lo, hi] = this._extent[i];
    const yOf = (v) => box.y1 - ((v - lo) / (hi - lo)) * (box.y1 - box.y0);
    // Value scale.
    const step = niceStep(lo, hi, Math.max(2, Math.min(5, Math.floor((box.y1 - box.y0) / 28))));
    ctx.lineWidth = 1;
    ctx.textAlign = 'right';
    for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9; v += step) {
      const y = Math.round(yOf(v)) + 0.5;
      ctx.strokeStyle = GRID;
      ctx.beginPath();
      ctx.moveTo(L, y);
      ctx.lineTo(W - 6, y);
      ctx.stroke();
      ctx.fillStyle = AXIS_TEXT;
      ctx.fillText(String(Math.round(v * 10) / 10), L - 4, Math.min(box.y1 - 5, Math.max(box.y0 + 5, y)));
    }
    // Alarm limits in force in this phase: dashed, in the priority colour, labelled with the mark.
    for (const lim of this._panelLimits(p, phase)) {
      if (lim.value < lo || lim.value > hi) continue;
      const y = Math.round(yOf(lim.value)) + 0.5;
      const colour = PRIORITY_COLOUR[lim.priority] ?? AXIS_TEXT;
      ctx.strokeStyle = colour;
      ctx.globalAlpha = 0.7;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      ctx.moveTo(L, y);
      ctx.lineTo(W - 6, y);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
      ctx.fillStyle = colour;
      ctx.textAlign = 'left';
      ctx.fillText(`${PRIORITY_MARK[lim.priority] ?? ''} ${lim.name} ${lim.op} ${lim.value}`, L + 3, lim.below ? y + 8 : y - 8);
    }
    // Traces: lines broken at gaps (null points), NIBP as markers.
    for (const tr of p.traces) {
      const s = this._series.get(tr.param);
      if (!s || !s.t.length) continue;
      const colour = stale ? STALE : tr.colour;
      ctx.strokeStyle = colour;
      ctx.fillStyle = colour;
      ctx.lineWidth = tr.dash ? 1.2 : 1.8;
      ctx.setLineDash(tr.dash ?? []);
      ctx.lineJoin = 'round';
      ctx.beginPath();
      let pen = false;
      const episodic = EPISODIC.has(tr.param);
      for (let k = 0; k < s.t.length; k += 1) {
        const v = s.v[k];
        if (v === null || s.t[k] < t0) { pen = episodic ? pen : false; continue; }
        const x = xOf(s.t[k]);
        const y = yOf(v);
        if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        pen = true;
      }
      ctx.stroke();
      ctx.setLineDash([]);
      if (tr.marker) {
        ctx.beginPath();
        for (let k = 0; k < s.t.length; k += 1) {
          const v = s.v[k];
          if (v === null || s.t[k] < t0) continue;
          const x = xOf(s.t[k]);
          const y = yOf(v);
          if (tr.marker === 'down') { ctx.moveTo(x - 4, y - 4); ctx.lineTo(x + 4, y - 4); ctx.lineTo(x, y + 2); ctx.closePath(); }
          else if (tr.marker === 'up') { ctx.moveTo(x - 4, y + 4); ctx.lineTo(x + 4, y + 4); ctx.lineTo(x, y - 2); ctx.closePath(); }
          else { ctx.moveTo(x + 2, y); ctx.arc(x, y, 2, 0, Math.PI * 2); }
        }
        ctx.fill();
      }
    }
    // Stale: a hatched stretch from the panel's last point to now, named.
    if (stale) {
      let last = t0;
      for (const tr of p.traces) {
        const s = this._series.get(tr.param);
        if (s?.t.length) last = Math.max(last, s.t[s.t.length - 1]);
      }
      const xa = Math.max(L, xOf(last));
      const xb = xOf(now);
      if (xb > xa) {
        ctx.save();
        ctx.beginPath();
        ctx.rect(xa, box.y0, xb - xa, box.y1 - box.y0);
        ctx.clip();
        ctx.strokeStyle = '#2a2f35';
        ctx.lineWidth = 2;
        ctx.beginPath();
        for (let x = xa - (box.y1 - box.y0); x < xb; x += 8) {
          ctx.moveTo(x, box.y1);
          ctx.lineTo(x + (box.y1 - box.y0), box.y0);
        }
        ctx.stroke();
        ctx.restore();
      }
      const text = 'NO DATA';
      ctx.font = 'bold 11px system-ui, sans-serif';
      const tw = ctx.measureText(text).width;
      const bx = Math.min(W - tw - 12, Math.max(L + 2, xb - tw - 8));
      ctx.fillStyle = '#2a2f35';
      ctx.fillRect(bx - 3, box.y1 - 16, tw + 6, 14);
      ctx.fillStyle = '#c9cdd1';
      ctx.textAlign = 'left';
      ctx.fillText(text, bx, box.y1 - 9);
      ctx.font = '11px system-ui, sans-serif';
    }
    // Panel label and legend (names, not only colours), top right.
    ctx.font = 'bold 12px system-ui, sans-serif';
    ctx.textAlign = 'right';
    let x = W - 8;
    const legend = p.traces.length > 1 ? [...p.traces].reverse() : [{ name: `${p.label} ${p.unit}`, colour: p.traces[0].colour }];
    const y = box.y0 + 8;
    const total = legend.reduce((sum, tr) => sum + ctx.measureText(tr.name).width + (tr.dash ? 14 : 0) + 8, 0);
    ctx.fillStyle = 'rgba(0,0,0,0.65)';
    ctx.fillRect(W - 8 - total - 2, y - 8, total + 4, 16);
    for (const tr of legend) {
      ctx.fillStyle = stale ? STALE : tr.colour;
      ctx.fillText(tr.name, x, y);
      x -= ctx.measureText(tr.name).width;
      if (tr.dash) {
        ctx.strokeStyle = stale ? STALE : tr.colour;
        ctx.setLineDash(tr.dash);
        ctx.beginPath();
        ctx.moveTo(x - 13, y + 0.5);
        ctx.lineTo(x - 3, y + 0.5);
        ctx.stroke();
        ctx.setLineDash([]);
        x -= 14;
      }
      x -= 8;
    }
    ctx.font = '11px system-ui, sans-serif';
  }

  /** The limits of a panel's parameters in force in ``phase``: per parameter and direction the first to trip. */
  _panelLimits(p, phase) {
    const out = [];
    for (const tr of p.traces) {
      if (EPISODIC.has(tr.param) && tr.param !== 'nibp_sys') continue; // one NIBP line pair is enough
      for (const below of [true, false]) {
        const cands = (this._limits ?? []).filter((l) => l.param === tr.param && l.below === below
          && (!l.phases || !phase || l.phases.includes(phase)));
        if (!cands.length) continue;
        // The least extreme trips first; among equal values the higher priority is shown.
        cands.sort((a, b) => (below ? b.value - a.value : a.value - b.value) || PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority]);
        out.push({ ...cands[0], name: tr.name.replace(/ [▼▲]$/, '') });
      }
    }
    return out;
  }

  /** What is drawn (for tests and the curious): series per parameter, phases, limits, x range, staleness. */
  figure() {
    const now = this._now();
    const phase = this._store?.bays.get(this.bay)?.phase ?? null;
    return {
      series: TRACES.map((tr) => ({ param: tr.param, n: this._series?.get(tr.param)?.t.length ?? 0, t: [...(this._series?.get(tr.param)?.t ?? [])], v: [...(this._series?.get(tr.param)?.v ?? [])] })),
      phases: (this._phases ?? []).map((b) => b.phase),
      limits: PANELS.flatMap((p) => this._panelLimits(p, phase)).map((l) => ({ param: l.param, op: l.op, value: l.value, priority: l.priority })),
      x: this._series ? this._xRange(now) : null,
      stale: [...(this._stale ?? [])],
      draws: this._draws,
    };
  }
}

customElements.define('vigil-trends', VigilTrends);
