// <vigil-alarm-log bay="bay1">: the session phase and the bay's recent alarm events, newest first:
// raised / escalated / acknowledged (by whom, after how long) / cleared. Loaded from
// GET /api/bays/{bay}/alarms, then kept current from the live `alarms` messages.
//
// Hooks: .phase (text), li.log-entry[data-kind][data-priority].

import { context } from '../lib/context.js';
import { PRIORITY_MARK } from '../lib/derive.js';
import { formatClock, h, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

const MAX = 12;
const WORDS = {
  raised: 'raised', escalated: 'escalated', priority_changed: 'priority', condition_ended: 'condition ended',
  cleared: 'cleared', acknowledged: 'acknowledged', confirmation_requested: 'repeat due',
  audio_paused: 'audio paused', audio_resumed: 'audio on',
};

class VigilAlarmLog extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this._phase = h('div', 'phase');
      this._list = h('ol', 'alarm-log');
      this.append(h('div', 'section-title', 'Phase'), this._phase, h('div', 'section-title', 'Alarm log'), this._list);
      this._sig = '';
      this._loaded = false;
    }
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  async _load() {
    const bayId = this.getAttribute('bay') ?? '';
    try {
      const res = await fetch(`/api/bays/${encodeURIComponent(bayId)}/alarms?limit=${MAX}`);
      if (!res.ok) return;
      const body = await res.json();
      const bay = context().store?.bay(bayId);
      if (bay && bay.alarmLog.length === 0) bay.alarmLog = body.log.map((row) => row.event);
    } catch (err) {
      console.warn('vigil: alarm log not loaded', err);
    }
  }

  render(now, store) {
    if (!this._loaded && this.getAttribute('bay')) {
      this._loaded = true; // the page sets the bay attribute after the element connects
      this._load();
    }
    const bay = store.bays.get(this.getAttribute('bay') ?? '');
    setText(this._phase, bay?.phase ?? '—');
    const log = (bay?.alarmLog ?? []).slice(0, MAX);
    const sig = JSON.stringify([Math.round(bay?.wallTime(0) ?? 0), log.map((e) => [e.t, e.kind, e.rule_id])]);
    if (sig === this._sig) return;
    this._sig = sig;
    this._list.replaceChildren(...log.map((e) => {
      const li = h('li', 'log-entry');
      li.dataset.kind = e.kind;
      if (e.priority) li.dataset.priority = e.priority;
      // Wall-clock time (the engine's own follows the device clock: ahead of it in an accelerated simulation).
      li.append(h('span', 'log-time', formatClock(bay.wallTime(e.t, e.rx, now))));
      li.append(h('span', 'log-mark', PRIORITY_MARK[e.priority] ?? '')); // colour is never the only cue
      li.append(h('span', 'log-kind', WORDS[e.kind] ?? e.kind));
      li.append(h('span', 'log-text', e.text || e.rule_id || ''));
      const who = [];
      if (e.user) who.push(e.user);
      if (Number.isFinite(e.time_to_ack_s)) who.push(`after ${Math.round(e.time_to_ack_s)} s`);
      if (e.notify) who.push(`→ ${e.notify}`);
      if (who.length) li.append(h('span', 'log-who', who.join(' · ')));
      li.title = li.textContent; // the whole line, where a narrow log cuts it
      return li;
    }));
  }
}

customElements.define('vigil-alarm-log', VigilAlarmLog);
