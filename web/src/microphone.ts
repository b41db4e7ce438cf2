// The user's microphone into the desktop, for the session's owner when their group allows it
// (Kasm's allow_microphone). The session proxy serves a WebSocket beside the viewer page
// (`<viewer page directory>kasm/microphone`, the same token as the desktop):
//   the server sends first a text  {"ready":true,"format":"s16le","rate":24000,"channels":1}
//                      or, refused, {"error": text}, then it closes (also later, when the desktop
//                      stops taking the sound);
//   the page sends binary messages  mono little-endian int16 PCM at 24 kHz, ~40 ms each.
// In the desktop that is played into PulseAudio's kasm_mic_sink, whose monitor is the default
// source (images/CONTRACT.md, "Audio"), so the session's applications hear the user.
//
// "Mic" opens the socket first and asks the browser for the microphone only once the server said
// ready, so a refusal never brings a permission prompt. Capture: getUserMedia -> an AudioContext
// (24 kHz when the browser grants it, else its own rate, resampled here by linear interpolation)
// -> a ScriptProcessorNode. Not an AudioWorklet: the viewer page's Content-Security-Policy
// (script-src 'self', reference-server/session_viewer.cpp) forbids the blob:/data: module one would
// be loaded from. Blocks are converted to int16 and sent 40 ms at a time while the socket is ready;
// what the socket cannot take (the browser still holds half a second) is dropped, so latency
// cannot grow. "Mic off" stops the tracks (the browser's recording indicator goes away), closes the
// socket and the context. A dropped socket reconnects with a growing delay (the microphone stays
// open meanwhile); MAX_FRUITLESS connections in a row that never got ready give up.
//
// window.kasmMicrophone = {stats} is there for tests and diagnostics.

import { type AudioState, MAX_FRUITLESS, parseError, RECONNECT_DELAYS_MS } from './audio';

const RATE = 24_000;
// Samples a message carries: 40 ms.
const BATCH = RATE / 25;
// Bytes the browser may hold unsent before what is recorded is dropped: half a second.
const MAX_BUFFERED = RATE;
const CONSTRAINTS: MediaStreamConstraints = {
  audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
  video: false,
};

export interface MicrophoneStats {
  // PCM bytes and binary messages sent since the microphone was turned on (all connections).
  bytesSent: number;
  messagesSent: number;
  state: AudioState;
  error: string;
  // The input level, 0..1 of full scale: the RMS of the last block recorded (~40 ms), or 85 % of the
  // level before it, whichever is higher (a meter that falls back slowly).
  level: number;
  // The capture context's rate (24000 when no resampling is needed).
  contextRate: number;
}

declare global {
  interface Window {
    kasmMicrophone?: { stats: MicrophoneStats };
  }
}

export interface MicrophoneOptions {
  // The socket's URL, asked again at every (re)connection.
  url: () => string;
  // The socket dropped while the microphone is on: the host may find out whether the viewer's
  // access ended (and call stop()); otherwise the control reconnects with a growing delay.
  onDrop?: () => void;
}

// What the user is told when getUserMedia fails.
function captureError(e: unknown): string {
  const name = (e as { name?: string } | null)?.name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    const framed = window.top !== window ? ' In another site\'s frame, that site must allow the microphone too.' : '';
    return `The browser did not allow the microphone: allow it for this site (in the address bar) and try again.${framed}`;
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'No microphone was found on this computer.';
  if (name === 'NotReadableError' || name === 'AbortError') return 'The microphone could not be opened (another application may be using it).';
  return `The microphone could not be opened: ${(e as Error | null)?.message ?? String(e)}`;
}

// The "Mic" button of the viewer's control panel, its level meter, and the capture.
export class MicrophoneControl {
  private readonly stats: MicrophoneStats = {
    bytesSent: 0, messagesSent: 0, state: 'off', error: '', level: 0, contextRate: 0,
  };
  private ws: WebSocket | null = null;
  // The current socket said ready: what is recorded is sent.
  private ready = false;
  private state: AudioState = 'off';
  private wanted = false;
  // Bumped by every start and stop: a getUserMedia that resolves after them is let go.
  private generation = 0;
  private attempt = 0;
  private fruitless = 0;
  private reconnectTimer = 0;
  private context: AudioContext | null = null;
  private stream: MediaStream | null = null;
  // The generation whose getUserMedia is pending (-1: none).
  private opening = -1;
  private nodes: AudioNode[] = [];
  private processor: ScriptProcessorNode | null = null;
  // Linear interpolation to RATE: input samples per output sample, the position of the next
  // output sample in the current block (-1..0: between the last block's last sample and this
  // block's first) and that last sample.
  private step = 1;
  private pos = 0;
  private last = 0;
  private readonly pending = new DataView(new ArrayBuffer(BATCH * 2));
  private count = 0;

