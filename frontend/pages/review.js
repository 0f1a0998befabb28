// Review page: replay a recorded session. URL: /review.html?session=<session id> (without it: the list).
//
// The timeline (GET /api/recordings/{sid}/timeline) draws the whole session; a replay (POST /api/replays)
// streams it over its own websocket with the live protocol, so the waveforms, numerics and alarm banner
// below are the bedside page's own elements bound to a store fed by the replay. The page clock is the
// replay position (lib/clock.js ReplayClock). Nothing here can act on a live bay: there is no acknowledge
// or audio pause, no session panel, and no alarm sound — and the REPLAY band and violet frame never leave.

import { loadUiConfig, startLive } from '../lib/app.js';
import { currentUser } from '../lib/auth.js';
import { ReplayClock } from '../lib/clock.js';
import { clinicTimeZone, formatDate, h, zoneAbbreviation } from '../lib/format.js';
import { protocolError, serverError } from '../lib/notices.js';
import { requestRender } from '../lib/ticker.js';
import { wsUrl } from '../lib/ws-client.js';
import '../components/vigil-alarm-banner.js';
import '../components/vigil-connection-banner.js';
import '../components/vigil-device-list.js';
import '../components/vigil-nibp.js';
import '../components/vigil-numeric.js';
import '../components/vigil-replay-band.js';
import { SPEEDS } from '../components/vigil-replay-controls.js';
import { sessionWhen } from '../components/vigil-session-picker.js';
import '../components/vigil-timeline.js';
import '../components/vigil-waveform.js';
import '../components/vigil-whatif.js';

const SEEK_STEP_S = 10;
// Waveforms arrive up to 60 s (speed × 1 s) ahead of the replay clock; the rings keep that plus a sweep.
const REPLAY_WAVE_KEEP_S = 60 + 20;
const NAV_PRIORITIES = new Set(['high', 'medium', 'low']);

const params = new URLSearchParams(location.search);
const sid = params.get('session');
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { Accept: 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  let payload = null;
  try { payload = await res.json(); } catch { /* no body */ }
  if (!res.ok) {
    const d = payload?.detail;
    const reason = typeof d === 'object' && d && !Array.isArray(d) ? d.reason ?? d.code : (typeof d === 'string' ? d : `HTTP ${res.status}`);
    const err = new Error(`${method} ${path}: ${reason}`);
    err.status = res.status;
    err.code = d?.code;
    throw err;
  }
  return payload;
}

function showZone() {
  const el = $('tz');
  el.textContent = `times in ${zoneAbbreviation()} (${clinicTimeZone()})`;
}

/** The live station link only for users who may see live bays (a reviewer may not). */
async function stationLink() {
  const me = await currentUser;
  if (me?.role && !(me.permissions ?? []).includes('live')) $('station-link').hidden = true;
}

/** The session's printable report and its exports, in the clinic's time zone. */
function sessionLinks(sessionId) {
  const base = `/api/recordings/${encodeURIComponent(sessionId)}`;
  const tz = `tz=${encodeURIComponent(clinicTimeZone())}`;
  $('report-link').href = `${base}/report.html?${tz}`;
  for (const a of document.querySelectorAll('#session-links a[data-format]')) {
    a.href = `${base}/export/${a.dataset.format}?${tz}`;
  }
  $('session-links').hidden = false;
}

function landing() {
  $('landing').hidden = false;
  document.title = 'Recorded sessions — Vigil review';
}

/** "Jane Doe · DEMO-0001 · born 12 Mar 1981 (45 y) · 72 kg · Bay 1 · <when> · discharged". */
function patientLine(tl) {
  const p = tl.patient;
  const born = p.birth_date ? new Date(`${p.birth_date}T12:00:00Z`) : null;
  const parts = [p.identifier];
  if (born) {
    const age = Math.floor((tl.start * 1000 - born.getTime()) / (365.25 * 86400 * 1000));
    parts.push(`born ${formatDate(born.getTime() / 1000).replace(/^\w+ /, '')} (${age} y)`);
  }
  if (Number.isFinite(p.weight_kg)) parts.push(`${p.weight_kg} kg`);
  parts.push(tl.bay, sessionWhen({ start: tl.start, end: tl.end }));
  const name = h('strong', 'patient-name', p.name);
  const rest = h('span', 'patient-facts', parts.join(' · '));
  const outcome = h('span', 'patient-outcome', tl.final ? tl.phases.at(-1)?.phase.replace(/_/g, ' ') ?? '' : 'session still open');
  return [name, rest, outcome];
}

