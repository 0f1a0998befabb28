// <vigil-whatif session="SID">: "what-if" review of a recorded session (issue 8 item 4).
//
// Lists the alarm profile's rules (GET /api/alarm-profile[?name=]) with each level's limits and delay as
// editable numbers; "Re-run" posts the changed ones as overrides to POST /api/recordings/{sid}/whatif and
// shows the alarms that did fire (recorded) beside those that would have (what-if), matched by rule within
// the server's window. Rows only on one side are highlighted and labelled; priorities are shown as colour
// AND text ("HIGH !!!"), never colour alone. Clicking a row (or Enter on it) dispatches
//   new CustomEvent('vigil-seek', {detail: {t}, bubbles: true, composed: true})
// with t in Unix seconds (the earlier raise of the row), so a review page can seek its replay there.
// A refusal (4xx) shows the server's reason and keeps the last result.
//
// Hooks: select.whatif-profile, input[data-rule][data-level][data-field] (+ [data-param]),
// button.whatif-run, button.whatif-reset, .whatif-error, .whatif-summary [data-count=both|only_recorded|
// only_whatif], tr.whatif-row[data-match][data-rule][data-t], [data-state] on the element
// (idle|loading|running|done|error).

import { formatClock, formatElapsed, h, setText } from '../lib/format.js';

const PRIORITY_TEXT = Object.freeze({ high: 'HIGH !!!', medium: 'MEDIUM !!', low: 'LOW !', info: 'INFO' });
const MATCH_TEXT = Object.freeze({ both: 'both', only_recorded: 'only recorded', only_whatif: 'only what-if' });
const KINDS = ['value', 'baseline_delta', 'baseline_pct'];

const CSS = `
vigil-whatif { display: block; color: var(--text); font-family: var(--font); font-size: 0.9rem; }
vigil-whatif .whatif-bar { display: flex; flex-wrap: wrap; gap: 0.6rem; align-items: center; margin-bottom: 0.6rem; }
vigil-whatif .whatif-bar label { color: var(--dim); }
vigil-whatif select, vigil-whatif input, vigil-whatif button {
  background: var(--panel); color: var(--text); border: 1px solid var(--line); border-radius: 3px;
  font: inherit; padding: 0.2rem 0.4rem;
}
vigil-whatif button { cursor: pointer; padding: 0.3rem 0.9rem; font-weight: 700; }
vigil-whatif button.whatif-run { border-color: #8cc8ff; }
vigil-whatif button:disabled { opacity: 0.5; cursor: wait; }
vigil-whatif input[type=number] { width: 5.2em; text-align: right; }
vigil-whatif input.changed { border-color: #8cc8ff; background: #0d2236; }
vigil-whatif .whatif-error { color: #ffc9c9; background: #3a0d0d; border-left: 3px solid var(--alarm-high);
  padding: 0.3rem 0.6rem; margin: 0.4rem 0; white-space: pre-wrap; }
vigil-whatif .whatif-rules { max-height: 22rem; overflow: auto; border: 1px solid var(--line); margin-bottom: 0.8rem; }
vigil-whatif details { border-bottom: 1px solid var(--line); padding: 0.2rem 0.5rem; }
vigil-whatif details[data-changed] > summary { color: #8cc8ff; }
vigil-whatif summary { cursor: pointer; font-weight: 700; }
vigil-whatif summary .row-ref { color: var(--dim); font-weight: 400; margin-left: 0.5em; }
vigil-whatif .level { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: center; padding: 0.25rem 0 0.25rem 1rem; }
vigil-whatif .level .cond { color: var(--dim); flex-basis: 100%; font-size: 0.8rem; }
vigil-whatif .prio { display: inline-block; min-width: 6.5em; font-weight: 800; }
vigil-whatif [data-priority="high"] .prio, vigil-whatif .prio[data-priority="high"] { color: var(--alarm-high); }
vigil-whatif [data-priority="medium"] .prio, vigil-whatif .prio[data-priority="medium"] { color: var(--alarm-medium); }
vigil-whatif [data-priority="low"] .prio, vigil-whatif .prio[data-priority="low"] { color: var(--alarm-low); }
vigil-whatif [data-priority="info"] .prio, vigil-whatif .prio[data-priority="info"] { color: var(--alarm-info); }
vigil-whatif .whatif-summary { display: flex; gap: 1.2rem; margin: 0.4rem 0; }
vigil-whatif .whatif-summary span { font-weight: 700; }
vigil-whatif table { width: 100%; border-collapse: collapse; }
vigil-whatif th { text-align: left; color: var(--dim); font-weight: 600; border-bottom: 1px solid var(--line); padding: 0.2rem 0.4rem; }
vigil-whatif td { vertical-align: top; padding: 0.25rem 0.4rem; border-bottom: 1px solid var(--line); }
vigil-whatif tr.whatif-row { cursor: pointer; }
vigil-whatif tr.whatif-row:hover, vigil-whatif tr.whatif-row:focus { background: #11161c; outline: 1px solid #8cc8ff; }
vigil-whatif tr.whatif-row[data-match="only_whatif"] { background: #0d2236; }
vigil-whatif tr.whatif-row[data-match="only_recorded"] { background: #2e2200; }
vigil-whatif td.match { font-weight: 800; white-space: nowrap; }
vigil-whatif tr[data-match="only_whatif"] td.match { color: #8cc8ff; }
vigil-whatif tr[data-match="only_recorded"] td.match { color: var(--alarm-medium); }
vigil-whatif .alarm-text { display: block; }
vigil-whatif .alarm-meta { display: block; color: var(--dim); font-size: 0.8rem; }
vigil-whatif .none { color: var(--stale); }
vigil-whatif .time { white-space: nowrap; font-family: var(--font-num); }
`;

