// WebSocket client for the Vigil envelope (app/wire.py is authoritative).
//
// - Sends ``subscribe`` right after open, with ``resume`` {epoch, seq} when it has seen a hello before, and
//   ``batch: true``: the server may then pack several messages into one frame as a JSON array (fewer frames
//   for a busy station); a bare object frame is still accepted.
// - Dispatches on ``type`` through a table; an unknown type or an envelope ``v`` other than 1 is reported
//   loudly (console.error + #protocol-error) and the message is dropped.
// - Feeds every message's ``t`` to the ServerClock.
// - Reconnects with capped, jittered exponential backoff (0.5 s doubling to 5 s).
// - A watchdog closes a link that has been silent for WATCHDOG_S although the server promises a heartbeat
//   every second: a half-open TCP connection must not look alive.

import { ServerClock, localNow } from './clock.js';
import { protocolError } from './notices.js';

export const ENVELOPE_VERSION = 1;
// 'replay' (position, speed, state) comes only on a replay stream; a live page has no handler for it, so one
// arriving there is reported as unknown.
export const KNOWN_TYPES = Object.freeze(['hello', 'snapshot', 'vitals', 'wave', 'status', 'device_alarm', 'alarms', 'heartbeat', 'error', 'replay']);

const BACKOFF_MIN_S = 0.5;
const BACKOFF_MAX_S = 5;
const WATCHDOG_S = 5;
// Messages whose seq marks a point in the hub's stream that we have applied. hello, heartbeat and error
// are excluded: heartbeat's seq is "latest published" (not necessarily delivered to us), and hello/error
// are per-connection messages whose seq says nothing about what we have applied.
const RESUMABLE = new Set(['snapshot', 'vitals', 'wave', 'status', 'device_alarm', 'alarms']);

/** A message type for humans: the bare string, or JSON for anything else (missing, number, ...). */
function typeName(type) {
  return typeof type === 'string' ? type : JSON.stringify(type ?? null);
}

/** Default websocket URL: same host, /ws, ws: or wss: to match the page. */
export function defaultWsUrl() {
  return wsUrl('/ws');
}