  constructor(
    private readonly button: HTMLButtonElement,
    private readonly level: HTMLElement,
    private readonly levelBar: HTMLElement,
    private readonly errorBox: HTMLElement,
    private readonly options: MicrophoneOptions,
  ) {
    window.kasmMicrophone = { stats: this.stats };
    button.addEventListener('click', () => (this.wanted ? this.stop() : this.start()));
    errorBox.addEventListener('click', () => (errorBox.hidden = true));
    this.setState('off');
  }

  // Turns the microphone on: runs in the click's handler (a user gesture) for the context to start.
  start(): void {
    this.errorBox.hidden = true;
    this.stats.error = '';
    if (!navigator.mediaDevices?.getUserMedia) {
      this.fail(window.isSecureContext ? 'This browser cannot record from a microphone.'
        : 'The browser allows the microphone only on secure (https) pages.');
      return;
    }
    const context = this.newContext(true);
    if (!context) return;
    this.context = context;
    this.wanted = true;
    this.generation++;
    this.attempt = 0;
    this.fruitless = 0;
    this.stats.bytesSent = 0;
    this.stats.messagesSent = 0;
    this.connect();
  }

  // Turns the microphone off (the button, a failure, or the viewer's access ended): no tracks, no
  // socket, no context.
  stop(): void {
    this.wanted = false;
    this.generation++;
    this.closeSocket();
    this.release();
    void this.context?.close().catch(() => undefined);
    this.context = null;
    if (this.state !== 'error') this.setState('off');
  }

  // A context at 24 kHz when the browser makes one, else at its own rate.
  private newContext(preferRate: boolean): AudioContext | null {
    const Ctor = window.AudioContext ?? window.webkitAudioContext;
    if (!Ctor) {
      this.fail('This browser cannot record sound (no Web Audio).');
      return null;
    }
    let ctx: AudioContext | null = null;
    if (preferRate) {
      try {
        ctx = new Ctor({ sampleRate: RATE, latencyHint: 'interactive' });
      } catch {
        // Not a rate this browser makes: its own, resampled here.
      }
    }
    try {
      ctx ??= new Ctor({ latencyHint: 'interactive' });
    } catch (e) {
      this.fail(`The browser could not start recording: ${(e as Error).message}`);
      return null;
    }
    void ctx.resume().catch(() => undefined);
    return ctx;
  }

