// <vigil-bay-tile bay="bay1">: one bay on the central station.
//
// Bay label and patient initials, phase with its clock (infusion elapsed / planned, recovery elapsed /
// the 30 min minimum), device state, HR, SpO2, RR / EtCO2, last NIBP with its age, sparklines of the last
// 30 min (HR, SpO2, NIBP sys), a small pleth (or ECG) strip from the decimated waves, and the highest
// active alarm as border colour (flashing at the IEC rate for HIGH and MEDIUM), bell icon and text with
// its priority mark ("!!!", "!!", "!": colour is never the only cue). A stale or offline bay is greyed
// with "NO DATA 00:42" and shows no numbers. A paused bay shows "AUDIO PAUSED 01:42". Sizes follow the tile
// (CSS container units), so 4 or 16 tiles are equally readable. Clicking (or Enter on the focused tile)
// opens the bay's bedside view.
//
// Session clocks come from the station page (GET /api/station/sessions, every few seconds) through
// setSessionClocks(); between polls they count on from the server's `now`.
//
// Hooks: data-bay, data-state ("live" | "stale" | "offline"), data-alarm (priority of the highest active
// alarm, absent when none), data-top (this bay has the station's highest alarm), data-escalated (an
// escalation is pending), data-phase, .tile-phase (phase and clock), .tile-audio (pause countdown); each
// numeric cell has data-param and data-state like the bedside tiles; vigil-sparkline[param].

import { bayState, deviceSummary, nibpView, numericView, PRIORITY_MARK, sortedAlarms } from '../lib/derive.js';
import { formatElapsed, h, setAttr, setText } from '../lib/format.js';
import { param, PARAM_COLOUR } from '../lib/params.js';
import { onRender } from '../lib/ticker.js';
import './vigil-sparkline.js';
import './vigil-waveform.js';

const CELLS = ['hr', 'spo2', 'rr', 'etco2'];
const SPARK = new Set(['hr', 'spo2']);
const PHASE_WORDS = {
  planned: 'PLANNED', baseline: 'BASELINE', premedication: 'PREMEDICATION', infusion: 'INFUSION',
  recovery: 'RECOVERY', ready_for_discharge: 'READY FOR DISCHARGE', discharged: 'DISCHARGED', aborted: 'ABORTED',
};
const PRIORITY_WORD = { high: 'high priority alarm', medium: 'medium priority alarm', low: 'low priority alarm' };

/** bay → {row (SessionClock), at (server time it was fetched)}; set by the station page. */
const sessionClocks = new Map();

/** Replace the open sessions' clocks (rows of GET /api/station/sessions). */
export function setSessionClocks(rows) {
  sessionClocks.clear();
  for (const row of rows ?? []) sessionClocks.set(row.bay, row);
}

/** Phase word and clock text for a bay at server time ``now``: {phase, word, clock, flag}. */
export function phaseView(bay, bayId, now) {
  const row = sessionClocks.get(bayId);
  if (!row) {
    const phase = bay?.phase ?? null;
    return { phase, word: phase ? PHASE_WORDS[phase] ?? phase.toUpperCase() : '', clock: phase ? 'no session' : '', flag: null };
  }
  const since = Math.max(0, now - row.now); // seconds since the server computed the row
  const word = PHASE_WORDS[row.phase] ?? row.phase.toUpperCase();
  if (row.phase === 'infusion' && row.infusion_elapsed_s !== null) {
    const elapsed = row.infusion_elapsed_s + (row.infusion_running ? since : 0);
    const planned = row.infusion_planned_s;
    const over = planned !== null && elapsed > planned;
    const clock = `${formatElapsed(elapsed)}${planned !== null ? ` / ${formatElapsed(planned)}` : ''}`;
    return { phase: row.phase, word, clock, flag: over ? 'OVER' : row.infusion_running ? null : 'PUMP OFF' };
  }
  if (row.phase === 'recovery' && row.recovery_elapsed_s !== null) {
    const elapsed = row.recovery_elapsed_s + since;
    const done = elapsed >= row.recovery_required_s;
    return { phase: row.phase, word, clock: `${formatElapsed(elapsed)} / ≥${formatElapsed(row.recovery_required_s)}`, flag: done ? '✓ MIN' : null };
  }
  const clock = row.phase_since !== null ? formatElapsed(now - row.phase_since) : '';
  return { phase: row.phase, word, clock, flag: null };
}

/** The bell (ISO 7000-5307 "alarm" idea) as inline SVG; its colour is the text colour. */
function bellIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'alarm-icon');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M12 2a1.6 1.6 0 0 0-1.6 1.6v.7A6.5 6.5 0 0 0 5.5 10.6v4.6L3.6 18v1.2h16.8V18l-1.9-2.8v-4.6a6.5 6.5 0 0 0-4.9-6.3v-.7A1.6 1.6 0 0 0 12 2zm-2.3 18.2a2.3 2.3 0 0 0 4.6 0z');
  path.setAttribute('fill', 'currentColor');
  svg.append(path);
  return svg;
}

