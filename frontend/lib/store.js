// Per-bay state built from snapshot + deltas (the browser's mirror of the hub).
//
// The store holds facts only (what the server said, and when we heard it); what is stale or live is
// derived at render time by lib/derive.js, because staleness changes with the clock, not with messages.
//
// Events (EventTarget): 'change' {detail: {bay: string|null, kind: string}} for everything except waves
// (waveform elements poll their ring buffer every animation frame instead).

import { SampleRing } from './ring-buffer.js';
import { serverError } from './notices.js';

const WAVE_KEEP_S = 20; // ring capacity in seconds of signal (longest sweep is 12 s)
const DELAY_MIN_S = 0.5; // fixed display delay: 0.2 s chunks look continuous
const DELAY_MAX_S = 3;
const DEVICE_CLOCK_TOLERANCE_S = 1; // device clock offsets below this are treated as zero (latency noise)

/** State of one waveform channel of one bay. */
export class WaveChannel {
  constructor(channel) {
    this.channel = channel;
    this.deviceId = null;
    this.fs = 0;
    this.gain = 1;
    this.unit = '';
    this.decimated = false;
    this.ring = null;
    this.lastRx = -Infinity; // server time when the newest chunk arrived
    this.received = 0; // samples accepted so far
  }

  _ensureRing(fs, keepS = WAVE_KEEP_S) {
    const capacity = Math.ceil(fs * keepS) + 64;
    if (!this.ring || this.ring.capacity < capacity) {
      const old = this.ring;
      this.ring = new SampleRing(capacity);
      if (old) for (let k = 0; k < old.length; k += 1) this.ring.push(old.timeAt(k), old.valueAt(k));
    }
  }
}

/** State of one bay. */
export class BayState {
  constructor(bay, label) {
    this.bay = bay;
    this.label = label ?? bay;
    /** @type {Map<string, object>} device_id → DeviceOut */
    this.devices = new Map();
    /** @type {Map<string, object>} param → VitalOut */
    this.vitals = new Map();
    /** @type {Map<string, object>} device_id + code → DeviceAlarmOut (active only) */
    this.alarms = new Map();
    /** Vigil's own rule-engine alarms (AlarmOut), highest priority first, as the server last listed them. */
    this.ruleAlarms = [];
    /** Recent rule-engine events, newest first (the bedside alarm log). */
    this.alarmLog = [];
    /** alarm_id → its `escalated` event (with notify), kept while that alarm is active and unacknowledged. */
    this.escalations = new Map();
    /** alarm_id → server time its `raised` event reached us (null: it was active before we connected). */
    this.alarmSeen = new Map();
    this.audioPausedUntil = null;
    this.phase = null;
    /** @type {Map<string, WaveChannel>} */
    this.waves = new Map();
    /** @type {Map<string, number>} device_id → server time we last heard anything from it */
    this.heard = new Map();
    /** @type {Map<string, number[]>} device_id → recent (tr − t) samples, for the device clock offset */
    this._clockSamples = new Map();
    /** @type {Map<string, {first: number[], last: number[]}>} device_id → first and latest [t, tr] (clock rate) */
    this._clockPairs = new Map();
    this.delay = DELAY_MIN_S; // current display delay for this bay's waveforms (seconds)
    this._latencies = []; // {at, lat}
  }

  /** Record that we heard from ``deviceId`` at server time ``t``. */
  touch(deviceId, t) {
    if (!deviceId || !Number.isFinite(t)) return;
    const prev = this.heard.get(deviceId);
    if (prev === undefined || t > prev) this.heard.set(deviceId, t);
  }

  /** Server time we last heard from the device (its last_data, a reading, or a wave), or null. */
  lastHeard(deviceId) {
    const d = this.devices.get(deviceId);
    const a = d?.last_data ?? null;
    const b = this.heard.get(deviceId) ?? null;
    if (a === null) return b;
    if (b === null) return a;
    return Math.max(a, b);
  }

  /** Latest time we heard from any device of the bay, or null. */
  lastHeardAny() {
    let best = null;
    const ids = new Set([...this.devices.keys(), ...this.heard.keys()]);
    for (const id of ids) {
      const t = this.lastHeard(id);
      if (t !== null && (best === null || t > best)) best = t;
    }
    return best;
  }

  /** Device clock correction (server − device, seconds) estimated from readings' tr − t; 0 when small. */
  deviceClockCorrection(deviceId) {
    const s = this._clockSamples.get(deviceId);
    if (!s || !s.length) return null;
    const corr = Math.min(...s); // tr − t = offset + latency ≥ offset
    return Math.abs(corr) <= DEVICE_CLOCK_TOLERANCE_S ? 0 : corr;
  }