let sheetAdded = false;
function addStyles() {
  if (sheetAdded) return;
  sheetAdded = true;
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
}

/** A refusal as one line: {"detail": {"reason"}} (Vigil) or pydantic's list of errors (422). */
function reasonOf(status, body) {
  const d = body?.detail;
  if (d && typeof d === 'object' && !Array.isArray(d) && d.reason) return d.reason;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc ?? []).join('.')}: ${e.msg}`).join('\n');
  if (typeof d === 'string') return d;
  return `HTTP ${status}`;
}

function priorityBadge(priority) {
  const el = h('span', 'prio', PRIORITY_TEXT[priority] ?? priority ?? '');
  if (priority) el.dataset.priority = priority;
  return el;
}

function limitKind(limit) {
  return KINDS.find((k) => limit[k] !== null && limit[k] !== undefined);
}

function limitLabel(limit, kind) {
  if (kind === 'value') return `${limit.label} ${limit.op}`;
  if (kind === 'baseline_delta') return `${limit.label} ${limit.op} baseline +`;
  return `${limit.label} ${limit.op} baseline %`;
}

class VigilWhatif extends HTMLElement {
  static get observedAttributes() { return ['session']; }

  connectedCallback() {
    addStyles();
    if (!this._built) {
      this._built = true;
      this._build();
      this._loadProfile(null);
    }
  }

  attributeChangedCallback(name, before, after) {
    if (name === 'session' && before !== after && this._table) {
      this._table.replaceChildren();
      setText(this._summary, '');
      this.dataset.state = 'idle';
    }
  }

  _build() {
    this.dataset.state = 'loading';
    this._profileSelect = h('select', 'whatif-profile');
    this._profileSelect.setAttribute('aria-label', 'Alarm profile');
    this._profileSelect.addEventListener('change', () => this._loadProfile(this._profileSelect.value));
    this._run = h('button', 'whatif-run', 'Re-run');
    this._run.type = 'button';
    this._run.addEventListener('click', () => this.rerun());
    const reset = h('button', 'whatif-reset', 'Reset thresholds');
    reset.type = 'button';
    reset.addEventListener('click', () => this._reset());
    const label = h('label', '', 'Profile');
    const bar = h('div', 'whatif-bar');
    bar.append(label, this._profileSelect, this._run, reset);
    this._error = h('div', 'whatif-error');
    this._error.setAttribute('role', 'alert');
    this._error.hidden = true;
    this._rules = h('div', 'whatif-rules');
    this._summary = h('div', 'whatif-summary');
    this._summary.setAttribute('aria-live', 'polite');
    this._table = h('table', 'whatif-table');
    this.append(bar, this._error, this._rules, this._summary, this._table);
  }

  _showError(text) {
    setText(this._error, text);
    this._error.hidden = !text;
  }

  async _loadProfile(name) {
    this.dataset.state = 'loading';
    const url = name ? `/api/alarm-profile?name=${encodeURIComponent(name)}` : '/api/alarm-profile';
    try {
      const res = await fetch(url);
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        this._showError(reasonOf(res.status, body));
        this.dataset.state = 'error';
        return;
      }
      this._profile = body;
      this._profileName = name;
      this._renderProfile(body);
      this._showError('');
      this.dataset.state = 'idle';
    } catch (err) {
      this._showError(`Alarm profile not loaded: ${err}`);
      this.dataset.state = 'error';
    }
  }

  _renderProfile(profile) {
    const names = profile.available?.length ? profile.available : [profile.id];
    this._profileSelect.replaceChildren(...names.map((n) => {
      const o = h('option', '', n);
      o.value = n;
      o.selected = n === (this._profileName ?? profile.id);
      return o;
    }));
    this._rules.replaceChildren(...profile.rules.map((rule) => {
      const d = h('details', 'rule');
      d.dataset.rule = rule.id;
      const s = h('summary', '', rule.label);
      s.append(h('span', 'row-ref', `${rule.id} · row ${rule.row} · ${rule.category}`));
      d.append(s);
      for (const lvl of rule.levels) {
        const row = h('div', 'level');
        row.dataset.priority = lvl.priority;
        row.append(priorityBadge(lvl.priority));
        for (const limit of lvl.limits) {
          const kind = limitKind(limit);
          if (!kind) continue;
          const input = this._numberInput(rule.id, lvl.index, kind, limit[kind], lvl.limits.length > 1 ? limit.param : null);
          const lab = h('label', '', `${limitLabel(limit, kind)} `);
          lab.append(input, document.createTextNode(kind === 'baseline_pct' ? ' %' : ` ${limit.unit === 'mm[Hg]' ? 'mmHg' : limit.unit}`));
          row.append(lab);
        }
        const delay = this._numberInput(rule.id, lvl.index, 'delay_s', lvl.delay_s, null);
        delay.min = '0';
        delay.max = '3600';
        const dl = h('label', '', 'delay ');
        dl.append(delay, document.createTextNode(' s'));
        row.append(dl, h('span', 'cond', `profile: ${lvl.condition}${lvl.phases ? ` · phases: ${lvl.phases.join(', ')}` : ''}`));
        d.append(row);
      }
      return d;
    }));
  }

  _numberInput(ruleId, level, field, value, param) {
    const input = h('input');
    input.type = 'number';
    input.step = 'any';
    input.value = String(value);
    input.dataset.rule = ruleId;
    input.dataset.level = String(level);
    input.dataset.field = field;
    input.dataset.default = String(value);
    if (param) input.dataset.param = param;
    input.setAttribute('aria-label', `${ruleId} level ${level} ${param ?? ''} ${field}`.replace(/\s+/g, ' '));
    input.addEventListener('input', () => {
      input.classList.toggle('changed', input.value !== input.dataset.default);
      const det = input.closest('details');
      if (det) det.toggleAttribute('data-changed', det.querySelector('input.changed') !== null);
    });
    return input;
  }

  _reset() {
    for (const input of this._rules.querySelectorAll('input[data-field]')) {
      input.value = input.dataset.default;
      input.classList.remove('changed');
    }
    for (const d of this._rules.querySelectorAll('details[data-changed]')) d.removeAttribute('data-changed');
  }

  /** The changed inputs as the server's overrides (one per changed number). */
  overrides() {
    const out = [];
    for (const input of this._rules.querySelectorAll('input[data-field]')) {
      if (input.value === input.dataset.default) continue;
      const n = Number(input.value);
      const o = { rule_id: input.dataset.rule, level_index: Number(input.dataset.level) };
      if (input.dataset.param) o.param = input.dataset.param;
      o[input.dataset.field] = input.value.trim() === '' || !Number.isFinite(n) ? input.value : n;
      out.push(o);
    }
    return out;
  }

  async rerun() {
    const sid = this.getAttribute('session');
    if (!sid) {
      this._showError('No session chosen.');
      return;
    }
    this._run.disabled = true;
    this.dataset.state = 'running';
    setText(this._summary, 'Re-running the session through the alarm engine…');
    try {
      const res = await fetch(`/api/recordings/${encodeURIComponent(sid)}/whatif`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ profile: this._profileName ?? null, overrides: this.overrides() }),
      });
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        this._showError(reasonOf(res.status, body));
        setText(this._summary, '');
        this.dataset.state = 'error';
        return;
      }
      this._showError('');
      this.result = body;
      this._renderResult(body);
      this.dataset.state = 'done';
    } catch (err) {
      this._showError(`What-if failed: ${err}`);
      this.dataset.state = 'error';
    } finally {
      this._run.disabled = false;
    }
  }

  _renderResult(r) {
    const c = r.counts;
    this._summary.replaceChildren();
    for (const [key, label] of [['both', 'in both'], ['only_recorded', 'only recorded'], ['only_whatif', 'only what-if']]) {
      const s = h('span', '', `${c[key]} ${label}`);
      s.dataset.count = key;
      this._summary.append(s);
    }
    this._summary.append(h('span', 'alarm-meta',
      `profile ${r.profile_id}${r.overrides?.length ? ` + ${r.overrides.length} change(s)` : ''} · ±${r.window_s} s · ${Math.round(r.elapsed_ms ?? 0)} ms`));
    const head = h('tr');
    for (const t of ['Time', 'Rule', 'Recorded (did fire)', 'What-if (would fire)', 'Match']) head.append(h('th', '', t));
    const thead = h('thead');
    thead.append(head);
    const tbody = h('tbody');
    if (!r.rows.length) {
      const tr = h('tr');
      const td = h('td', 'none', 'No alarms in the recording or the what-if run.');
      td.colSpan = 5;
      tr.append(td);
      tbody.append(tr);
    }
    for (const row of r.rows) tbody.append(this._row(row));
    this._table.replaceChildren(thead, tbody);
  }

  _row(row) {
    const tr = h('tr', 'whatif-row');
    tr.dataset.match = row.match;
    tr.dataset.rule = row.rule_id;
    tr.dataset.t = String(row.t);
    tr.tabIndex = 0;
    const time = h('td', 'time');
    time.append(h('span', 'alarm-text', `+${formatElapsed(row.offset_s)}`), h('span', 'alarm-meta', formatClock(row.t)));
    tr.append(time, h('td', '', row.label), this._cell(row.recorded, true), this._cell(row.whatif, false));
    const m = h('td', 'match', MATCH_TEXT[row.match] ?? row.match);
    if (row.dt_s !== null && row.dt_s !== undefined && Math.abs(row.dt_s) >= 1) {
      m.append(h('span', 'alarm-meta', `${row.dt_s > 0 ? '+' : ''}${Math.round(row.dt_s)} s`));
    }
    tr.append(m);
    const seek = () => this.dispatchEvent(new CustomEvent('vigil-seek', { detail: { t: row.t }, bubbles: true, composed: true }));
    tr.addEventListener('click', seek);
    tr.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); seek(); } });
    return tr;
  }

  _cell(o, recorded) {
    const td = h('td', 'side');
    if (!o) {
      td.append(h('span', 'none', '—'));
      return td;
    }
    td.dataset.priority = o.max_priority;
    const top = h('span', 'alarm-text');
    top.append(priorityBadge(o.max_priority), document.createTextNode(` ${o.text}`));
    td.append(top);
    const meta = [`raised ${formatClock(Date.parse(o.raised_at) / 1000)}`];
    if (o.priority !== o.max_priority) meta.push(`raised at ${PRIORITY_TEXT[o.priority] ?? o.priority}`);
    meta.push(o.cleared_at ? `for ${formatElapsed(o.duration_s)}` : 'still active at the end');
    if (o.acks.length) {
      const a = o.acks[0];
      meta.push(`${recorded ? '' : 'replayed '}ack ${a.user ?? ''} after ${Math.round(a.time_to_ack_s ?? 0)} s`.trim());
    }
    if (o.escalated_to.length) meta.push(`escalated → ${o.escalated_to.join(', ')}`);
    td.append(h('span', 'alarm-meta', meta.join(' · ')));
    return td;
  }
}

customElements.define('vigil-whatif', VigilWhatif);
