// Alarm audio: the IEC 60601-1-8 auditory alarm signals, synthesised with Web Audio.
//
// Every number below comes from CLINICAL.md Table 10 ("IEC 60601-1-8 alarm signal characteristics"):
//   pulses per burst   HIGH 10 (two groups of 3 + 2, "C C C – C C" twice), MEDIUM 3, LOW 1 or 2
//   pulse spacing      HIGH x = 50–125 ms (longer gap between groups), MEDIUM/LOW y = 125–250 ms
//   pulse duration td  HIGH 75–200 ms, MEDIUM/LOW 125–250 ms; rise time 10–20 % of td
//   interburst         HIGH 2.5–15 s, MEDIUM 2.5–30 s, LOW > 15 s or no repeat
//   spectrum           fundamental 150–1000 Hz with ≥ 4 harmonics in 300–4000 Hz, each within ±15 dB of it
//   loudness           ≤ 10 dB between the pulses of a burst (ours are all equal)
//   short-lived        a HIGH completes at least half a burst, a MEDIUM a full burst: a burst that has
//                      started always finishes unless the user acknowledged or paused (that cuts at once).
// Spacing is the silent gap from the end of one pulse to the start of the next. The HIGH inter-group gaps
// (2x + td inside a half, 0.7 s between the halves) follow the standard's table as remembered [R].
//
// What sounds: the highest *unacknowledged* active alarm of Vigil's rule engine for the page's bay(s),
// silenced while that bay's audio_paused_until is in the future. On the central station an alarm escalated
// to the physician (event kind "escalated", notify "physician") sounds the HIGH pattern until acknowledged,
// even during the bay's audio pause (the engine keeps escalating through a pause; the pause is the bedside
// nurse's, the escalation is addressed to the physician). A link down for LINK_LOST_S sounds LOW: this
// screen can no longer sound anything else, which must not go unnoticed (CLINICAL.md §2.6.9).
// The devices' own alarms are shown but do not sound here: the bedside monitor sounds them itself
// (Vigil is a secondary display), and they cannot be acknowledged from Vigil, so sounding them would
// make an alarm nobody can silence; the rule engine turns the device conditions that matter into its
// own alarms (technical rules), which do sound.
//
// Browsers only let audio start after a user gesture: until the first click/key the state is "off" and
// <vigil-audio-status> shows "AUDIO OFF — click or press any key to enable alarm sounds".
//
// Test hooks: document.body.dataset.audio = "off" | "on" | "paused" | "unavailable";
// document.body.dataset.audioPattern and window.__vigilAudio.pattern = "high" | "medium" | "low" | "none"
// (the signal in force, which is what plays when the state is "on"); window.__vigilAudio.lastBurst = the
// pulses of the last burst scheduled ({pattern, f0, pulses: [[startS, durationS], ...]}).

import { onRender, requestRender } from './ticker.js';

const RANK = Object.freeze({ none: 0, low: 1, medium: 2, high: 3 });
const LOOKAHEAD_S = 2; // bursts are scheduled this far ahead on the audio clock (timers may be late)
const LINK_LOST_S = 10; // no link for this long: sound the LOW pattern
const LEVEL = 0.25; // master gain (the harmonic mix peaks at 1)
const HARMONICS = [1, 0.8, 0.6, 0.5, 0.4]; // fundamental + 4 harmonics: weakest −8 dB (Table 10: ±15 dB)

/** Pulse start offsets (s) for groups of pulses: ``gaps[i]`` is the silence after pulse i. */
function offsets(td, gaps) {
  const out = [0];
  for (const g of gaps) out.push(out[out.length - 1] + td + g);
  return out;
}

const X = 0.1; // HIGH pulse spacing x (Table 10: 50–125 ms)
const TD_HIGH = 0.15; // HIGH pulse duration (Table 10: 75–200 ms)
const Y = 0.2; // MEDIUM/LOW pulse spacing y (Table 10: 125–250 ms)
const TD_MED = 0.2; // MEDIUM/LOW pulse duration (Table 10: 125–250 ms)

/**
 * The three signals (CLINICAL.md Table 10). ``pulses`` are start offsets within the burst (s), ``td`` the
 * pulse duration, ``interburstS`` the silence from the end of a burst to the start of the next.
 */