/** A websocket URL for ``path`` on this page's host (ws: or wss: to match); full ws(s):// URLs pass through. */
export function wsUrl(path) {
  if (/^wss?:\/\//.test(path)) return path;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${path.startsWith('/') ? '' : '/'}${path}`;
}

export class VigilSocket extends EventTarget {
  /**
   * @param {object} opts
   * @param {string[]|null} opts.bays    bays to subscribe to (null = all)
   * @param {'full'|'decimated'|'none'} opts.waves
   * @param {Record<string, (msg: object) => void>} opts.handlers  dispatch table, one entry per type
   * @param {string} [opts.url]
   * @param {ServerClock} [opts.clock]
   */
  constructor({ bays, waves, handlers, url = defaultWsUrl(), clock = new ServerClock() }) {
    super();
    this.url = url;
    this.clock = clock;
    this.subscription = { bays: bays ?? null, waves };
    this.handlers = handlers;
    this.epoch = null; // from the last hello
    this.lastSeq = null; // highest seq applied from RESUMABLE messages in this epoch
    this.hello = null; // the last hello message
    this.state = 'connecting'; // 'connecting' | 'open' | 'closed'
    this.everOpened = false;
    this.attempt = 0;
    this.nextRetryAt = null; // local seconds
    this.closedAt = null; // local seconds, last close (of any attempt)
    this.lostAt = null; // local seconds, when a working link (hello received) went down
    this._ws = null;
    this._retryTimer = null;
    this._lastMessageAt = 0;
    this._watchdog = null;
    this._stopped = false;
  }

  /** Open the connection (and keep it open until stop()). */
  start() {
    this._stopped = false;
    this._connect();
    this._watchdog = setInterval(() => this._checkWatchdog(), 1000);
  }

  /** Close for good (no reconnect). */
  stop() {
    this._stopped = true;
    clearTimeout(this._retryTimer);
    clearInterval(this._watchdog);
    const ws = this._ws;
    this._ws = null;
    ws?.close(1000, 'client stopped');
    this._setState('closed');
  }

  /** Change bays or wave detail; sent at once when connected (the server answers with a snapshot). */
  resubscribe(bays, waves = this.subscription.waves) {
    this.subscription = { bays: bays ?? null, waves };
    if (this.state === 'open') this._send(this._subscribeMessage(false));
  }

  _subscribeMessage(withResume) {
    const resume = withResume && this.epoch !== null && this.lastSeq !== null
      ? { epoch: this.epoch, seq: this.lastSeq }
      : null;
    return { type: 'subscribe', bays: this.subscription.bays, waves: this.subscription.waves, resume, batch: true };
  }

  _connect() {
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    this.nextRetryAt = null;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      console.error('vigil: cannot open websocket', err);
      this._onClosed(null);
      return;
    }
    this._ws = ws;
    this._lastMessageAt = localNow();
    ws.addEventListener('open', () => {
      if (this._ws !== ws) return;
      this._lastMessageAt = localNow();
      this._send(this._subscribeMessage(true));
    });
    ws.addEventListener('message', (ev) => {
      if (this._ws !== ws) return;
      this._onMessage(ev.data);
    });
    ws.addEventListener('close', (ev) => {
      if (this._ws !== ws) return; // already handled (watchdog) or superseded
      console.warn(`vigil: websocket closed (code ${ev.code}${ev.reason ? `, ${ev.reason}` : ''})`);
      this._onClosed(ws);
    });
    ws.addEventListener('error', () => {
      // A close event always follows; nothing to do here but keep the console quiet.
    });
  }

  _send(obj) {
    const ws = this._ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
  }

  _onMessage(data) {
    this._lastMessageAt = localNow();
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch (err) {
      protocolError(`unparsable frame (${String(err)})`, data);
      return;
    }
    if (Array.isArray(parsed)) {
      // A batch (we subscribed with batch: true): its messages in send order, each as if it came alone.
      for (const msg of parsed) this._dispatch(msg);
    } else {
      this._dispatch(parsed);
    }
  }

  _dispatch(msg) {
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
      protocolError('message is not a JSON object', msg);
      return;
    }
    if (msg.v !== ENVELOPE_VERSION) {
      protocolError(`unsupported envelope version v=${JSON.stringify(msg.v)} (message type ${typeName(msg.type)}); this page speaks v=${ENVELOPE_VERSION}`, msg);
      return;
    }
    const handler = Object.hasOwn(this.handlers, msg.type) ? this.handlers[msg.type] : undefined;
    if (typeof msg.type !== 'string' || !KNOWN_TYPES.includes(msg.type) || typeof handler !== 'function') {
      protocolError(`unknown message type ${typeName(msg.type)}`, msg);
      return;
    }
    this.clock.sample(msg.t);
    if (msg.type === 'hello') this._onHello(msg);
    if (RESUMABLE.has(msg.type) && Number.isInteger(msg.seq)) {
      if (this.lastSeq !== null && msg.seq <= this.lastSeq && msg.type !== 'snapshot') {
        console.warn(`vigil: seq went backwards or repeated (${msg.seq} after ${this.lastSeq}, type ${msg.type})`);
      }
      this.lastSeq = this.lastSeq === null ? msg.seq : Math.max(this.lastSeq, msg.seq);
    }
    try {
      handler(msg);
    } catch (err) {
      console.error(`vigil: handler for ${msg.type} failed`, err, msg);
    }
  }

  _onHello(msg) {
    if (msg.epoch !== this.epoch) {
      // A new server instance: seqs from the old epoch mean nothing.
      this.epoch = msg.epoch;
      this.lastSeq = null;
    }
    this.hello = msg;
    this.attempt = 0; // the link works end to end: reset the backoff
    this.everOpened = true;
    this._setState('open');
  }

  _onClosed(ws) {
    if (ws && this._ws === ws) this._ws = null;
    this.closedAt = localNow();
    this._setState('closed');
    if (this._stopped) return;
    const base = Math.min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** this.attempt);
    const delay = Math.min(BACKOFF_MAX_S, base * (0.5 + Math.random() * 0.5) + 0.05);
    this.attempt += 1;
    this.nextRetryAt = localNow() + delay;
    this._retryTimer = setTimeout(() => this._connect(), delay * 1000);
  }

  _checkWatchdog() {
    const ws = this._ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return; // also before hello: a server that never answers
    const silent = localNow() - this._lastMessageAt;
    if (silent > WATCHDOG_S) {
      console.warn(`vigil: no message (not even a heartbeat) for ${silent.toFixed(1)} s; reconnecting`);
      this._ws = null; // ignore this socket's late close event
      try { ws.close(4000, 'watchdog'); } catch { /* already closing */ }
      this._onClosed(null);
    }
  }

  _setState(state) {
    if (this.state === state) return;
    if (state === 'closed' && this.state === 'open') this.lostAt = localNow();
    if (state === 'open') this.lostAt = null;
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state } }));
  }
}
