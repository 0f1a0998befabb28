// <vigil-bay-tile bay="bay1">: one bay on the central station.
//
// Bay label, device state, HR, SpO2, RR / EtCO2, last NIBP with its age, a small pleth (or ECG) strip from
// the decimated waves, and the highest active alarm as border colour (flashing at the IEC rate for HIGH and
// MEDIUM) and text with its priority mark ("!!!", "!!", "!": colour is never the only cue). A stale or
// offline bay is greyed with "NO DATA 00:42" and shows no numbers. A paused bay shows "AUDIO PAUSED 01:42".
// Clicking (or Enter on the focused tile) opens the bay's bedside view.
//
// Hooks: data-bay, data-state ("live" | "stale" | "offline"), data-alarm (priority of the highest active
// alarm, absent when none), data-escalated (an escalation is pending), .tile-audio (pause countdown); each
// numeric cell has data-param and data-state like the bedside tiles.

import { bayState, deviceSummary, nibpView, numericView, PRIORITY_MARK, sortedAlarms } from '../lib/derive.js';
import { formatElapsed, h, setAttr, setText } from '../lib/format.js';
import { param, PARAM_COLOUR } from '../lib/params.js';
import { onRender } from '../lib/ticker.js';
import './vigil-waveform.js';

const CELLS = ['hr', 'spo2', 'rr', 'etco2'];

class VigilBayTile extends HTMLElement {
  connectedCallback() {
    const bayId = this.getAttribute('bay') ?? '';
    if (!this._built) {
      this._built = true;
      const link = h('a', 'tile-link');
      link.href = `/bedside.html?bay=${encodeURIComponent(bayId)}`;
      const head = h('div', 'tile-head');
      this._label = h('span', 'tile-label', this.getAttribute('label') ?? bayId);
      this._devices = h('span', 'tile-devices');
      this._audio = h('span', 'tile-audio');
      head.append(this._label, this._audio, this._devices);
      this._alarm = h('div', 'tile-alarm');
      const nums = h('div', 'tile-nums');
      this._cells = new Map();
      for (const key of CELLS) {
        const cell = h('div', `tnum c-${PARAM_COLOUR[key]}`);
        cell.dataset.param = key;
        const lab = h('span', 'label', param(key).label);
        const val = h('span', 'value', '---');
        cell.append(lab, val);
        nums.append(cell);
        this._cells.set(key, { cell, lab, val });
      }
      this._nibp = h('div', 'tnum tnibp c-nibp');
      this._nibp.dataset.param = 'nibp';
      this._nibpVal = h('span', 'value', '---/---');
      this._nibpAge = h('span', 'age');
      this._nibp.append(h('span', 'label', 'NIBP'), this._nibpVal, this._nibpAge);
      nums.append(this._nibp);
      this._strip = document.createElement('vigil-waveform');
      this._strip.setAttribute('bay', bayId);
      this._strip.setAttribute('channel', 'pleth ecg_ii');
      this._strip.setAttribute('compact', '');
      this._nodata = h('div', 'tile-nodata');
      this._nodata.hidden = true;
      link.append(head, this._alarm, nums, this._strip, this._nodata);
      this._link = link;
      this.append(link);
    }
    setAttr(this, 'data-bay', bayId);
    setAttr(this, 'data-state', 'stale');
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  render(now, store) {
    const bayId = this.getAttribute('bay') ?? '';
    const bay = store.bays.get(bayId);
    const state = bayState(store, bay);
    setAttr(this, 'data-state', state);
    setText(this._label, bay?.label ?? this.getAttribute('label') ?? bayId);
    setText(this._devices, store.connected ? deviceSummary(bay) : 'no link');

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
    setText(this._alarm, top
      ? `${store.connected ? '' : 'last known: '}${PRIORITY_MARK[top.priority] ?? ''} ${top.text || top.code}`.trim()
      : '');
    setAttr(this._alarm, 'data-priority', top?.priority ?? null);
    setAttr(this, 'data-escalated', bay?.escalations?.size ? 'true' : null);
    const until = bay?.audioPausedUntil ?? null;
    setText(this._audio, store.connected && until !== null && until > now ? `AUDIO PAUSED ${formatElapsed(until - now)}` : '');
    const label = bay?.label ?? this.getAttribute('label') ?? bayId;
    setAttr(this._link, 'title', `${label}: open the bedside view (Enter)`);

    const dead = state !== 'live';
    this._nodata.hidden = !dead;
    if (dead) {
      const heard = bay?.lastHeardAny() ?? null;
      const since = heard ?? store.disconnectedAt;
      const text = since === null ? 'NO DATA' : `NO DATA ${formatElapsed(now - since)}`;
      setText(this._nodata, store.connected ? text : `${text} · NO LINK`);
    }
  }
}

customElements.define('vigil-bay-tile', VigilBayTile);
