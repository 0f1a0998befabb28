// What the screen should say, derived from store facts and the clock (pure functions, no DOM).
//
// State rules for a numeric (the same on bedside and station):
//   - link down                                  → "stale" (everything, at once: nothing looks current)
//   - no reading ever                            → "empty"
//   - its device is stale or offline             → "stale"
//   - continuous param older than stale_after_s  → "stale"   (episodic NIBP: age is shown, never stale by age)
//   - value null or quality invalid              → "invalid" ("-?-", never the last value)
//   - otherwise                                  → "live"    (questionable: value with "?")

import { formatAge, formatAgo, formatNoData, formatClock, formatElapsed } from './format.js';
import { formatValue, isEpisodic } from './params.js';

const DEAD_STATES = new Set(['stale', 'offline']);
export const PRIORITY_RANK = Object.freeze({ high: 3, medium: 2, low: 1, info: 0 });
export const PRIORITY_MARK = Object.freeze({ high: '!!!', medium: '!!', low: '!', info: '' });

/**
 * When a reading was measured, on the server clock: its device time t corrected by the device's clock
 * offset (estimated from all its readings' tr − t), and never later than the server received it.
 */
export function measuredAt(bay, r) {
  if (!Number.isFinite(r.t)) return r.tr;
  const corr = bay?.deviceClockCorrection(r.device_id) ?? 0;
  return Math.min(r.t + corr, r.tr);
}

/** Age of a reading in seconds: since measurement for episodic params, since server receipt otherwise. */
function readingAge(bay, key, r, now) {
  const ref = isEpisodic(key) ? measuredAt(bay, r) : r.tr;
  return Math.max(0, now - ref);
}

/** The reading's device when it is stale or offline, else null. */
function deviceDead(bay, deviceId) {
  const d = bay?.devices.get(deviceId);
  return d && DEAD_STATES.has(d.state) ? d : null;
}

/**
 * View of one numeric parameter.
 * @returns {{state: 'live'|'stale'|'invalid'|'empty', value: string, age: string, reading: object|null}}
 */
export function numericView(store, bay, key, now) {
  const r = bay?.vitals.get(key) ?? null;
  if (!r) {
    return { state: store.connected ? 'empty' : 'stale', value: '---', age: store.connected ? 'no data' : 'no link', reading: null };
  }
  const ageS = readingAge(bay, key, r, now);
  const silentS = Math.max(0, now - r.tr);
  const stale = (text) => ({ state: 'stale', value: '---', age: text, reading: r });
  if (!store.connected) return stale(formatNoData(silentS));
  const dead = deviceDead(bay, r.device_id);
  if (dead) {
    const heard = bay.lastHeard(r.device_id);
    return stale(formatNoData(heard === null ? silentS : now - heard));
  }
  if (!isEpisodic(key) && silentS > store.staleAfterS) return stale(formatNoData(silentS));
  if (r.value === null || r.value === undefined || r.quality === 'invalid') {
    return { state: 'invalid', value: '-?-', age: formatAge(ageS), reading: r };
  }
  const mark = r.quality === 'questionable' ? '?' : '';
  return { state: 'live', value: formatValue(key, r.value) + mark, age: formatAge(ageS), reading: r };
}

/**
 * View of the NIBP group (sys/dia (mean)); episodic: stale only with the link or the device, never by age.
 * @returns {{state: string, value: string, mean: string, time: string, age: string}}
 */
export function nibpView(store, bay, now) {
  const sys = bay?.vitals.get('nibp_sys') ?? null;
  const dia = bay?.vitals.get('nibp_dia') ?? null;
  const mean = bay?.vitals.get('nibp_mean') ?? null;
  const any = sys ?? dia ?? mean;
  if (!any) {
    return { state: store.connected ? 'empty' : 'stale', value: '---/---', mean: '', time: '', age: store.connected ? 'no measurement' : 'no link' };
  }
  const t = Math.max(...[sys, dia, mean].filter(Boolean).map((r) => measuredAt(bay, r)));
  const ageS = Math.max(0, now - t);
  const time = formatClock(t, false);
  const stale = (text) => ({ state: 'stale', value: '---/---', mean: '', time, age: text });
  // Stale NIBP counts the silence of its device (the measurement itself may be minutes old).
  const silence = () => now - (bay.lastHeard(any.device_id) ?? any.tr);
  if (!store.connected) return stale(formatNoData(silence()));
  if (deviceDead(bay, any.device_id)) return stale(formatNoData(silence()));
  const ok = (r) => r && r.value !== null && r.value !== undefined && r.quality !== 'invalid';
  const fmt = (r) => (ok(r) ? formatValue(r.param ?? 'nibp_sys', r.value) + (r.quality === 'questionable' ? '?' : '') : '-?-');
  if (!ok(sys) && !ok(dia) && !ok(mean)) {
    return { state: 'invalid', value: '-?-', mean: '', time, age: formatAgo(ageS) };
  }
  return {
    state: 'live',
    value: `${fmt(sys)}/${fmt(dia)}`,
    mean: mean ? `(${fmt(mean)})` : '',
    time,
    age: formatAgo(ageS),
  };
}