export const PATTERNS = Object.freeze({
  // 10 pulses: 3 + 2, then 3 + 2 ("C C C – C C   C C C – C C"); gap between groups 2x + td = 0.35 s,
  // between the halves 0.7 s; burst 3.5 s, then 4 s silence (Table 10: 2.5–15 s) → every 7.5 s.
  high: Object.freeze({
    f0: 660,
    td: TD_HIGH,
    pulses: Object.freeze(offsets(TD_HIGH, [X, X, 2 * X + TD_HIGH, X, 0.7, X, X, 2 * X + TD_HIGH, X])),
    interburstS: 4,
  }),
  // 3 pulses; burst 1.0 s, then 6 s silence (Table 10: 2.5–30 s).
  medium: Object.freeze({ f0: 520, td: TD_MED, pulses: Object.freeze(offsets(TD_MED, [Y, Y])), interburstS: 6 }),
  // 2 pulses; burst 0.6 s, then 20 s silence (Table 10: > 15 s).
  low: Object.freeze({ f0: 440, td: TD_MED, pulses: Object.freeze(offsets(TD_MED, [Y])), interburstS: 20 }),
});

/** Length of one burst (s): start of the first pulse to the end of the last. */
export function burstLength(p) {
  return p.pulses[p.pulses.length - 1] + p.td;
}

/**
 * Schedule one pulse on ``ctx`` into ``dest`` at audio time ``t``: the harmonic tone under a trapezoid
 * envelope with a 15 % rise and fall (Table 10: rise time 10–20 % of td). Returns the oscillator.
 */
export function schedulePulse(ctx, dest, wave, f0, t, td) {
  const osc = ctx.createOscillator();
  osc.setPeriodicWave(wave);
  osc.frequency.value = f0;
  const env = ctx.createGain();
  const ramp = 0.15 * td;
  env.gain.setValueAtTime(0, t);
  env.gain.linearRampToValueAtTime(1, t + ramp);
  env.gain.setValueAtTime(1, t + td - ramp);
  env.gain.linearRampToValueAtTime(0, t + td);
  osc.connect(env).connect(dest);
  osc.start(t);
  osc.stop(t + td + 0.01);
  osc.addEventListener('ended', () => env.disconnect());
  return osc;
}

/** The harmonic mix of Table 10's spectrum requirement as a PeriodicWave. */
export function harmonicWave(ctx) {
  const n = HARMONICS.length + 1;
  const real = new Float32Array(n);
  const imag = new Float32Array(n);
  HARMONICS.forEach((a, i) => { imag[i + 1] = a; });
  return ctx.createPeriodicWave(real, imag);
}

/**
 * Which signal the alarms call for (pure: store facts and the clock in, a decision out).
 * @param {import('./store.js').VigilStore} store
 * @param {string[]} bayIds  the page's bays
 * @param {number} now       server time (s)
 * @param {{station: boolean}} opts
 * @returns {{pattern: string, source: object|null, paused: boolean}}
 *   ``source`` {bay, alarm_id, text} of the alarm sounding; ``paused``: an alarm is silenced by a pause.
 */
export function alarmSignal(store, bayIds, now, { station }) {
  if (!store.connected) {
    const lost = store.disconnectedAt === null ? 0 : now - store.disconnectedAt;
    return lost >= LINK_LOST_S
      ? { pattern: 'low', source: { bay: null, alarm_id: 'link', text: 'NO LINK TO VIGIL SERVER' }, paused: false }
      : { pattern: 'none', source: null, paused: false };
  }
  let best = { pattern: 'none', source: null, paused: false };
  let pausedAny = false;
  for (const id of bayIds) {
    const bay = store.bays.get(id);
    if (!bay) continue;
    const paused = bay.audioPausedUntil !== null && bay.audioPausedUntil > now;
    pausedAny ||= paused;
    const escalated = station ? escalatedIds(bay) : new Set();
    for (const a of bay.ruleAlarms ?? []) {
      if (a.acknowledged_at) continue;
      const esc = escalated.has(a.alarm_id);
      if (paused && !esc) continue;
      const pattern = esc ? 'high' : a.priority;
      if ((RANK[pattern] ?? 0) > RANK[best.pattern]) {
        best = { pattern, source: { bay: id, alarm_id: a.alarm_id, text: a.text, escalated: esc }, paused: false };
      }
    }
  }
  best.paused = best.pattern === 'none' && pausedAny;
  return best;
}