class VigilBayTile extends HTMLElement {
  connectedCallback() {
    const bayId = this.getAttribute('bay') ?? '';
    if (!this._built) {
      this._built = true;
      const link = h('a', 'tile-link');
      link.href = `/bedside.html?bay=${encodeURIComponent(bayId)}`;
      const head = h('div', 'tile-head');
      this._label = h('span', 'tile-label', this.getAttribute('label') ?? bayId);
      this._patient = h('span', 'tile-patient');
      this._phase = h('span', 'tile-phase');
      this._phaseWord = h('span', 'phase-word');
      this._phaseClock = h('span', 'phase-clock');
      this._phaseFlag = h('span', 'phase-flag');
      this._phase.append(this._phaseWord, this._phaseClock, this._phaseFlag);
      this._devices = h('span', 'tile-devices');
      this._audio = h('span', 'tile-audio');
      head.append(this._label, this._patient, this._phase, this._audio, this._devices);
      this._alarm = h('div', 'tile-alarm');
      this._alarmText = h('span', 'alarm-text');
      this._alarm.append(bellIcon(), this._alarmText);
      const nums = h('div', 'tile-nums');
      this._cells = new Map();
      for (const key of CELLS) {
        const cell = h('div', `tnum c-${PARAM_COLOUR[key]}`);
        cell.dataset.param = key;
        const lab = h('span', 'label', param(key).label);
        const val = h('span', 'value', '---');
        cell.append(lab, val);
        if (SPARK.has(key)) cell.append(this._spark(bayId, key));
        nums.append(cell);
        this._cells.set(key, { cell, lab, val });
      }
      this._nibp = h('div', 'tnum tnibp c-nibp');
      this._nibp.dataset.param = 'nibp';
      this._nibpVal = h('span', 'value', '---/---');
      this._nibpAge = h('span', 'age');
      this._nibp.append(h('span', 'label', 'NIBP'), this._nibpVal, this._nibpAge, this._spark(bayId, 'nibp_sys'));
      this._strip = document.createElement('vigil-waveform');
      this._strip.setAttribute('bay', bayId);
      this._strip.setAttribute('channel', 'pleth ecg_ii');
      this._strip.setAttribute('compact', '');
      this._nodata = h('div', 'tile-nodata');
      this._nodata.hidden = true;
      link.append(head, this._alarm, nums, this._nibp, this._strip, this._nodata);
      this._link = link;
      this.append(link);
    }
    setAttr(this, 'data-bay', bayId);
    setAttr(this, 'data-state', 'stale');
    this._off = onRender((now, store, bays) => {
      // A store change about other bays only: nothing on this tile changed (the 4 Hz tick renders all).
      if (bays && this._rendered && !bays.has(this.getAttribute('bay') ?? '')) return;
      this._rendered = true;
      this.render(now, store);
    });
  }

  disconnectedCallback() {
    this._off?.();
  }

  _spark(bayId, key) {
    const s = document.createElement('vigil-sparkline');
    s.setAttribute('bay', bayId);
    s.setAttribute('param', key);
    s.setAttribute('title', `${param(key).label}: last 30 min`);
    return s;
  }

  render(now, store) {
    const bayId = this.getAttribute('bay') ?? '';
    const bay = store.bays.get(bayId);
    const state = bayState(store, bay);
    setAttr(this, 'data-state', state);
    const label = bay?.label ?? this.getAttribute('label') ?? bayId;
    setText(this._label, label);
    setText(this._devices, store.connected ? deviceSummary(bay) : 'no link');
    const session = sessionClocks.get(bayId);
    setText(this._patient, session?.patient_initials ?? '');

    const ph = phaseView(bay, bayId, now);
    setAttr(this, 'data-phase', ph.phase);
    setText(this._phaseWord, ph.word);
    setText(this._phaseClock, ph.clock);
    setText(this._phaseFlag, ph.flag ?? '');
    setAttr(this._phase, 'data-flag', ph.flag ? 'true' : null);
    setAttr(this._phase, 'data-session', session ? 'true' : null);

    for (const [key, { cell, lab, val }] of this._cells) {
      const v = numericView(store, bay, key, now);
      setText(lab, param(key).label);
      setText(val, v.value);
      setAttr(cell, 'data-state', v.state);
    }
    const nb = nibpView(store, bay, now);
    setText(this._nibpVal, nb.state === 'live' ? `${nb.value} ${nb.mean}`.trim() : nb.value);
    setText(this._nibpAge, nb.state === 'live' || nb.state === 'invalid' ? `${nb.time} · ${nb.age}` : '');
    setAttr(this._nibp, 'data-state', nb.state);

    const top = sortedAlarms(bay)[0] ?? null;
    const alarmLive = top && store.connected;
    setAttr(this, 'data-alarm', alarmLive ? top.priority : null);
    setText(this._alarmText, top
      ? `${store.connected ? '' : 'last known: '}${PRIORITY_MARK[top.priority] ?? ''} ${top.text || top.code}`.trim()
      : '');
    setAttr(this._alarm, 'data-priority', top?.priority ?? null);
    setAttr(this._alarm, 'title', top ? `${PRIORITY_WORD[top.priority] ?? top.priority}: ${top.text || top.code}` : null);
    setAttr(this, 'data-escalated', bay?.escalations?.size ? 'true' : null);
    const until = bay?.audioPausedUntil ?? null;
    setText(this._audio, store.connected && until !== null && until > now ? `AUDIO PAUSED ${formatElapsed(until - now)}` : '');
    setAttr(this._link, 'title', `${label}: open the bedside view (Enter)`);

    const dead = state !== 'live';
    this._nodata.hidden = !dead;
    if (dead) {
      const heard = bay?.lastHeardAny() ?? null;
      const since = heard ?? store.disconnectedAt;
      const text = since === null ? 'NO DATA' : `NO DATA ${formatElapsed(now - since)}`;
      setText(this._nodata, store.connected ? (state === 'offline' ? `${text} · OFFLINE` : text) : `${text} · NO LINK`);
    }
  }
}

customElements.define('vigil-bay-tile', VigilBayTile);