  _clockSample(deviceId, d) {
    if (!Number.isFinite(d)) return;
    let s = this._clockSamples.get(deviceId);
    if (!s) { s = []; this._clockSamples.set(deviceId, s); }
    s.push(d);
    if (s.length > 30) s.shift();
  }

  /**
   * Track how late chunks arrive, to size the display delay: the sweep reaches a chunk's first sample
   * ``delay`` seconds after its time, so the whole chunk must be here by then.
   */
  _latencySample(now, lat) {
    if (!(lat >= -1 && lat <= DELAY_MAX_S)) return; // backlog (resume) or nonsense: not a live latency
    this._latencies.push({ at: now, lat });
    this.delay = Math.max(this.delay, this._delayTarget(now));
  }

  _delayTarget(now) {
    const l = this._latencies;
    while (l.length && l[0].at < now - 10) l.shift();
    let max = 0;
    for (const x of l) if (x.lat > max) max = x.lat;
    return Math.min(DELAY_MAX_S, Math.max(DELAY_MIN_S, max + 0.15));
  }

  /** Remember `escalated` events that name someone to notify (then drop what is no longer pending). */
  noteEscalations(events) {
    for (const e of events) {
      if (e.kind === 'escalated' && e.notify && e.alarm_id) this.escalations.set(e.alarm_id, e);
    }
    this.pruneEscalations();
  }

  /** Keep only escalations whose alarm is still active and unacknowledged. */
  pruneEscalations() {
    if (!this.escalations.size) return;
    const pending = new Set(this.ruleAlarms.filter((a) => !a.acknowledged_at).map((a) => a.alarm_id));
    for (const id of [...this.escalations.keys()]) if (!pending.has(id)) this.escalations.delete(id);
  }

  /**
   * Server (wall-clock) time of an alarm-engine time ``t`` of this bay. The engine runs on the bay's device
   * clock; for an accelerated simulation that is ahead of the wall clock. ``rx`` (when we heard of it, if we
   * did live) wins; else the device clock correction estimated from the readings is applied; never later
   * than ``now``.
   */
  wallTime(t, rx = null, now = Infinity) {
    if (Number.isFinite(rx)) return Math.min(rx, now);
    if (!Number.isFinite(t)) return t;
    // The device heard from most recently: its clock offset, and its rate (an accelerated simulation's
    // device clock runs N times faster than the wall clock: a time N minutes back on it is 1 minute back).
    let best = null;
    for (const [id, p] of this._clockPairs) if (!best || p.last[1] > best.p.last[1]) best = { id, p };
    if (!best) return Math.min(t, now);
    const { first, last } = best.p;
    let rate = last[0] - first[0] > 5 ? (last[1] - first[1]) / (last[0] - first[0]) : 1;
    if (!(rate > 0) || Math.abs(rate - 1) < 0.05) rate = 1;
    const wall = rate === 1 ? t + (this.deviceClockCorrection(best.id) ?? 0) : last[1] + (t - last[0]) * rate;
    return Math.min(wall, now);
  }

  /** Display delay at server time ``now``: rises at once, decays slowly back to the target. */
  displayDelay(now) {
    const dtS = this._delayAt === undefined ? 0 : Math.max(0, now - this._delayAt);
    this._delayAt = now;
    const target = this._delayTarget(now);
    if (this.delay > target) this.delay = Math.max(target, this.delay - 0.05 * Math.min(dtS, 0.2));
    return this.delay;
  }
}

export class VigilStore extends EventTarget {
  /** @param {import('./clock.js').ServerClock} clock */
  constructor(clock) {
    super();
    this.clock = clock;
    /** @type {Map<string, BayState>} */
    this.bays = new Map();
    /** Bay ids in server order (snapshot order; pages may impose /api/bays order). */
    this.order = [];
    this.staleAfterS = 5; // replaced by hello.stale_after_s
    this.offlineAfterS = 30; // replaced by hello.offline_after_s
    this.connected = false;
    this.disconnectedAt = null; // server time (estimated) when the link went down
    this.hello = null;
    this.replay = false;
    /** The last `replay` message {session_id, state, speed, position, start, end} (replay streams only). */
    this.replayState = null;
    /**
     * Seconds of signal each waveform ring keeps. A replay sends waveforms up to speed × 1 s (at most 60 s)
     * ahead of its clock so the sweep never waits for them: its rings must hold that lead plus the sweep.
     */
    this.waveKeepS = WAVE_KEEP_S;
    this.lastError = null;
  }