/** Alarm ids of the bay escalated to the physician and not acknowledged since. */
function escalatedIds(bay) {
  const out = new Set();
  for (const [id, e] of bay.escalations ?? []) if (e.notify === 'physician') out.add(id);
  return out;
}

/**
 * Did the user silence ``source`` (acknowledged it, or paused its bay)? Then its sound stops at once;
 * otherwise (condition over, priority lowered) the burst in progress completes (Table 10, short-lived).
 */
function silencedByUser(store, source, now) {
  if (!source?.bay) return false;
  const bay = store.bays.get(source.bay);
  if (!bay) return false;
  if (bay.audioPausedUntil !== null && bay.audioPausedUntil > now) return true;
  const live = (bay.ruleAlarms ?? []).find((a) => a.alarm_id === source.alarm_id);
  if (live?.acknowledged_at) return true;
  return (bay.alarmLog ?? []).some((e) => e.kind === 'acknowledged' && e.alarm_id === source.alarm_id);
}

/** The alarm sound of one page. */
export class AlarmAudio {
  constructor() {
    this.ctx = null;
    this.state = 'off'; // 'off' | 'on' | 'paused' | 'unavailable'
    this.pattern = 'none'; // the signal in force
    this.source = null;
    this.bursts = 0;
    this.lastBurst = null;
    this._nextAt = null; // audio time of the next burst of this.pattern
    this._burstStart = 0; // audio time the last scheduled burst starts ...
    this._burstEnd = 0; // ... and ends
    this._pending = null; // {pattern, source}: switch to it when the burst in progress ends
    this._nodes = []; // scheduled oscillators (so a cut can stop them)
    this._master = null;
    this._wave = null;
    this._paused = false;
  }

  /** Create or resume the AudioContext; must run inside a user gesture. */
  enable() {
    const AC = window.AudioContext ?? window.webkitAudioContext;
    if (!AC) {
      this.state = 'unavailable';
      this._publish();
      return;
    }
    try {
      if (!this.ctx) {
        this.ctx = new AC({ latencyHint: 'interactive' });
        this._master = this.ctx.createGain();
        this._master.gain.value = LEVEL;
        this._master.connect(this.ctx.destination);
        this._wave = harmonicWave(this.ctx);
        this.ctx.addEventListener('statechange', () => this._publish());
      }
      if (this.ctx.state !== 'running') {
        this.ctx.resume().then(() => { this._publish(); this._pump(); }, (err) => console.warn('vigil: audio did not start', err));
      }
    } catch (err) {
      console.warn('vigil: Web Audio unavailable', err);
      this.state = 'unavailable';
    }
    this._publish();
    this._pump();
  }

  get running() {
    return this.ctx !== null && this.ctx.state === 'running';
  }

  /** Follow the alarms: ``want`` from alarmSignal(); ``cut``: stop the current sound at once. */
  update(want, cut) {
    this._paused = want.paused;
    const cur = this._pending ?? { pattern: this.pattern, source: this.source };
    if (want.pattern === cur.pattern) {
      if (this._pending) this._pending = { pattern: want.pattern, source: want.source }; else this.source = want.source;
    } else if (this._pending && want.pattern === this.pattern) {
      // Back to the signal still finishing its burst: keep its cadence.
      this._pending = null;
      this.source = want.source;
      this._nextAt = this._burstEnd + PATTERNS[this.pattern].interburstS;
    } else if (RANK[want.pattern] > RANK[this.pattern] || cut || !this.running || !this._inBurst()) {
      this._switch(want.pattern, want.source);
    } else {
      // Quieter and not by the user: let the burst in progress finish (short-lived conditions), then switch.
      this._cancelAfter(this._burstEnd);
      this._nextAt = null;
      this._pending = { pattern: want.pattern, source: want.source };
    }
    this._pump();
    this._publish();
  }

  _now() {
    return this.ctx ? this.ctx.currentTime : 0;
  }