async function openSession(sessionId) {
  let tl;
  let rp;
  $('loading').hidden = false;
  try {
    [tl, rp] = await Promise.all([
      api('GET', `/api/recordings/${encodeURIComponent(sessionId)}/timeline`),
      api('POST', '/api/replays', { session_id: sessionId }),
    ]);
  } catch (err) {
    console.error('vigil: cannot open the session', err);
    serverError(err.status === 404
      ? `No recorded session ${sessionId}. Choose another below.`
      : `Cannot open this session: ${err.message}`);
    landing();
    return;
  } finally {
    $('loading').hidden = true;
  }
  let replay = rp;
  $('review').hidden = false;
  document.title = `${tl.patient.name} — Vigil review (REPLAY)`;
  $('patient-line').replaceChildren(...patientLine(tl));
  sessionLinks(sessionId);

  for (const el of document.querySelectorAll('[data-bind-bay]')) el.setAttribute('bay', rp.bay);
  document.body.dataset.bay = rp.bay;
  const band = document.querySelector('vigil-replay-band');
  band.setAttribute('recorded-start', String(tl.start));

  const clock = new ReplayClock();
  clock.update(rp);
  const { store, socket } = startLive({ bays: [rp.bay], waves: 'full' }, { url: wsUrl(rp.ws), clock });
  store.waveKeepS = REPLAY_WAVE_KEEP_S;
  store.addEventListener('change', (ev) => {
    if (ev.detail.kind === 'hello' && store.hello && store.hello.replay !== true) {
      // The review page must never show a live stream: refuse it loudly rather than draw it.
      protocolError('the review stream is not marked as a replay (hello.replay is not true); stream stopped');
      socket.stop();
    }
  });

  const timeline = document.querySelector('vigil-timeline');
  timeline.data = tl;
  const controls = document.querySelector('vigil-replay-controls');
  controls.range = { start: tl.start, end: tl.end };
  controls.alarms = (tl.alarms ?? [])
    .filter((a) => a.kind === 'raised' && NAV_PRIORITIES.has(a.priority))
    .sort((a, b) => a.t - b.t);

  const whatif = document.createElement('vigil-whatif');
  whatif.setAttribute('session', sessionId);
  $('whatif-slot').replaceChildren(whatif);

  let busy = Promise.resolve();
  let pendingSeek = null; // target of a seek not answered yet: repeated ←/→ presses add up from it
  let pendingSpeed = null; // likewise for [ and ]

  /** Send one transport control; the answer moves the clock at once (the stream confirms it too). */
  const control = (body) => {
    if (body.action === 'seek') pendingSeek = body.t;
    if (body.action === 'speed') pendingSpeed = body.speed;
    busy = busy.then(async () => {
      try {
        const out = await api('POST', `/api/replays/${encodeURIComponent(replay.replay_id)}/control`, body);
        clock.update(out);
        if (body.action === 'seek') clock.reset(); // even a seek by less than the jitter allowance
        store.onReplay({ ...store.replayState, ...out, type: 'replay' });
        serverError(null);
      } catch (err) {
        if (err.code === 'no_such_replay') {
          await reopen(body);
          return;
        }
        console.error('vigil: replay control failed', err);
        serverError(`Replay control failed: ${err.message}`);
      } finally {
        if (body.action === 'seek' && pendingSeek === body.t) pendingSeek = null;
        if (body.action === 'speed' && pendingSpeed === body.speed) pendingSpeed = null;
      }
      requestRender();
    });
    return busy;
  };

  /** The replay expired (idle, or the server restarted): open a new one where we were and reconnect. */
  const reopen = async (body) => {
    const position = body.action === 'seek' ? body.t : clock.now();
    try {
      replay = await api('POST', '/api/replays', { session_id: sessionId, position, speed: clock.speed, play: body.action === 'play' });
    } catch (err) {
      serverError(`The replay expired and could not be reopened: ${err.message}. Reload the page.`);
      return;
    }
    clock.reset();
    clock.update(replay);
    socket.stop();
    socket.url = wsUrl(replay.ws);
    socket.epoch = null;
    socket.lastSeq = null;
    socket.start();
  };

  document.addEventListener('vigil-replay-control', (ev) => {
    const { action, t, speed } = ev.detail;
    control(action === 'seek' ? { action, t } : action === 'speed' ? { action, speed } : { action });
  });
  document.addEventListener('vigil-seek', (ev) => {
    const t = Math.min(tl.end, Math.max(tl.start, ev.detail.t));
    control({ action: 'seek', t });
  });

  document.addEventListener('keydown', (ev) => {
    if (ev.defaultPrevented || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const target = ev.target;
    if (target instanceof HTMLElement && (target.closest('input, select, textarea, vigil-whatif') || target.isContentEditable)) return;
    const state = store.replayState?.state ?? 'paused';
    const speed = pendingSpeed ?? store.replayState?.speed ?? clock.speed;
    if (ev.key === ' ' || ev.key === 'Spacebar') {
      ev.preventDefault(); // not a click on the focused button, not a page scroll
      control({ action: state === 'playing' ? 'pause' : 'play' });
    } else if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') {
      ev.preventDefault();
      const d = ev.key === 'ArrowLeft' ? -SEEK_STEP_S : SEEK_STEP_S;
      control({ action: 'seek', t: Math.min(tl.end, Math.max(tl.start, (pendingSeek ?? clock.now()) + d)) });
    } else if (ev.key === '[' || ev.key === ']') {
      ev.preventDefault();
      const next = ev.key === ']' ? SPEEDS.find((x) => x > speed) : SPEEDS.filter((x) => x < speed).at(-1);
      if (next !== undefined) control({ action: 'speed', speed: next });
    }
  });
  // A space released on a focused button would click it as well: the keydown above already acted.
  document.addEventListener('keyup', (ev) => {
    if ((ev.key === ' ' || ev.key === 'Spacebar') && ev.target instanceof HTMLButtonElement && !ev.target.closest('vigil-whatif')) ev.preventDefault();
  });
  // Close the replay with the page (it would otherwise expire on its own when idle).
  window.addEventListener('pagehide', () => {
    fetch(`/api/replays/${encodeURIComponent(replay.replay_id)}`, { method: 'DELETE', keepalive: true }).catch(() => {});
  });
}

await loadUiConfig(); // the clinic's time zone, before any time is shown
showZone();
stationLink();
for (const picker of document.querySelectorAll('vigil-session-picker')) picker.load(sid);
if (sid) await openSession(sid); else landing();
