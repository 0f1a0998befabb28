// <vigil-escalation-banner>: across the top of the central station, one line per escalated alarm.
//
// An alarm left unacknowledged for the profile's escalation time is escalated by the server (`alarms`
// event kind "escalated" with notify "physician" or "second_device"). The station names the bay, the
// alarm and how long it has waited, links to the bay's bedside view, and keeps the line until the alarm is
// acknowledged (or clears). Escalations to the physician also sound the HIGH pattern (lib/audio.js).
// Escalations that happened before this page loaded are recovered from the bays' alarm logs
// (GET /api/bays/{bay}/alarms) by recoverEscalations().
//
// One line per bay (its most urgent escalated alarm, "+N more"), at most MAX_ROWS; further bays are named
// on one more line. Hooks: hidden when empty; .escalation[data-bay][data-alarm-id (the alarm shown)]
// [data-priority][data-notify], a.open-bay, .esc-wait ("raised 14:02:11 · unacknowledged 02:13", in wall
// time; data-raised = that server time in Unix s).

import { PRIORITY_MARK } from '../lib/derive.js';
import { formatClock, formatElapsed, h, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

const WHO = { physician: 'physician', second_device: 'second device' };
const MAX_ROWS = 4; // bays with a line of their own; one more line names the others (the tiles stay visible)

const RANK = { high: 3, medium: 2, low: 1 };

/**
 * Pending escalations grouped by bay, in the station's bay order: [{bay, items: [{alarm, event}], top,
 * physician}]; ``top`` is the one to show (physician escalations first, then by priority).
 */
export function pendingEscalations(store) {
  const out = [];
  for (const id of store.order) {
    const bay = store.bays.get(id);
    if (!bay?.escalations?.size) continue;
    const items = [];
    for (const a of bay.ruleAlarms) {
      const e = bay.escalations.get(a.alarm_id);
      if (e && !a.acknowledged_at) items.push({ alarm: a, event: e });
    }
    if (!items.length) continue;
    const key = (x) => (x.event.notify === 'physician' ? 10 : 0) + (RANK[x.alarm.priority] ?? 0);
    items.sort((x, y) => key(y) - key(x));
    out.push({ bay, items, top: items[0], physician: items[0].event.notify === 'physician' });
  }
  return out;
}

/**
 * Load escalations that happened before the page connected: for every bay with an unacknowledged alarm,
 * read its alarm log and keep the `escalated` events of alarms still pending.
 */
export async function recoverEscalations(store) {
  const jobs = [];
  for (const [id, bay] of store.bays) {
    if (!bay.ruleAlarms.some((a) => !a.acknowledged_at)) continue;
    jobs.push((async () => {
      try {
        const res = await fetch(`/api/bays/${encodeURIComponent(id)}/alarms?limit=100`, { headers: { Accept: 'application/json' } });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const body = await res.json();
        const events = (body.log ?? []).map((row) => row.event).filter((e) => e.kind === 'escalated').reverse();
        store.bays.get(id)?.noteEscalations(events);
      } catch (err) {
        console.warn(`vigil: escalations of ${id} not loaded`, err);
      }
    })());
  }
  await Promise.all(jobs);
}

class VigilEscalationBanner extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this.setAttribute('role', 'alert');
      this.setAttribute('aria-live', 'assertive');
      this._sig = '';
      this._rows = [];
      this.hidden = true;
    }
    this._off = onRender((now, store) => this.render(now, store));
  }

  disconnectedCallback() {
    this._off?.();
  }

  render(now, store) {
    const list = pendingEscalations(store);
    const sig = JSON.stringify([store.connected, list.map((g) => [g.bay.bay, g.bay.label,
      g.items.map((x) => [x.alarm.alarm_id, x.alarm.priority, x.alarm.text, x.event.notify])])]);
    if (sig !== this._sig) {
      this._sig = sig;
      this._rows = list.slice(0, MAX_ROWS).map((g) => this._row(g, !store.connected));
      this.replaceChildren(...this._rows.map((r) => r.el));
      const rest = list.slice(MAX_ROWS);
      if (rest.length) {
        const more = h('div', 'escalation alarm more-escalations', `+${rest.length} more bays escalated:`);
        more.dataset.priority = rest.some((g) => g.physician) ? 'high' : 'medium';
        for (const g of rest) {
          const a = h('a', 'open-bay', g.bay.label);
          a.href = `/bedside.html?bay=${encodeURIComponent(g.bay.bay)}`;
          more.append(a);
        }
        this.append(more);
      }
      this.hidden = list.length === 0;
    }
    list.slice(0, MAX_ROWS).forEach((g, i) => {
      const r = this._rows[i];
      if (!r) return;
      // When it was raised, on the wall clock as the alarm log shows it: the engine's raised_at follows the
      // bay's device clock, which an accelerated simulation runs ahead of the wall clock (BayState.wallTime).
      const a = g.top.alarm;
      const raised = g.bay.wallTime(a.raised_at, g.bay.alarmSeen.get(a.alarm_id), now);
      setText(r.wait, `raised ${formatClock(raised)} · unacknowledged ${formatElapsed(now - raised)}`);
      r.wait.dataset.raised = String(raised);
    });
  }

  /** One bay's line: its most urgent escalated alarm, how many more, how long it waits, a link. */
  _row({ bay, items, top, physician }, stale) {
    const el = h('div', 'escalation alarm');
    el.dataset.bay = bay.bay;
    el.dataset.alarmId = top.alarm.alarm_id;
    el.dataset.priority = physician ? 'high' : top.alarm.priority;
    el.dataset.notify = top.event.notify;
    if (stale) el.classList.add('stale');
    el.append(h('span', 'mark', PRIORITY_MARK[el.dataset.priority] ?? ''));
    el.append(h('span', 'esc-word', `ESCALATED to ${WHO[top.event.notify] ?? top.event.notify}`));
    el.append(h('span', 'esc-bay', bay.label));
    el.append(h('span', 'text', `${PRIORITY_MARK[top.alarm.priority] ?? ''} ${top.alarm.text}`.trim()));
    if (items.length > 1) el.append(h('span', 'src', `+${items.length - 1} more`));
    const wait = h('span', 'src esc-wait');
    el.append(wait);
    const a = h('a', 'open-bay', `Open ${bay.label} →`);
    a.href = `/bedside.html?bay=${encodeURIComponent(bay.bay)}`;
    el.append(a);
    return { el, wait };
  }
}

customElements.define('vigil-escalation-banner', VigilEscalationBanner);