  /** Dispatch table for VigilSocket: one handler per message type. */
  handlers() {
    return {
      hello: (m) => this.onHello(m),
      snapshot: (m) => this.onSnapshot(m),
      vitals: (m) => this.onVitals(m),
      wave: (m) => this.onWave(m),
      status: (m) => this.onStatus(m),
      device_alarm: (m) => this.onDeviceAlarm(m),
      alarms: (m) => this.onAlarms(m),
      heartbeat: () => {},
      error: (m) => this.onError(m),
      // Only a replay page (its clock follows the replay position) expects `replay` messages; on a live
      // page one is a protocol error, reported as an unknown type.
      ...(typeof this.clock.update === 'function' ? { replay: (m) => this.onReplay(m) } : {}),
    };
  }

  /** The bay's state (created on first use). */
  bay(bayId, label) {
    let b = this.bays.get(bayId);
    if (!b) {
      b = new BayState(bayId, label);
      this.bays.set(bayId, b);
      if (!this.order.includes(bayId)) this.order.push(bayId);
    } else if (label) {
      b.label = label;
    }
    return b;
  }

  /** The link went up (hello received) or down (socket closed). */
  setConnected(open) {
    if (this.connected === open) return;
    this.connected = open;
    this.disconnectedAt = open ? null : this.clock.now();
    this._emit(null, 'connection');
  }

  onHello(m) {
    this.hello = m;
    if (Number.isFinite(m.stale_after_s)) this.staleAfterS = m.stale_after_s;
    if (Number.isFinite(m.offline_after_s)) this.offlineAfterS = m.offline_after_s;
    this.replay = Boolean(m.replay);
    this.lastError = null;
    serverError(null);
    this.setConnected(true);
    this._emit(null, 'hello');
  }

  onSnapshot(m) {
    // After a seek (and on a replay stream's (re)connect) time jumps: waveform rings, device clocks,
    // latencies and the alarm log of the bays in the snapshot start afresh, then the snapshot applies.
    if (m.reason === 'seek' || (m.reason === 'connect' && this.replayState !== null)) {
      for (const bo of m.bays ?? []) {
        const old = this.bays.get(bo.bay);
        if (old) this.bays.set(bo.bay, new BayState(bo.bay, old.label));
      }
      this.clock.reset?.();
    }
    const seen = new Set();
    for (const bo of m.bays ?? []) {
      const b = this.bay(bo.bay, bo.label);
      seen.add(bo.bay);
      b.devices = new Map((bo.devices ?? []).map((d) => [d.device_id, d]));
      b.vitals = new Map();
      for (const v of bo.vitals ?? []) this._putVital(b, v);
      b.alarms = new Map();
      for (const a of bo.device_alarms ?? []) this._putAlarm(b, a);
      b.ruleAlarms = bo.alarms ?? [];
      b.pruneEscalations();
      b.audioPausedUntil = bo.audio_paused_until ?? null;
      b.phase = bo.phase ?? null;
    }
    // A snapshot is the full state of the subscribed bays: anything else is no longer ours.
    const subscribed = this.hello?.bays;
    if (Array.isArray(subscribed)) {
      for (const id of [...this.bays.keys()]) {
        if (!seen.has(id) && !subscribed.includes(id)) this.bays.delete(id);
      }
    }
    const ordered = (m.bays ?? []).map((bo) => bo.bay);
    this.order = [...ordered, ...this.order.filter((id) => !ordered.includes(id) && this.bays.has(id))];
    this._emit(null, 'snapshot');
  }

  onVitals(m) {
    const b = this.bay(m.bay);
    for (const v of m.readings ?? []) this._putVital(b, { device_id: m.device_id, ...v });
    b.touch(m.device_id, m.t);
    this._emit(m.bay, 'vitals');
  }

  _putVital(b, v) {
    const prev = b.vitals.get(v.param);
    // Keep the newest report per parameter (by server receipt time) whatever device sent it.
    if (!prev || !(prev.tr > v.tr)) b.vitals.set(v.param, v);
    if (Number.isFinite(v.tr)) b.touch(v.device_id, v.tr);
    if (Number.isFinite(v.tr) && Number.isFinite(v.t)) {
      b._clockSample(v.device_id, v.tr - v.t);
      const pair = b._clockPairs.get(v.device_id);
      if (!pair) b._clockPairs.set(v.device_id, { first: [v.t, v.tr], last: [v.t, v.tr] });
      else if (v.tr > pair.last[1] && v.t > pair.last[0]) pair.last = [v.t, v.tr];
    }
  }

