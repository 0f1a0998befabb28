// <vigil-connection-banner>: shown whenever the websocket link is not up.
//
// Before the first connection: "CONNECTING TO VIGIL SERVER…". After a loss: "CONNECTION LOST —
// reconnecting" with the elapsed time and the next retry. Hidden (hidden attribute) while connected.
// Hook: data-connection on <body> says "open" | "closed" (set by lib/app.js).

import { localNow } from '../lib/clock.js';
import { context } from '../lib/context.js';
import { formatElapsed, h, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

class VigilConnectionBanner extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this._title = h('span', 'title');
      this._detail = h('span', 'detail');
      this.append(this._title, this._detail);
      this.setAttribute('role', 'alert');
    }
    this._off = onRender(() => this.render());
  }

  disconnectedCallback() {
    this._off?.();
  }

  render() {
    const { socket } = context();
    if (!socket) return;
    const open = socket.state === 'open';
    this.hidden = open;
    if (open) return;
    const now = localNow();
    if (!socket.everOpened) {
      setText(this._title, 'CONNECTING TO VIGIL SERVER…');
      setText(this._detail, socket.attempt > 0 ? `attempt ${socket.attempt + 1}` : '');
      this.dataset.kind = 'connecting';
      return;
    }
    this.dataset.kind = 'lost';
    setText(this._title, 'CONNECTION LOST — reconnecting');
    const lost = socket.lostAt === null ? '' : `no link for ${formatElapsed(now - socket.lostAt)}`;
    const next = socket.nextRetryAt === null
      ? 'connecting now…'
      : `next try in ${Math.max(0, socket.nextRetryAt - now).toFixed(1)} s`;
    setText(this._detail, `${lost} · ${next} · values shown are NOT current`);
  }
}

customElements.define('vigil-connection-banner', VigilConnectionBanner);
