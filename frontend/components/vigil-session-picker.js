// <vigil-session-picker [session="SID"] [mode="compact|table"]>: choose a patient, then one of their
// recorded sessions (GET /api/recordings, newest first). Choosing navigates to review.html?session=SID
// (a deep link a colleague can be sent).
//
// compact: two selects (patient, session) for the page header; table: every recording as a row with a
// link, for the page without a session. Hooks: select.pick-patient, select.pick-session,
// tr.recording[data-session] a, [data-count] (recordings listed), .pick-error.

import { formatClock, formatDate, formatElapsed, h, setAttr, zoneAbbreviation } from '../lib/format.js';

const PHASE_WORD = Object.freeze({
  planned: 'planned', baseline: 'baseline', premedication: 'premedication', infusion: 'infusion running',
  recovery: 'in recovery', ready_for_discharge: 'ready for discharge', discharged: 'discharged', aborted: 'aborted',
});

/** ISO string or number → Unix seconds (NaN when missing). */
export function unixOf(v) {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string' || !v) return NaN;
  // pydantic dumps naive datetimes without a zone; the server's are UTC
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`;
  return Date.parse(iso) / 1000;
}

/** "Wed 25 Nov 2026 14:05–15:37 CET (1:32:10)" for a recording. */
export function sessionWhen(r) {
  const s = unixOf(r.start);
  const e = unixOf(r.end);
  const span = Number.isFinite(e) ? `${formatClock(s, false)}–${formatClock(e, false)}` : `${formatClock(s, false)}–(open)`;
  const dur = Number.isFinite(e) ? ` (${formatElapsed(e - s)})` : '';
  return `${formatDate(s)} ${span} ${zoneAbbreviation(s)}${dur}`;
}

/** Sessions grouped by patient: [{patient_id, name, identifier, sessions: [...]}], newest patient first. */
export function byPatient(rows) {
  const out = new Map();
  for (const r of rows) {
    let p = out.get(r.patient_id);
    if (!p) {
      p = { patient_id: r.patient_id, name: r.patient_name, identifier: r.identifier, sessions: [] };
      out.set(r.patient_id, p);
    }
    p.sessions.push(r);
  }
  return [...out.values()];
}

export async function fetchRecordings() {
  const res = await fetch('/api/recordings', { headers: { Accept: 'application/json' } });
  if (!res.ok) throw new Error(`GET /api/recordings: HTTP ${res.status}`);
  const rows = await res.json();
  if (!Array.isArray(rows)) throw new Error('GET /api/recordings: expected a JSON list');
  return rows;
}

function go(sid) {
  const url = new URL(location.href);
  url.search = `?session=${encodeURIComponent(sid)}`;
  location.assign(url.toString());
}

class VigilSessionPicker extends HTMLElement {
  /** Fetch the list and draw it (the page calls this once the clinic's time zone is known). */
  load(current = null) {
    if (current) this.setAttribute('session', current);
    this._load();
  }

  async _load() {
    let rows;
    try {
      rows = await fetchRecordings();
    } catch (err) {
      console.warn('vigil: recordings unavailable', err);
      const e = h('div', 'pick-error', 'Could not load the list of recorded sessions. ');
      const retry = h('button', 'rc-btn', 'Retry');
      retry.type = 'button';
      retry.addEventListener('click', () => { this.replaceChildren(); this._load(); });
      e.append(retry);
      this.replaceChildren(e);
      return;
    }
    setAttr(this, 'data-count', String(rows.length));
    if (this.getAttribute('mode') === 'table') this._table(rows); else this._compact(rows);
  }

  _compact(rows) {
    const current = this.getAttribute('session');
    const patients = byPatient(rows);
    const cur = rows.find((r) => r.session_id === current);
    const pSel = h('select', 'pick-patient');
    pSel.setAttribute('aria-label', 'patient');
    const sSel = h('select', 'pick-session');
    sSel.setAttribute('aria-label', 'session');
    for (const p of patients) {
      const o = h('option', '', `${p.name} · ${p.identifier}`);
      o.value = p.patient_id;
      pSel.append(o);
    }
    if (!current) {
      const o = h('option', '', 'Choose a patient…');
      o.value = '';
      pSel.prepend(o);
    }
    pSel.value = cur?.patient_id ?? '';
    const fill = () => {
      const p = patients.find((x) => x.patient_id === pSel.value);
      sSel.replaceChildren();
      if (!p) {
        sSel.append(h('option', '', '—'));
        sSel.disabled = true;
        return;
      }
      sSel.disabled = false;
      if (!p.sessions.some((s) => s.session_id === current)) {
        const o = h('option', '', `Choose a session (${p.sessions.length})…`);
        o.value = '';
        sSel.append(o);
      }
      for (const s of p.sessions) {
        const o = h('option', '', `${sessionWhen(s)} · ${s.bay} · ${PHASE_WORD[s.phase] ?? s.phase}`);
        o.value = s.session_id;
        sSel.append(o);
      }
      sSel.value = p.sessions.some((s) => s.session_id === current) ? current : '';
    };
    fill();
    pSel.addEventListener('change', () => {
      fill();
      const p = patients.find((x) => x.patient_id === pSel.value);
      if (p?.sessions.length === 1) go(p.sessions[0].session_id); // one session: no second question
    });
    sSel.addEventListener('change', () => { if (sSel.value) go(sSel.value); });
    this.replaceChildren(pSel, sSel);
  }

  _table(rows) {
    if (!rows.length) {
      this.replaceChildren(h('p', 'pick-empty', 'No recorded sessions yet. A session is recorded from the moment it is registered at the bedside.'));
      return;
    }
    const table = h('table', 'recordings');
    const head = h('tr');
    for (const t of ['Patient', 'ID', 'When', 'Bay', 'Outcome', '']) head.append(h('th', '', t));
    table.append(head);
    for (const r of rows) {
      const tr = h('tr', 'recording');
      tr.dataset.session = r.session_id;
      const a = h('a', 'open-link', 'Review ▶');
      a.href = `?session=${encodeURIComponent(r.session_id)}`;
      const outcome = h('td', 'outcome', PHASE_WORD[r.phase] ?? r.phase);
      outcome.dataset.final = String(Boolean(r.final));
      tr.append(h('td', 'pname', r.patient_name), h('td', 'pid', r.identifier), h('td', 'when', sessionWhen(r)),
        h('td', 'bay', r.bay), outcome);
      const cell = h('td');
      cell.append(a);
      tr.append(cell);
      tr.addEventListener('click', (ev) => { if (ev.target !== a) go(r.session_id); });
      table.append(tr);
    }
    this.replaceChildren(table);
  }
}

customElements.define('vigil-session-picker', VigilSessionPicker);