  onWave(m) {
    const b = this.bay(m.bay);
    const n = m.samples?.length ?? 0;
    if (!(m.fs > 0) || n === 0) return;
    let w = b.waves.get(m.channel);
    if (!w) { w = new WaveChannel(m.channel); b.waves.set(m.channel, w); }
    w.deviceId = m.device_id;
    w.fs = m.fs;
    w.gain = m.gain;
    w.unit = m.unit;
    w.decimated = Boolean(m.decimated);
    w._ensureRing(m.fs, this.waveKeepS);
    const shift = this._waveShift(b, m);
    const t0 = m.t0 + shift;
    const dt = 1 / m.fs;
    const gain = Number.isFinite(m.gain) ? m.gain : 1;
    let accepted = 0;
    for (let i = 0; i < n; i += 1) {
      if (w.ring.push(t0 + i * dt, m.samples[i] * gain)) accepted += 1;
    }
    w.received += accepted;
    const now = this.clock.now();
    w.lastRx = now;
    b.touch(m.device_id, now);
    b._latencySample(now, now - t0); // latency of the chunk's first sample
  }

  /**
   * Seconds to add to a chunk's t0 to put it on the server clock.
   *
   * The wire does not say which clock t0 is on (a device's or the server's). Readings carry both t
   * (device) and tr (server), from which we know the device's offset. We apply it unless the raw t0
   * already looks like server time (the chunk ends within a plausible latency of the message's t) and the
   * corrected one would not; and if we know nothing yet but the chunk claims to be from the future, we pull
   * it back to "now".
   */
  _waveShift(b, m) {
    if (this.replay) return 0; // a replay's t0 is recorded time, on the replay clock already (and sent ahead)
    const end = m.t0 + (m.samples.length - 1) / m.fs;
    const raw = m.t - end; // latency if t0 is server time
    const plausible = (lat) => lat >= -0.5 && lat <= 3;
    const corr = b.deviceClockCorrection(m.device_id);
    if (corr === null) return raw < -0.5 ? raw : 0;
    if (corr === 0) return 0;
    if (plausible(raw) && !plausible(raw - corr)) return 0;
    return corr;
  }

  onStatus(m) {
    const b = this.bay(m.bay);
    const d = m.device;
    b.devices.set(d.device_id, d);
    this._emit(m.bay, 'status');
  }

  onAlarms(m) {
    const b = this.bay(m.bay);
    // The engine's times follow the bay's device clock (ahead of the wall clock for an accelerated
    // simulation): remember when we heard of each event and alarm, on the server's clock, to show that.
    const rx = Number.isFinite(m.t) ? m.t : this.clock.now();
    for (const e of m.events ?? []) e.rx = rx;
    for (const a of m.active ?? []) {
      if (!b.alarmSeen.has(a.alarm_id)) b.alarmSeen.set(a.alarm_id, (m.events ?? []).some((e) => e.alarm_id === a.alarm_id && e.kind === 'raised') ? rx : null);
    }
    for (const id of [...b.alarmSeen.keys()]) if (!(m.active ?? []).some((a) => a.alarm_id === id)) b.alarmSeen.delete(id);
    b.ruleAlarms = m.active ?? [];
    b.audioPausedUntil = m.audio_paused_until ?? null;
    b.phase = m.phase ?? null;
    b.alarmLog = [...(m.events ?? []).slice().reverse(), ...b.alarmLog].slice(0, 50);
    b.noteEscalations(m.events ?? []);
    this._emit(m.bay, 'alarm');
  }

  onDeviceAlarm(m) {
    const b = this.bay(m.bay);
    this._putAlarm(b, m.alarm);
    this._emit(m.bay, 'alarm');
  }

  _putAlarm(b, a) {
    const key = `${a.device_id}\u0000${a.code}`;
    if (a.active) b.alarms.set(key, a); else b.alarms.delete(key);
  }

  onReplay(m) {
    this.replay = true;
    this.replayState = m;
    this.clock.update?.(m);
    this._emit(null, 'replay');
  }

  onError(m) {
    this.lastError = m;
    const what = m.code === 'unknown_bay' ? 'unknown bay' : m.code;
    const text = `Server error (${what}${m.fatal ? ', fatal' : ''}): ${m.message}`;
    console.error(`vigil: ${text}`, m);
    serverError(text);
    this._emit(null, 'error');
  }

  _emit(bay, kind) {
    this.dispatchEvent(new CustomEvent('change', { detail: { bay, kind } }));
  }
}