/** Waveform channel state: 'live' or 'nodata' (link down, device dead, or nothing recent). */
export function waveState(store, bay, channel, now) {
  if (!store.connected) return 'nodata';
  const w = bay?.waves.get(channel);
  if (!w || !w.ring || w.ring.length === 0) return 'nodata';
  if (deviceDead(bay, w.deviceId)) return 'nodata';
  if (now - w.lastRx > store.staleAfterS) return 'nodata';
  return 'live';
}

/** A rule-engine alarm (AlarmOut) in the shape of a device alarm, marked source 'rule'. */
function ruleAlarm(a) {
  return {
    source: 'rule',
    device_id: 'Vigil',
    code: a.rule_id,
    priority: a.priority,
    alarm_kind: a.category,
    text: a.text,
    t: a.priority_since,
    active: true,
    latched: a.latched,
    condition_active: a.condition_active,
    acknowledged_by: a.acknowledged_by,
    acknowledged_at: a.acknowledged_at,
  };
}

/** Active alarms (Vigil's rules and the devices' own), highest priority first, then newest first. */
export function sortedAlarms(bay) {
  if (!bay) return [];
  return [...(bay.ruleAlarms ?? []).map(ruleAlarm), ...[...bay.alarms.values()].filter((a) => a.active)]
    .sort((a, b) => (PRIORITY_RANK[b.priority] ?? 0) - (PRIORITY_RANK[a.priority] ?? 0) || b.t - a.t);
}

/** Rule alarms still waiting for an acknowledgement (info flags are logged, never acknowledged). */
export function unacknowledged(bay) {
  return (bay?.ruleAlarms ?? []).filter((a) => !a.acknowledged_at && a.priority !== 'info');
}

// Parameter names as devices spell them in alarm codes and texts (longest first so "SPO2" wins over "PR").
const ALARM_PARAM_PATTERNS = [
  ['etco2', /\b(ET_?CO2|ETCO₂|ETCO2|CO2)\b/i],
  ['spo2', /\b(SPO2|SPO₂|SAT)\b/i],
  ['nibp', /\b(NIBP|NBP|SYS|DIA|MAP|BP)\b/i],
  ['temp', /\b(TEMP|T1|TEMPERATURE)\b/i],
  ['rr', /\b(RR|RESP|APNEA|APNOEA|AWRR)\b/i],
  ['pr', /\b(PR|PULSE)\b/i],
  ['hr', /\b(HR|ECG|BRADY|TACHY|ASYSTOLE|VFIB|VTACH)\b/i],
];

/**
 * The numeric a physiological alarm is about, guessed from its code and text (the wire has no param field),
 * or null. Used only to flash that numeric in the alarm colour.
 */
export function alarmParam(alarm) {
  if (alarm.alarm_kind !== 'physiological') return null;
  const hay = `${alarm.code} ${alarm.text}`.replace(/[_\-.:]/g, ' ');
  for (const [key, re] of ALARM_PARAM_PATTERNS) if (re.test(hay)) return key;
  return null;
}

/** Highest physiological alarm priority per numeric key (for flashing tiles). */
export function alarmByParam(bay) {
  const out = new Map();
  for (const a of sortedAlarms(bay)) {
    const key = alarmParam(a);
    if (key && !out.has(key)) out.set(key, a.priority);
  }
  return out;
}

/** Technical "no data" banners: one per device that is stale/offline (or still connecting). */
export function deviceBanners(bay, now) {
  if (!bay) return [];
  const out = [];
  for (const d of bay.devices.values()) {
    if (DEAD_STATES.has(d.state)) {
      const heard = bay.lastHeard(d.device_id);
      const since = heard ?? d.since;
      out.push({
        device: d,
        kind: d.state,
        text: `NO DATA FROM MONITOR ${d.device_id} ${formatElapsed(now - since)}`,
      });
    } else if (d.state === 'connecting') {
      out.push({ device: d, kind: 'connecting', text: `CONNECTING TO MONITOR ${d.device_id} ${formatElapsed(now - d.since)}` });
    }
  }
  return out;
}

/**
 * Station tile state: "offline" when every device is offline (or there is none), "stale" when the link is
 * down or any device is stale/offline, else "live".
 */
export function bayState(store, bay) {
  if (!bay || bay.devices.size === 0) return store.connected ? 'offline' : 'stale';
  const states = [...bay.devices.values()].map((d) => d.state);
  if (states.every((s) => s === 'offline')) return 'offline';
  if (!store.connected) return 'stale';
  if (states.some((s) => DEAD_STATES.has(s))) return 'stale';
  return 'live';
}

/** Short label for a device state list: "online", "2 online · 1 stale". */
export function deviceSummary(bay) {
  if (!bay || bay.devices.size === 0) return 'no devices';
  const counts = new Map();
  for (const d of bay.devices.values()) counts.set(d.state, (counts.get(d.state) ?? 0) + 1);
  if (counts.size === 1 && bay.devices.size === 1) return [...counts.keys()][0];
  return [...counts.entries()].map(([s, n]) => `${n} ${s}`).join(' · ');
}
