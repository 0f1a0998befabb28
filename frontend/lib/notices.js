// Loud, visible notices for things that must never fail silently.
//
// #protocol-error is created on first use (so its absence means "no protocol error so far") and pinned to
// the top of the page in red. The same message goes to console.error.

import { h } from './format.js';

let protocolCount = 0;
const MAX_LINES = 5;

/** Report a protocol violation (unknown message type, wrong envelope version, unparsable frame). */
export function protocolError(text, detail = undefined) {
  protocolCount += 1;
  console.error(`vigil: protocol error: ${text}`, detail ?? '');
  let el = document.getElementById('protocol-error');
  if (!el) {
    el = h('div', 'notice notice-protocol');
    el.id = 'protocol-error';
    el.setAttribute('role', 'alert');
    document.body.prepend(el);
  }
  // One line per distinct problem (so the first one stays readable), with a repeat count.
  const line = [...el.children].find((c) => c.dataset.text === text);
  if (line) {
    const n = Number(line.dataset.count) + 1;
    line.dataset.count = String(n);
    line.textContent = `protocol error: ${text} (×${n})`;
  } else if (el.children.length < MAX_LINES) {
    const div = h('div', 'protocol-line', `protocol error: ${text}`);
    div.dataset.text = text;
    div.dataset.count = '1';
    el.append(div);
  }
  el.dataset.count = String(protocolCount);
}

/** Show (or clear, with null) an error the server reported about our request. */
export function serverError(text) {
  let el = document.getElementById('server-error');
  if (text === null) {
    el?.remove();
    return;
  }
  if (!el) {
    el = h('div', 'notice notice-server');
    el.id = 'server-error';
    el.setAttribute('role', 'alert');
    document.body.prepend(el);
  }
  el.textContent = text;
}
