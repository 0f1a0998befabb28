// <vigil-procedure bay="bay1">: the procedure in large type at the bedside (issue 9; UI.md "the procedure
// itself is always in view"): phase, the clock that matters in it (infusion elapsed / planned, recovery
// elapsed / the 30 min minimum of CLINICAL.md Table 5, else time in phase), ketamine given so far, the
// model-estimated effect-site concentration (labelled as an estimate) and the last sedation score with its
// age. The session drawer (vigil-session-panel) stays the place to act; this only shows.
//
// Polls GET /api/sessions?bay=&active=true (a list: no 404 noise when there is no session) and then
// GET /api/sessions/{id} every 5 s; clocks count on between polls from the server's `now`.
//
// Hooks: hidden without an open session; data-phase; .proc-clock, .proc-flag, .proc-dose, .proc-ce,
// .proc-score (and [data-overdue] when a sedation score is overdue).

import { formatAge, formatElapsed, h, setAttr, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

const POLL_MS = 5000;
const PHASE_WORDS = {
  planned: 'PLANNED', baseline: 'BASELINE', premedication: 'PREMEDICATION', infusion: 'INFUSION',
  recovery: 'RECOVERY', ready_for_discharge: 'READY FOR DISCHARGE',
};
const seconds = (iso) => (iso ? Date.parse(iso) / 1000 : NaN);
const num = (v, digits = 1) => (Number.isFinite(v) ? String(Number(v.toFixed(digits))) : '—');

async function getJson(path) {
  const res = await fetch(path, { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return res.json();
}

/** The last sedation entry that was not corrected later: {text, at} or null. */
function lastSedation(view) {
  let best = null;
  for (const row of view.chart ?? []) {
    const item = row.entry?.item;
    if (row.superseded_by !== null || item?.type !== 'sedation') continue;
    const at = seconds(row.entry.observed_at);
    if (best === null || at > best.at) {
      const parts = [];
      if (item.rass !== null && item.rass !== undefined) parts.push(`RASS ${item.rass > 0 ? '+' : ''}${item.rass}`.replace('-', '−'));
      if (item.moaas !== null && item.moaas !== undefined) parts.push(`MOAA/S ${item.moaas}`);
      best = { text: parts.join(' · '), at };
    }
  }
  return best;
}

class VigilProcedure extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      const top = h('div', 'proc-top');
      this._phase = h('span', 'proc-phase');
      this._clock = h('span', 'proc-clock');
      this._flag = h('span', 'proc-flag');
      top.append(this._phase, this._clock, this._flag);
      const facts = h('div', 'proc-facts');
      this._dose = h('span', 'proc-dose');
      this._ce = h('span', 'proc-ce');
      this._score = h('span', 'proc-score');
      facts.append(this._dose, this._ce, this._score);
      this.append(top, facts);
      this.hidden = true;
      this._view = null;
    }
    this._off = onRender((now) => this.render(now));
    this._poll();
  }

  disconnectedCallback() {
    this._off?.();
    clearTimeout(this._timer);
  }

  async _poll() {
    clearTimeout(this._timer);
    const bay = this.getAttribute('bay');
    if (bay) {
      try {
        const open = await getJson(`/api/sessions?bay=${encodeURIComponent(bay)}&active=true`);
        this._view = open.length ? await getJson(`/api/sessions/${encodeURIComponent(open[open.length - 1].id)}`) : null;
      } catch (err) {
        console.warn('vigil: procedure clock unavailable:', err);
      }
    }
    if (this.isConnected) this._timer = setTimeout(() => this._poll(), POLL_MS);
  }

  render(now) {
    const v = this._view;
    this.hidden = !v || !(v.phase in PHASE_WORDS);
    if (this.hidden) return;
    const c = v.clocks;
    const since = Math.max(0, now - seconds(v.now)); // seconds since the server computed the view
    setAttr(this, 'data-phase', v.phase);
    setText(this._phase, PHASE_WORDS[v.phase]);
    let clock = '';
    let flag = '';
    if (v.phase === 'infusion' && c.infusion_elapsed_s !== null) {
      const running = v.pump?.state === 'running';
      const elapsed = c.infusion_elapsed_s + (running ? since : 0);
      clock = formatElapsed(elapsed) + (c.infusion_planned_s !== null ? ` / ${formatElapsed(c.infusion_planned_s)}` : '');
      if (c.infusion_planned_s !== null && elapsed > c.infusion_planned_s) flag = 'PLANNED TIME REACHED';
      else if (!running) flag = `PUMP ${String(v.pump?.state ?? 'idle').toUpperCase()}`;
    } else if (v.phase === 'recovery' && c.recovery_elapsed_s !== null) {
      const elapsed = c.recovery_elapsed_s + since;
      clock = `${formatElapsed(elapsed)} / ≥${formatElapsed(c.recovery_required_s)}`;
      flag = elapsed >= c.recovery_required_s ? '✓ MINIMUM RECOVERY DONE' : '';
    } else {
      clock = formatElapsed(c.phase_elapsed_s + since);
    }
    setText(this._clock, clock);
    setText(this._flag, flag);
    const perKg = v.dose?.total_mg_per_kg;
    setText(this._dose, `Ketamine ${num(v.dose?.total_mg)} mg${Number.isFinite(perKg) ? ` (${num(perKg, perKg < 0.1 ? 3 : 2)} mg/kg)` : ''}`);
    setText(this._ce, v.estimate ? `Ce ${num(v.estimate.ketamine_ce_ng_ml, 0)} ng/ml (estimate)` : '');
    const sed = lastSedation(v);
    setText(this._score, sed ? `${sed.text} · ${formatAge(now - sed.at)} ago`.replace('now ago', 'just now') : 'no sedation score yet');
    setAttr(this._score, 'data-overdue', c.sedation_score_overdue ? 'true' : null);
  }
}

customElements.define('vigil-procedure', VigilProcedure);
