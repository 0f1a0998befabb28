// <vigil-session-panel bay="bay1">: the bay's infusion session, run from the bedside (issue 7).
//
// A compact summary sits in the bottom-left info cell; "Session" opens a drawer over the numerics with the
// details (patient, phase, infusion clock, recovery clock, dose given, estimated Cp/Ce, last sedation score,
// discharge readiness) and the nurse's actions. Polls GET /api/bays/{bay}/session every 2 s (while there is
// no session, GET /api/sessions?bay=&active=true instead: a 404 would log a console error). Every action posts JSON to the session API; a refusal (4xx) shows the server's reason and
// changes nothing. Clocks count between polls from the server's own `now`.
//
// Whenever the bay's session or its patient changes, a bubbling `vigil-session` event tells the page (the
// bedside header shows the patient from it).
//
// Hooks: [data-phase] / [data-session] on the element, button.session-toggle, .session-drawer[hidden],
// [data-field=...] values, button[data-action=...], .session-error (refusal), .session-done (last action),
// .unmet li (unmet discharge criteria), [data-ready] on .session-readiness.

import { formatAge, formatElapsed, h, setAttr, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

const POLL_MS = 2000;
const PHASE_WORDS = {
  planned: 'Planned', baseline: 'Baseline', premedication: 'Premedication', infusion: 'Infusion',
  recovery: 'Recovery', ready_for_discharge: 'Ready for discharge', discharged: 'Discharged', aborted: 'Aborted',
};
const CHARTING = new Set(['baseline', 'premedication', 'infusion', 'recovery', 'ready_for_discharge']);
const SIDE_EFFECTS = [
  'dizziness', 'hallucinations', 'anxiety', 'dysphoria', 'dissociation', 'nausea', 'vomiting', 'headache',
  'blurred_vision', 'hypersalivation', 'agitation', 'other',
];

/** A refusal as one line: {"detail": {"reason"}} (the session API) or pydantic's list of errors (422). */
function reasonOf(status, body) {
  const d = body?.detail;
  if (d && typeof d === 'object' && !Array.isArray(d) && d.reason) return d.reason;
  if (Array.isArray(d)) return d.map((e) => `${(e.loc ?? []).slice(1).join('.')}: ${e.msg}`).join('; ');
  if (typeof d === 'string') return d;
  return `HTTP ${status}`;
}

async function call(method, path, body) {
  const init = { method, headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new Error(reasonOf(res.status, data));
    err.status = res.status;
    throw err;
  }
  return data;
}

const minutes = (s) => {
  if (!Number.isFinite(s)) return '? min';
  return s < 120 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;
};
const seconds = (iso) => (iso ? Date.parse(iso) / 1000 : NaN);
/** A number with at most ``digits`` decimals, trailing zeros dropped ("3.6", "36", "0.25"). */
const num = (v, digits = 1) => (Number.isFinite(v) ? String(Number(v.toFixed(digits))) : '—');

/** A labelled form control; returns [wrapper, control]. */
function field(label, control, name) {
  control.name = name;
  const wrap = h('label', 'sp-field');
  wrap.append(h('span', 'sp-label', label), control);
  return [wrap, control];
}

function input(type, value, attrs = {}) {
  const el = h('input');
  el.type = type;
  if (value !== undefined) el.value = String(value);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function select(options, value = '') {
  const el = h('select');
  for (const [v, text] of options) {
    const o = h('option', '', text);
    o.value = v;
    el.append(o);
  }
  el.value = value;
  return el;
}

function button(text, action, cls = '') {
  const b = h('button', `sp-btn ${cls}`.trim(), text);
  b.type = 'button';
  b.dataset.action = action;
  return b;
}

class VigilSessionPanel extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this._view = null; // SessionView (null: no open session)
      this._fetchedAt = 0; // performance.now() when _view arrived
      this._patients = new Map();
      this._busy = false;
      this._build();
    }
    this._off = onRender(() => this.render());
    this._timer = setInterval(() => this.poll(), POLL_MS);
    this.poll();
  }

  disconnectedCallback() {
    this._off?.();
    clearInterval(this._timer);
  }

  get bay() {
    return this.getAttribute('bay') ?? '';
  }

  // ---- structure ------------------------------------------------------------------------------------

  _build() {
    this._toggle = h('button', 'session-toggle');
    this._toggle.type = 'button';
    this._toggle.setAttribute('aria-expanded', 'false');
    this._toggle.title = 'Open the infusion session: chart, clocks, discharge readiness';
    this._sumTitle = h('span', 'sp-sum-title', 'Session');
    this._sumLine = h('span', 'sp-sum-line', 'loading…');
    this._toggle.append(this._sumTitle, this._sumLine);
    this._toggle.addEventListener('click', () => this.setOpen(this._drawer.hidden));

    this._drawer = h('aside', 'session-drawer');
    this._drawer.hidden = true;
    this._drawer.setAttribute('aria-label', 'Infusion session');
    const head = h('div', 'sp-head');
    this._title = h('span', 'sp-title', 'Session');
    const close = h('button', 'sp-close', 'Close');
    close.type = 'button';
    close.addEventListener('click', () => this.setOpen(false));
    head.append(this._title, close);

    this._error = h('div', 'session-error');
    this._error.setAttribute('role', 'alert');
    this._done = h('div', 'session-done');
    this._done.setAttribute('aria-live', 'polite');

    this._facts = h('dl', 'sp-facts');
    this._f = {};
    for (const [key, label] of [
      ['patient', 'Patient'], ['phase', 'Phase'], ['baseline', 'Baseline'], ['infusion', 'Infusion'], ['rate', 'Rate'],
      ['recovery', 'Recovery'], ['dose', 'Ketamine given'], ['estimate', 'Cp / Ce (estimate)'],
      ['sedation', 'Last sedation'], ['advisories', 'Advisories'],
    ]) {
      const dt = h('dt', '', label);
      const dd = h('dd');
      dd.dataset.field = key;
      this._f[key] = dd;
      this._facts.append(dt, dd);
    }
    this._estimateNote = h('div', 'sp-note');

    this._readiness = h('section', 'session-readiness');
    this._readyLine = h('div', 'sp-ready-line');
    this._readyLine.dataset.field = 'readiness';
    this._scores = h('div', 'sp-scores');
    this._aldrete = h('span', 'sp-score');
    this._aldrete.dataset.field = 'aldrete';
    this._padss = h('span', 'sp-score');
    this._padss.dataset.field = 'padss';
    this._scores.append(this._aldrete, this._padss);
    this._unmet = h('ul', 'unmet');
    this._readiness.append(h('div', 'section-title', 'Discharge readiness'), this._readyLine, this._scores, this._unmet);

    this._actions = h('div', 'sp-actions');
    this._groups = {};
    this._buildCreate();
    this._buildSteps();
    this._buildCharting();
    this._buildAbort();

    // Title and the last action's outcome stay in view while the drawer scrolls (a refusal is never hidden).
    const top = h('div', 'sp-top');
    top.append(head, this._error, this._done);
    this._drawer.append(top, this._facts, this._estimateNote, this._readiness, this._actions);
    this.append(this._toggle, this._drawer);
  }

  _group(name, title) {
    const g = h('section', 'sp-group');
    g.dataset.group = name;
    if (title) g.append(h('div', 'section-title', title));
    this._groups[name] = g;
    this._actions.append(g);
    return g;
  }

  _buildCreate() {
    const g = this._group('create', 'New session in this bay');
    // Patient data is never prefilled (a default weight would silently set the dose); the plan is.
    const [a, ident] = field('Identifier (MRN)', input('text', '', { maxlength: 64, required: '' }), 'identifier');
    const [b, name] = field('Name', input('text', '', { maxlength: 200, required: '' }), 'name');
    const [c, birth] = field('Birth date', input('date', '', { required: '' }), 'birth_date');
    const [d, weight] = field('Weight kg', input('number', '', { min: 1, max: 500, step: 0.1, required: '' }), 'weight_kg');
    // CLINICAL.md scenario: weight-based racemic ketamine ~0.5 mg/kg over about 1 h; 10 mg/mL syringe.
    const [e, dose] = field('Dose mg/kg', input('number', 0.5, { min: 0.05, max: 20, step: 0.05 }), 'dose_mg_per_kg');
    const [f, dur] = field('Duration min', input('number', 60, { min: 1, max: 1440, step: 1 }), 'duration_min');
    const [i, conc] = field('Syringe mg/mL', input('number', 10, { min: 0.1, max: 100, step: 0.1 }), 'concentration_mg_per_ml');
    const row = h('div', 'sp-form');
    row.append(a, b, c, d, e, f, i);
    const go = button('Register patient and open session', 'create', 'primary');
    go.addEventListener('click', () => this._do('session opened', async () => {
      const w = Number(weight.value);
      const id = ident.value.trim();
      if (!id || !name.value.trim() || !birth.value || !(w > 0)) {
        throw new Error('enter the identifier, name, birth date and today\'s weight.');
      }
      // A returning patient (same identifier) is reused, but only under the same name and birth date.
      const found = (await call('GET', `/api/patients?q=${encodeURIComponent(id)}`)).find((p) => p.identifier === id);
      if (found && (found.name !== name.value.trim() || found.birth_date !== birth.value)) {
        throw new Error(`identifier ${id} belongs to ${found.name}, born ${found.birth_date}: check the patient.`);
      }
      const patient = found ?? await call('POST', '/api/patients', {
        identifier: id, name: name.value.trim(), birth_date: birth.value, weight_kg: w || null,
      });
      this._patients.set(patient.id, patient);
      const result = await call('POST', '/api/sessions', {
        patient_id: patient.id,
        bay: this.bay,
        weight_kg: w || null,
        plan: {
          dose_mg_per_kg: Number(dose.value), duration_min: Number(dur.value),
          concentration_mg_per_ml: Number(conc.value),
        },
      });
      // The next session is another patient: nothing of this one stays in the form.
      for (const el of [ident, name, birth, weight]) el.value = '';
      return result;
    }));
    g.append(row, go);
  }

  _buildSteps() {
    const g = this._group('steps', 'Next step');
    this._btn = {};
    const add = (text, action, fn, cls = '') => {
      const b = button(text, action, cls);
      b.addEventListener('click', fn);
      this._btn[action] = b;
      g.append(b);
      return b;
    };
    add('Start baseline', 'baseline-phase', () => this._transition('baseline', 'baseline started'));
    add('Record baseline from monitor', 'baseline-monitor', () => this._cmd('baseline', { from_monitor: true }, 'baseline recorded'));
    add('Go to premedication', 'premedication', () => this._transition('premedication', 'premedication'));
    add('Start infusion…', 'infusion-start', () => this._askStart(), 'primary');
    add('Stop infusion', 'stop', () => this._cmd('infusion', { action: 'stop' }, 'infusion stopped: recovery'), 'warn');
    add('Ready for discharge', 'ready', () => this._transition('ready_for_discharge', 'ready for discharge'), 'primary');
    add('Discharge', 'discharge', () => this._transition('discharged', 'discharged'), 'primary');

    this._confirm = h('div', 'sp-confirm');
    this._confirm.hidden = true;
    this._confirmText = h('span', 'sp-confirm-text');
    this._confirmText.dataset.field = 'start-rate';
    const yes = button('Confirm start', 'infusion-confirm', 'primary');
    const no = button('Cancel', 'infusion-cancel');
    yes.addEventListener('click', () => this._start());
    no.addEventListener('click', () => { this._confirm.hidden = true; });
    this._confirm.append(this._confirmText, yes, no);
    g.append(this._confirm);
  }

  _buildCharting() {
    const g = this._group('chart', 'Chart');
    // medication
    const med = h('div', 'sp-form');
    const [a, drug] = field('Drug', input('text', 'midazolam', { maxlength: 100 }), 'drug');
    const [b, mdose] = field('Dose mg', input('number', 2, { min: 0.01, step: 0.5 }), 'dose');
    const [c, route] = field('Route', select([['iv', 'IV'], ['po', 'PO'], ['im', 'IM'], ['sc', 'SC'], ['sl', 'SL'], ['in', 'IN']], 'iv'), 'route');
    const mb = button('Chart medication', 'medication');
    mb.addEventListener('click', () => this._chart(
      { type: 'medication', drug: drug.value.trim(), dose: Number(mdose.value), unit: 'mg', route: route.value },
      `${drug.value.trim()} ${mdose.value} mg charted`,
    ));
    med.append(a, b, c, mb);

    // sedation
    const sed = h('div', 'sp-form');
    const rassOpts = [['', '—']];
    for (let v = 4; v >= -5; v -= 1) rassOpts.push([String(v), v > 0 ? `+${v}` : String(v)]);
    const moaasOpts = [['', '—']];
    for (let v = 5; v >= 0; v -= 1) moaasOpts.push([String(v), String(v)]);
    const [d, rass] = field('RASS', select(rassOpts, '0'), 'rass');
    const [e, moaas] = field('MOAA/S', select(moaasOpts, ''), 'moaas');
    const sb = button('Chart sedation', 'sedation');
    sb.addEventListener('click', () => {
      const item = { type: 'sedation' };
      if (rass.value !== '') item.rass = Number(rass.value);
      if (moaas.value !== '') item.moaas = Number(moaas.value);
      this._chart(item, 'sedation charted');
    });
    sed.append(d, e, sb);

    // side effects (one at a time; "none" charts an explicit none)
    const se = h('div', 'sp-form');
    const [f, effect] = field('Side effect', select([['', 'none'], ...SIDE_EFFECTS.map((x) => [x, x.replace('_', ' ')])], ''), 'effect');
    const [i, sev] = field('Severity', select([['mild', 'mild'], ['moderate', 'moderate'], ['severe', 'severe']], 'mild'), 'severity');
    const eb = button('Chart side effects', 'side-effects');
    eb.addEventListener('click', () => {
      const effects = effect.value ? { [effect.value]: sev.value } : {};
      this._chart({ type: 'side_effects', effects }, effect.value ? `${effect.value} (${sev.value}) charted` : 'no side effects charted');
    });
    se.append(f, i, eb);

    // pain
    const pain = h('div', 'sp-form');
    const painOpts = [];
    for (let v = 0; v <= 10; v += 1) painOpts.push([String(v), String(v)]);
    const [j, nrs] = field('Pain NRS', select(painOpts, '0'), 'nrs');
    const pb = button('Chart pain', 'pain');
    pb.addEventListener('click', () => this._chart({ type: 'pain', nrs: Number(nrs.value) }, `pain ${nrs.value}/10 charted`));
    pain.append(j, pb);

    this._medRow = med;
    g.append(med, sed, se, pain);

    // discharge assessment: only the items given are charted ("—" = not assessed)
    const ga = this._group('assessment', 'Discharge assessment');
    const yn = [['', '—'], ['true', 'yes'], ['false', 'no']];
    const items = [
      ['limbs_moving', 'Limbs moving', [['', '—'], ['4', '4'], ['3', '3'], ['2', '2'], ['1', '1'], ['0', '0']], Number],
      ['respiration', 'Respiration', [['', '—'], ['deep', 'deep, coughs'], ['shallow', 'shallow / dyspnoea'], ['apnoeic', 'apnoeic']], String],
      ['consciousness', 'Consciousness', [['', '—'], ['awake', 'fully awake'], ['arousable', 'arousable'], ['unresponsive', 'unresponsive']], String],
      ['on_oxygen', 'Supplemental O2', [['', '—'], ['false', 'room air'], ['true', 'on O2']], (v) => v === 'true'],
      ['oriented', 'Oriented x3', yn, (v) => v === 'true'],
      ['steady_gait', 'Steady gait', yn, (v) => v === 'true'],
      ['bleeding', 'Bleeding', [['', '—'], ['minimal', 'minimal'], ['moderate', 'moderate'], ['severe', 'severe']], String],
      ['tolerating_fluids', 'Oral fluids', yn, (v) => v === 'true'],
      ['voided', 'Voided', yn, (v) => v === 'true'],
      ['escort_present', 'Escort present', yn, (v) => v === 'true'],
    ];
    const form = h('div', 'sp-form sp-assess');
    const controls = [];
    for (const [key, label, opts, conv] of items) {
      const [wrap, el] = field(label, select(opts, ''), key);
      controls.push([key, el, conv]);
      form.append(wrap);
    }
    const ab = button('Chart assessment', 'assessment');
    ab.addEventListener('click', () => {
      const item = { type: 'assessment' };
      for (const [key, el, conv] of controls) if (el.value !== '') item[key] = conv(el.value);
      this._chart(item, 'assessment charted');
    });
    ga.append(form, ab);
  }

  _buildAbort() {
    // Kept apart from the next steps, at the bottom, and only with a reason (the server requires one).
    const g = this._group('abort', 'Abort the session');
    const row = h('div', 'sp-form');
    const [a, reason] = field('Reason', input('text', '', { maxlength: 2000, size: 36 }), 'abort_reason');
    const b = button('Abort session', 'abort', 'warn');
    b.addEventListener('click', () => this._do('session aborted', async () => {
      const result = await call('POST', this._path('transition'), { to: 'aborted', reason: reason.value.trim() || null });
      reason.value = '';
      return result;
    }));
    row.append(a, b);
    g.append(row);
  }

  setOpen(open) {
    this._drawer.hidden = !open;
    this._toggle.setAttribute('aria-expanded', open ? 'true' : 'false');
    setAttr(this, 'data-open', open ? 'true' : null);
  }

  // ---- server -----------------------------------------------------------------------------------

  async poll() {
    if (!this.bay || this._polling) return;
    this._polling = true;
    try {
      const bay = encodeURIComponent(this.bay);
      if (!this._view) {
        // Without a session, ask the list (200 with []) rather than the bay's session (404: a console error).
        const open = await call('GET', `/api/sessions?bay=${bay}&active=true`);
        if (open.length === 0) {
          this._setView(null);
          return;
        }
      }
      this._setView(await call('GET', `/api/bays/${bay}/session`));
    } catch (err) {
      if (err.status === 404) this._setView(null);
      else {
        this._pollError = err.message;
        this.render();
      }
    } finally {
      this._polling = false;
    }
  }

  _setView(view) {
    this._pollError = '';
    this._view = view;
    this._fetchedAt = performance.now();
    if (view && !this._patients.has(view.patient_id)) this._loadPatient(view.patient_id);
    this.render();
    this._announce();
  }

  /**
   * Tell the page (the header) which patient this bay's session is for: a `vigil-session` event
   * {bay, session: {id, phase}|null, patient: {name, identifier, birth_date}|null}, sent when that changes.
   */
  _announce() {
    const v = this._view;
    const p = v ? this._patients.get(v.patient_id) ?? null : null;
    const detail = {
      bay: this.bay,
      session: v ? { id: v.id, phase: v.phase, patient_id: v.patient_id } : null,
      patient: p ? { name: p.name, identifier: p.identifier, birth_date: p.birth_date ?? null } : null,
    };
    const sig = JSON.stringify(detail);
    if (sig === this._announced) return;
    this._announced = sig;
    this.dispatchEvent(new CustomEvent('vigil-session', { bubbles: true, detail }));
  }

  async _loadPatient(id) {
    this._patients.set(id, null); // once
    try {
      this._patients.set(id, await call('GET', `/api/patients/${encodeURIComponent(id)}`));
      this.render();
      this._announce();
    } catch (err) {
      console.warn('vigil: patient not loaded', err);
    }
  }

  async _do(done, action) {
    if (this._busy) return;
    this._busy = true;
    setText(this._error, '');
    setText(this._done, '…');
    this.render();
    try {
      const result = await action();
      const closed = ['discharged', 'aborted'].includes(result?.session?.phase);
      if (result?.session) this._setView(closed ? null : result.session);
      setText(this._done, done);
      if (!result?.session || closed) await this.poll();
    } catch (err) {
      setText(this._done, '');
      setText(this._error, `Refused: ${err.message}`);
    } finally {
      this._busy = false;
      this.render();
    }
  }

  _path(suffix) {
    return `/api/sessions/${encodeURIComponent(this._view?.id ?? '')}/${suffix}`;
  }

  _cmd(suffix, body, done) {
    return this._do(done, () => call('POST', this._path(suffix), body));
  }

  _transition(to, done) {
    return this._cmd('transition', { to }, done);
  }

  _chart(item, done) {
    return this._cmd('chart', { item }, done);
  }

  async _askStart() {
    const v = this._view;
    const plan = v?.plan;
    if (!plan) {
      setText(this._error, 'Refused: the session has no infusion plan.');
      return;
    }
    // The server works the rate out again for today's weight and names the guardrails that apply.
    let calc = plan;
    let notes = '';
    try {
      const body = {
        dose_mg_per_kg: plan.dose_mg_per_kg, duration_min: plan.duration_min,
        concentration_mg_per_ml: plan.concentration_mg_per_ml,
      };
      calc = await call('POST', `/api/dosing/calculate?weight_kg=${encodeURIComponent(v.weight_kg)}`, body);
      notes = [...calc.advisories, ...(calc.needs_override ? [`Needs a physician override: ${calc.needs_override}`] : [])].join(' ');
    } catch (err) {
      notes = `Rate check failed (${err.message}); the plan's rate is shown.`;
    }
    const ml = Number.isFinite(calc.ml_per_h) ? `${num(calc.ml_per_h, 2)} mL/h` : '? mL/h';
    setText(this._confirmText,
      `Start at ${ml} (${num(calc.mg_per_h, 1)} mg/h = ${num(calc.mg_per_kg_h, 2)} mg/kg/h, `
      + `${num(calc.total_mg, 1)} mg over ${num(calc.duration_min, 0)} min, ${num(calc.concentration_mg_per_ml, 1)} mg/mL)?`
      + (notes ? ` ${notes}` : ''));
    this._confirm.hidden = false;
  }

  _start() {
    this._confirm.hidden = true;
    return this._do('infusion started', async () => {
      if (this._view?.phase !== 'infusion') await call('POST', this._path('transition'), { to: 'infusion' });
      return call('POST', this._path('infusion'), { action: 'start' });
    });
  }

  // ---- render -------------------------------------------------------------------------------------

  render() {
    const v = this._view;
    const phase = v?.phase ?? null;
    setAttr(this, 'data-phase', phase ?? 'none');
    setAttr(this, 'data-session', v?.id ?? null);
    setAttr(this, 'data-busy', this._busy ? 'true' : null);
    // Seconds since the view was computed: the clocks count on between polls.
    const dt = (performance.now() - this._fetchedAt) / 1000;
    const c = v?.clocks;
    const patient = v ? this._patients.get(v.patient_id) : null;
    const who = patient ? `${patient.name} (${patient.identifier})` : (v ? v.patient_id : '');

    let clockLine = '';
    if (c && phase === 'infusion' && Number.isFinite(c.infusion_running_s)) {
      const run = c.infusion_running_s + (v.pump.state === 'running' ? dt : 0);
      clockLine = `infusion ${formatElapsed(run)} of ${minutes(c.infusion_planned_s)}`;
    } else if (c && Number.isFinite(c.recovery_elapsed_s)) {
      clockLine = `recovery ${formatElapsed(c.recovery_elapsed_s + dt)} (≥ ${minutes(c.recovery_required_s)})`;
    }
    setText(this._sumTitle, v ? `Session · ${PHASE_WORDS[phase] ?? phase}` : 'Session');
    setText(this._sumLine, v ? [who, clockLine].filter(Boolean).join(' · ') : (this._pollError || 'no open session · open to start one'));
    setText(this._title, v ? `Session · ${who}` : `New session · ${this.bay}`);

    this._facts.hidden = !v;
    this._readiness.hidden = !v;
    this._estimateNote.hidden = !v?.estimate;
    this._groups.create.hidden = Boolean(v);
    this._groups.steps.hidden = !v;
    this._groups.chart.hidden = !v || !CHARTING.has(phase);
    this._groups.assessment.hidden = !v || !['recovery', 'ready_for_discharge'].includes(phase);
    this._groups.abort.hidden = !v;
    for (const b of this._actions.querySelectorAll('button')) b.disabled = this._busy;
    if (!v) {
      this._confirm.hidden = true;
      return;
    }

    const f = this._f;
    setText(f.patient, who + (v.weight_kg ? ` · ${num(v.weight_kg)} kg` : ''));
    setText(f.phase, PHASE_WORDS[phase] ?? phase);
    const bl = v.baseline;
    setText(f.baseline, bl
      ? [bl.sbp !== null && bl.dbp !== null ? `BP ${num(bl.sbp, 0)}/${num(bl.dbp, 0)}` : 'BP not measured',
        `HR ${num(bl.hr, 0)}`, `SpO2 ${num(bl.spo2, 0)} %`, `RR ${num(bl.rr, 0)}`].join(' · ')
      : 'not recorded');
    if (Number.isFinite(c.infusion_elapsed_s) || c.infusion_started_at) {
      const running = v.pump.state === 'running';
      const run = c.infusion_running_s + (running ? dt : 0);
      const state = v.pump.state === 'stopped' ? ' · stopped' : (c.infusion_overrun ? ' · OVERRUN' : '');
      setText(f.infusion, `${formatElapsed(run)} of ${minutes(c.infusion_planned_s)} planned${state}`);
    } else {
      setText(f.infusion, Number.isFinite(c.infusion_planned_s) ? `not started · ${minutes(c.infusion_planned_s)} planned` : 'not started');
    }
    setText(f.rate, v.pump.state === 'running'
      ? `${num(v.pump.ml_per_h, 2)} mL/h · ${num(v.pump.mg_per_h, 1)} mg/h · ${num(v.pump.mg_per_kg_h, 2)} mg/kg/h`
      : (v.plan ? `${v.pump.state} · plan ${num(v.plan.ml_per_h, 2)} mL/h (${num(v.plan.mg_per_kg_h, 2)} mg/kg/h)` : v.pump.state));
    if (Number.isFinite(c.recovery_elapsed_s)) {
      const el = c.recovery_elapsed_s + dt;
      const left = Math.max(0, c.recovery_required_s - el);
      setText(f.recovery, `${formatElapsed(el)} · minimum ${minutes(c.recovery_required_s)}`
        + (left > 0 ? ` · ${formatElapsed(left)} to go` : ' · minimum reached'));
    } else {
      setText(f.recovery, 'not started (starts when the infusion stops)');
    }
    const mgPerKg = Number.isFinite(v.dose.total_mg_per_kg) ? ` (${num(v.dose.total_mg_per_kg, 3)} mg/kg)` : '';
    const planned = Number.isFinite(v.plan?.total_mg) ? ` of ${num(v.plan.total_mg, 1)} mg planned` : '';
    setText(f.dose, `${num(v.dose.total_mg, 1)} mg${mgPerKg}${planned}`);
    setText(f.estimate, v.estimate
      ? `Cp ${num(v.estimate.ketamine_cp_ng_ml, 0)} / Ce ${num(v.estimate.ketamine_ce_ng_ml, 0)} ng/mL · estimate`
      : '— (no infusion yet)');
    setText(this._estimateNote, v.estimate ? v.estimate.label : '');
    const sed = [...v.chart].reverse().find((r) => r.entry.item.type === 'sedation' && r.superseded_by === null);
    if (sed) {
      const it = sed.entry.item;
      const parts = [];
      if (it.rass !== null && it.rass !== undefined) parts.push(`RASS ${it.rass > 0 ? '+' : ''}${it.rass}`);
      if (it.moaas !== null && it.moaas !== undefined) parts.push(`MOAA/S ${it.moaas}`);
      const age = seconds(v.now) - seconds(sed.entry.observed_at) + dt;
      const due = c.sedation_score_overdue ? ' · next score OVERDUE' : '';
      setText(f.sedation, `${parts.join(' / ')} · ${formatAge(age)} ago${due}`.replace('now ago', 'just now'));
    } else {
      setText(f.sedation, c.sedation_score_overdue ? 'none charted · OVERDUE' : 'none charted');
    }
    setAttr(f.sedation, 'data-overdue', c.sedation_score_overdue ? 'true' : null);
    setText(f.advisories, v.advisories.length ? v.advisories.join(' ') : 'none');

    const r = v.readiness;
    setAttr(this._readiness, 'data-ready', r.ready ? 'true' : 'false');
    setText(this._readyLine, r.ready ? 'Meets every discharge criterion' : `Not yet: ${r.unmet.length} ${r.unmet.length === 1 ? 'criterion' : 'criteria'} unmet`);
    const score = (s, label) => `${label} ${s.total ?? '?'}/${s.max} (pass ≥ ${s.pass_at})${s.passed ? ' ✓' : ''}`
      + (s.missing.length ? ` · missing: ${s.missing.join(', ')}` : '');
    setText(this._aldrete, score(r.aldrete, 'Aldrete'));
    setText(this._padss, score(r.padss, 'PADSS'));
    const sig = JSON.stringify(r.unmet);
    if (sig !== this._unmetSig) {
      this._unmetSig = sig;
      this._unmet.replaceChildren(...r.unmet.map((u) => {
        const li = h('li', '', u);
        li.dataset.criterion = u.split(':')[0];
        return li;
      }));
    }

    // Which steps apply now (the server decides; these only hide what cannot apply).
    const allowed = new Set(v.allowed_transitions);
    const b = this._btn;
    b['baseline-phase'].hidden = phase !== 'planned';
    b['baseline-monitor'].hidden = !['baseline', 'premedication'].includes(phase);
    b.premedication.hidden = !allowed.has('premedication');
    b['infusion-start'].hidden = !(['baseline', 'premedication'].includes(phase) || (phase === 'infusion' && v.pump.state === 'idle'));
    b.stop.hidden = !(phase === 'infusion' && ['running', 'paused'].includes(v.pump.state));
    b.ready.hidden = phase !== 'recovery';
    b.discharge.hidden = phase !== 'ready_for_discharge';
    if (b['infusion-start'].hidden) this._confirm.hidden = true;
  }
}

customElements.define('vigil-session-panel', VigilSessionPanel);
