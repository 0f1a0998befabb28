// <vigil-audio-status>: the loud "AUDIO OFF" warning until alarm sounds can play.
//
// Browsers keep audio off until the user interacts with the page; until then (and whenever the audio
// device stops) this bar says so and how to fix it. Clicking it (or any key, anywhere) enables the sound.
// Hidden while the sound works; "paused" is shown by the pages themselves (countdown beside the controls
// on the bedside, on each tile at the station). Hook: data-audio (mirrors body[data-audio]).

import { alarmAudio } from '../lib/audio.js';
import { h, setAttr, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';

const TEXT = {
  off: 'AUDIO OFF — click or press any key to enable alarm sounds',
  unavailable: 'AUDIO UNAVAILABLE — this browser cannot play alarm sounds; watch the screen',
};

class VigilAudioStatus extends HTMLElement {
  connectedCallback() {
    if (!this._built) {
      this._built = true;
      this._text = h('span', 'text', TEXT.off);
      this.append(this._text);
      this.setAttribute('role', 'alert');
      this.addEventListener('click', () => alarmAudio()?.enable());
    }
    this._off = onRender(() => this.render());
  }

  disconnectedCallback() {
    this._off?.();
  }

  render() {
    const state = document.body.dataset.audio ?? 'off';
    setAttr(this, 'data-audio', state);
    const text = TEXT[state];
    this.hidden = !text;
    if (text) setText(this._text, text);
  }
}

customElements.define('vigil-audio-status', VigilAudioStatus);