  private connect(): void {
    if (!this.wanted) return;
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.options.url());
    } catch (e) {
      this.fail(`The microphone could not be connected: ${(e as Error).message}`);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.ready = false;
    let refused = false;
    let gotReady = false;
    ws.onmessage = (e: MessageEvent) => {
      if (this.ws !== ws || typeof e.data !== 'string') return;
      const error = parseError(e.data, 'The server refused the microphone.');
      if (error !== null) {
        refused = true;
        this.fail(error);
        return;
      }
      let o: Record<string, unknown> | null = null;
      try {
        o = JSON.parse(e.data) as Record<string, unknown>;
      } catch {
        return;  // Not for us.
      }
      if (o?.ready !== true) return;
      if (o.format !== 's16le' || o.rate !== RATE || o.channels !== 1) {
        refused = true;
        this.fail(`The server wants a microphone format this page cannot send (${String(o.format)}, ${String(o.rate)} Hz, ${String(o.channels)} channels).`);
        return;
      }
      gotReady = true;
      this.ready = true;
      this.fruitless = 0;
      this.attempt = 0;
      this.count = 0;
      if (this.stream) this.setState('on');
      else void this.open();
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.ready = false;
      if (!this.wanted || refused) return;
      if (!gotReady && ++this.fruitless >= MAX_FRUITLESS) {
        this.fail('The desktop\'s microphone could not be reached.');
        return;
      }
      this.options.onDrop?.();
      if (!this.wanted) return;
      const delay = RECONNECT_DELAYS_MS[Math.min(this.attempt, RECONNECT_DELAYS_MS.length - 1)];
      this.attempt++;
      this.setState('reconnecting');
      window.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = window.setTimeout(() => this.connect(), delay);
    };
  }

  private closeSocket(): void {
    window.clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws) {
      ws.onmessage = null;
      ws.onclose = null;
      ws.close();
    }
  }

  // Asks for the microphone and starts the capture graph: source -> processor -> a silent gain ->
  // the speakers (a ScriptProcessorNode runs only when connected to the destination).
  private async open(): Promise<void> {
    const generation = this.generation;
    if (this.stream || this.opening === generation) return;
    this.opening = generation;
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia(CONSTRAINTS);
    } catch (e) {
      if (generation === this.generation) this.fail(captureError(e));
      return;
    } finally {
      if (this.opening === generation) this.opening = -1;
    }
    const stale = () => generation !== this.generation || !this.wanted || !this.context;
    if (stale()) {
      for (const t of stream.getTracks()) t.stop();
      return;
    }
    this.stream = stream;
    let ctx = this.context!;
    let source: MediaStreamAudioSourceNode;
    try {
      source = ctx.createMediaStreamSource(stream);
    } catch {
      // Some browsers (Firefox) connect a microphone only to a context at its own rate.
      void ctx.close().catch(() => undefined);
      const other = this.newContext(false);
      if (!other) return;
      if (stale()) {
        void other.close().catch(() => undefined);
        return;
      }
      this.context = ctx = other;
      try {
        source = ctx.createMediaStreamSource(stream);
      } catch (e) {
        this.fail(`The microphone could not be recorded: ${(e as Error).message}`);
        return;
      }
    }
    const processor = ctx.createScriptProcessor(ctx.sampleRate <= 32_000 ? 1024 : 2048, 1, 1);
    const mute = ctx.createGain();
    mute.gain.value = 0;
    processor.onaudioprocess = (e) => this.capture(e.inputBuffer.getChannelData(0));
    source.connect(processor);
    processor.connect(mute);
    mute.connect(ctx.destination);
    this.nodes = [source, processor, mute];
    this.processor = processor;
    this.step = ctx.sampleRate / RATE;
    this.pos = 0;
    this.last = 0;
    this.count = 0;
    this.stats.contextRate = ctx.sampleRate;
    for (const t of stream.getAudioTracks()) {
      t.onended = () => {
        if (this.stream === stream) this.fail('The microphone stopped (unplugged, or its permission was taken back).');
      };
    }
    this.level.hidden = false;
    if (this.ready) this.setState('on');
  }

  // Stops the tracks and the graph.
  private release(): void {
    for (const t of this.stream?.getTracks() ?? []) {
      t.onended = null;
      t.stop();
    }
    this.stream = null;
    if (this.processor) this.processor.onaudioprocess = null;
    this.processor = null;
    for (const n of this.nodes) n.disconnect();
    this.nodes = [];
    this.count = 0;
    this.stats.level = 0;
    this.levelBar.style.transform = 'scaleX(0)';
    this.level.hidden = true;
  }

  // One block of the microphone at the context's rate: the level meter, then (while the server is
  // ready) 24 kHz int16 into the batch.
  private capture(input: Float32Array): void {
    let sum = 0;
    for (const v of input) sum += v * v;
    const rms = Math.max(input.length ? Math.sqrt(sum / input.length) : 0, this.stats.level * 0.85);
    this.stats.level = Math.round(rms * 10_000) / 10_000;
    const db = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
    this.levelBar.style.transform = `scaleX(${Math.max(0, Math.min(1, (db + 60) / 60)).toFixed(3)})`;
    if (!this.ready) return;
    if (this.step === 1) {
      for (const v of input) this.push(v);
      return;
    }
    const n = input.length;
    let t = this.pos;
    for (; t <= n - 1; t += this.step) {
      const i = Math.floor(t);
      const a = i < 0 ? this.last : input[i];
      const b = i + 1 < n ? input[i + 1] : a;
      this.push(a + (b - a) * (t - i));
    }
    this.pos = t - n;
    if (n) this.last = input[n - 1];
  }

  private push(v: number): void {
    const s = v <= -1 ? -32768 : v >= 1 ? 32767 : Math.round(v < 0 ? v * 32768 : v * 32767);
    this.pending.setInt16(this.count * 2, s, true);
    if (++this.count < BATCH) return;
    this.count = 0;
    const ws = this.ws;
    // The network is slower than the microphone: drop rather than let latency grow.
    if (!ws || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > MAX_BUFFERED) return;
    ws.send(this.pending.buffer.slice(0));
    this.stats.bytesSent += BATCH * 2;
    this.stats.messagesSent++;
  }

  // A refusal or a failure: the microphone goes off and the reason is shown.
  private fail(text: string): void {
    this.setState('error');
    this.stop();
    this.stats.error = text;
    this.errorBox.textContent = text;
    this.errorBox.hidden = false;
  }

  private setState(state: AudioState): void {
    this.state = state;
    this.stats.state = state;
    const on = state === 'connecting' || state === 'on' || state === 'reconnecting';
    this.button.textContent = on ? 'Mic on' : 'Mic off';
    this.button.setAttribute('aria-pressed', String(on));
    this.button.dataset.state = state;
    this.button.title = {
      off: 'Send this computer\'s microphone to the desktop',
      connecting: 'Connecting the microphone… (click to turn it off)',
      on: 'The desktop hears your microphone (click to turn it off)',
      reconnecting: 'The microphone was interrupted; reconnecting… (click to turn it off)',
      error: 'No microphone: click to try again',
    }[state];
  }
}