  /** Is a burst sounding now (started, not ended)? A burst scheduled ahead but not started is not. */
  _inBurst() {
    const now = this._now();
    return now >= this._burstStart && now < this._burstEnd;
  }

  _switch(pattern, source) {
    this._cancelAfter(-Infinity);
    this._pending = null;
    this.pattern = pattern;
    this.source = source;
    this._burstStart = 0;
    this._burstEnd = 0;
    this._nextAt = pattern === 'none' ? null : this._now() + 0.05;
  }

  /** Stop every scheduled pulse that starts after audio time ``t`` (all of them for −Infinity). */
  _cancelAfter(t) {
    const now = this._now();
    this._nodes = this._nodes.filter((n) => {
      if (n.start <= t) return n.end > now;
      try { n.osc.stop(); } catch { /* never started */ }
      return false;
    });
  }

  /** Schedule the bursts due within the look-ahead. */
  _pump() {
    if (!this.running) return;
    const now = this._now();
    this._nodes = this._nodes.filter((n) => n.end > now);
    if (this._pending && now >= this._burstEnd) {
      const { pattern, source } = this._pending;
      this._switch(pattern, source);
      this._publish();
    }
    const p = PATTERNS[this.pattern];
    if (!p || this._pending) return; // nothing to play, or finishing the last burst before a switch
    if (this._nextAt === null || this._nextAt < now) this._nextAt = now + 0.05; // was off or stalled: start now
    while (this._nextAt < now + LOOKAHEAD_S) {
      const t0 = this._nextAt;
      for (const off of p.pulses) {
        const osc = schedulePulse(this.ctx, this._master, this._wave, p.f0, t0 + off, p.td);
        this._nodes.push({ osc, start: t0 + off, end: t0 + off + p.td });
      }
      this.bursts += 1;
      this.lastBurst = { pattern: this.pattern, f0: p.f0, at: t0, pulses: p.pulses.map((o) => [o, p.td]) };
      this._burstStart = t0;
      this._burstEnd = t0 + burstLength(p);
      this._nextAt = this._burstEnd + p.interburstS;
    }
  }

  _publish() {
    let state;
    if (this.state === 'unavailable') state = 'unavailable';
    else if (!this.running) state = 'off';
    else state = this._paused && this.pattern === 'none' ? 'paused' : 'on';
    this.state = state;
    const body = document.body;
    if (body.dataset.audio !== state) {
      body.dataset.audio = state;
      requestRender(); // <vigil-audio-status> follows at once
    }
    if (body.dataset.audioPattern !== this.pattern) body.dataset.audioPattern = this.pattern;
    window.__vigilAudio = {
      state,
      pattern: this.pattern,
      audible: state === 'on' && this.pattern !== 'none',
      source: this.source,
      bursts: this.bursts,
      lastBurst: this.lastBurst,
    };
  }
}

let instance = null;

/** The page's AlarmAudio (null before startAlarmAudio). */
export function alarmAudio() {
  return instance;
}

/**
 * Start the page's alarm sound. ``bays()`` returns the bay ids the page shows; ``station`` turns on the
 * physician-escalation rule. Audio starts at the first user gesture (or at once where autoplay is allowed).
 */
export function startAlarmAudio({ bays, station = false }) {
  if (instance) return instance;
  const audio = new AlarmAudio();
  instance = audio;
  // Every gesture (not only the first) may (re)start the sound: the audio device can be suspended later
  // (output unplugged, OS audio restarted), and then the warning asks for a click again.
  const gesture = () => {
    if (!audio.running && audio.state !== 'unavailable') audio.enable();
  };
  for (const type of ['pointerdown', 'keydown', 'touchend']) window.addEventListener(type, gesture, true);
  if (navigator.getAutoplayPolicy?.('audiocontext') === 'allowed') audio.enable();
  audio._publish();
  onRender((now, store) => {
    const want = alarmSignal(store, bays(), now, { station });
    const cut = want.pattern !== audio.pattern && silencedByUser(store, audio.source, now);
    audio.update(want, cut);
  });
  // The renderer runs 4×/s and after every change; this keeps the schedule filled if frames stall.
  setInterval(() => audio._pump(), 500);
  return audio;
}
