// The desktop's sound in the session viewer, for the session's owner when their group allows it
// (Kasm's allow_audio). The session proxy serves a WebSocket beside the viewer page
// (`<viewer page directory>kasm/audio`, the same token as the desktop): the server records the
// desktop's PulseAudio sink (kasm_output's monitor, see images/CONTRACT.md) and sends
//   first a text message  {"format":"s16le","rate":24000,"channels":2}
//   then binary messages  whole frames of interleaved little-endian int16 samples (L,R,L,R...)
//   or, refused, a text   {"error": text}, then it closes.
// The page sends nothing.
//
// Playback: an AudioContext made on the user's click (browsers only let sound start from a gesture),
// asked for the stream's rate (a browser that ignores that gets AudioBuffers at the stream's rate
// and resamples them itself). Each message becomes an AudioBuffer played right after the one before
// it, LEAD_S ahead of the context's clock at first (the jitter buffer). When the queue runs dry
// (the network was late) it starts again LEAD_S ahead; when it holds more than MAX_AHEAD_S (a burst,
// a context that was not running) what is queued is dropped and it starts again, so latency cannot
// grow. Graph: sources -> GainNode (volume) -> AnalyserNode (the level meter, and tests) -> speakers.
//
// window.kasmAudio = {analyser, context, stats} is there for tests and diagnostics: stats are
// updated as messages arrive and on every frame of the level meter while sound is on.

export const RECONNECT_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 15_000];
// How far ahead of the context's clock a fresh queue starts (the jitter buffer).
const LEAD_S = 0.06;
// More queued than this (latency LEAD_S + ~200 ms): drop the queue and start again.
const MAX_AHEAD_S = 0.26;
// Connections in a row that brought no sound (refused at the handshake, or closed before any PCM:
// the image has no sound server) before the page gives up. microphone.ts uses these too.
export const MAX_FRUITLESS = 5;

export type AudioState = 'off' | 'connecting' | 'on' | 'reconnecting' | 'error';

export interface AudioStats {
  // PCM bytes and binary messages received since sound was turned on (all connections).
  bytes: number;
  messages: number;
  // How much sound is queued ahead of what the speakers play now, in ms (the current latency of
  // the jitter buffer).
  scheduledAheadMs: number;
  // Times the queue ran dry (the next message came too late) and times it was dropped as too long.
  underruns: number;
  resyncs: number;
  // Date.now() of the first PCM message since sound was turned on; null while off.
  startedAt: number | null;
  // The stream's format (from the server's first message) and the context's real rate.
  format: { format: string; rate: number; channels: number } | null;
  contextRate: number;
  state: AudioState;
  error: string;
}

export interface KasmAudio {
  analyser: AnalyserNode | null;
  context: AudioContext | null;
  stats: AudioStats;
}

declare global {
  interface Window {
    kasmAudio?: KasmAudio;
    webkitAudioContext?: typeof AudioContext;
  }
}

export interface SoundControlOptions {
  // The socket's URL, asked again at every (re)connection.
  url: () => string;
  // The socket dropped while sound is on: the host may find out whether the viewer's access ended
  // (and call stop()); otherwise the control reconnects with a growing delay.
  onDrop?: () => void;
}

interface StreamFormat {
  format: string;
  rate: number;
  channels: number;
}

const DEFAULT_FORMAT: StreamFormat = { format: 's16le', rate: 24_000, channels: 2 };
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// The server's refusal text from a text message, or null when it is not one.
export function parseError(text: string, fallback = 'The server refused the sound.'): string | null {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (o && typeof o.error === 'string') return o.error.trim() || fallback;
  } catch {
    // Not JSON: not a refusal.
  }
  return null;
}

function parseFormat(text: string): StreamFormat | null {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (!o || typeof o.format !== 'string') return null;
    return {
      format: o.format,
      rate: typeof o.rate === 'number' ? o.rate : DEFAULT_FORMAT.rate,
      channels: typeof o.channels === 'number' ? o.channels : DEFAULT_FORMAT.channels,
    };
  } catch {
    return null;
  }
}

// The "Sound" button of the viewer's control panel, its level meter and volume, and the player.
export class SoundControl {
  private readonly exposed: KasmAudio;
  private context: AudioContext | null = null;
  private gain: GainNode | null = null;
  private analyser: AnalyserNode | null = null;
  private ws: WebSocket | null = null;
  private state: AudioState = 'off';
  private wanted = false;
  private attempt = 0;
  private fruitless = 0;
  private reconnectTimer = 0;
  private frame = 0;
  private format: StreamFormat = DEFAULT_FORMAT;
  private nextTime = 0;
  private readonly queued = new Set<AudioBufferSourceNode>();
  private levelData: Float32Array<ArrayBuffer> | null = null;

  constructor(
    private readonly button: HTMLButtonElement,
    private readonly level: HTMLElement,
    private readonly levelBar: HTMLElement,
    private readonly volume: HTMLInputElement,
    private readonly errorBox: HTMLElement,
    private readonly options: SoundControlOptions,
  ) {
    this.exposed = {
      analyser: null,
      context: null,
      stats: {
        bytes: 0, messages: 0, scheduledAheadMs: 0, underruns: 0, resyncs: 0, startedAt: null,
        format: null, contextRate: 0, state: 'off', error: '',
      },
    };
    window.kasmAudio = this.exposed;
    button.addEventListener('click', () => (this.wanted ? this.stop() : this.start()));
    volume.addEventListener('input', () => this.applyVolume());
    errorBox.addEventListener('click', () => (errorBox.hidden = true));
    this.setState('off');
  }

  // Turns sound on: must run in the click's handler (a user gesture) for the context to start.
  start(): void {
    this.errorBox.hidden = true;
    this.exposed.stats.error = '';
    if (!this.ensureContext()) return;
    void this.context!.resume().catch(() => undefined);
    this.wanted = true;
    this.attempt = 0;
    this.fruitless = 0;
    const s = this.exposed.stats;
    s.bytes = 0;
    s.messages = 0;
    s.underruns = 0;
    s.resyncs = 0;
    s.startedAt = null;
    this.connect();
    this.startMeter();
  }

  // Turns sound off (the button, or the viewer's access ended): no socket, nothing queued.
  stop(): void {
    this.wanted = false;
    this.closeSocket();
    this.flush();
    this.exposed.stats.startedAt = null;
    this.stopMeter();
    // A suspended context costs nothing; it is resumed by the next click.
    void this.context?.suspend().catch(() => undefined);
    if (this.state !== 'error') this.setState('off');
  }

  private ensureContext(): boolean {
    if (this.context) return true;
    const Ctor = window.AudioContext ?? window.webkitAudioContext;
    if (!Ctor) {
      this.fail('This browser cannot play sound (no Web Audio).');
      return false;
    }
    let ctx: AudioContext;
    try {
      ctx = new Ctor({ sampleRate: DEFAULT_FORMAT.rate, latencyHint: 'interactive' });
    } catch {
      // Some browsers refuse a rate of their own choosing: the buffers carry the stream's rate and
      // the context resamples them.
      try {
        ctx = new Ctor({ latencyHint: 'interactive' });
      } catch (e) {
        this.fail(`The browser could not start sound: ${(e as Error).message}`);
        return false;
      }
    }
    const gain = ctx.createGain();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    analyser.smoothingTimeConstant = 0.5;
    gain.connect(analyser);
    analyser.connect(ctx.destination);
    this.context = ctx;
    this.gain = gain;
    this.analyser = analyser;
    this.exposed.context = ctx;
    this.exposed.analyser = analyser;
    this.exposed.stats.contextRate = ctx.sampleRate;
    this.applyVolume();
    return true;
  }

  private applyVolume(): void {
    const v = Math.min(100, Math.max(0, Number(this.volume.value) || 0)) / 100;
    // Loudness follows the square of the slider better than the slider itself.
    if (this.gain && this.context) this.gain.gain.setTargetAtTime(v * v, this.context.currentTime, 0.015);
    this.volume.setAttribute('aria-valuetext', `${Math.round(v * 100)}%`);
  }

  private connect(): void {
    if (!this.wanted) return;
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.options.url());
    } catch (e) {
      this.fail(`The sound could not be connected: ${(e as Error).message}`);
      return;
    }
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let refused = false;
    let sound = false;
    this.format = DEFAULT_FORMAT;
    this.nextTime = 0;
    ws.onmessage = (e: MessageEvent) => {
      if (this.ws !== ws) return;
      if (typeof e.data === 'string') {
        const error = parseError(e.data);
        if (error !== null) {
          refused = true;
          this.fail(error);
          return;
        }
        const f = parseFormat(e.data);
        if (f) {
          if (f.format !== 's16le' || !(f.channels >= 1 && f.channels <= 8) || !(f.rate >= 3_000 && f.rate <= 384_000)) {
            refused = true;
            this.fail(`The server sends sound this page cannot play (${f.format}, ${f.rate} Hz, ${f.channels} channels).`);
            return;
          }
          this.format = f;
          this.exposed.stats.format = { ...f };
        }
        // Anything else ("pong", future fields) is not for us.
        return;
      }
      if (!sound) {
        sound = true;
        this.fruitless = 0;
      }
      this.play(e.data as ArrayBuffer);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (!this.wanted || refused) return;
      if (!sound && ++this.fruitless >= MAX_FRUITLESS) {
        this.fail('The desktop\'s sound could not be reached.');
        return;
      }
      this.flush();
      this.options.onDrop?.();
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
    if (ws) {
      ws.onmessage = null;
      ws.onclose = null;
      ws.close();
    }
  }

  // One binary message: whole frames of interleaved int16 -> a planar Float32 AudioBuffer, queued
  // right after the previous one.
  private play(data: ArrayBuffer): void {
    const ctx = this.context;
    const s = this.exposed.stats;
    s.bytes += data.byteLength;
    s.messages++;
    if (s.startedAt === null) s.startedAt = Date.now();
    if (this.state !== 'on') {
      this.attempt = 0;
      this.setState('on');
    }
    const channels = this.format.channels;
    const frames = Math.floor(data.byteLength / (2 * channels));
    if (!ctx || frames === 0) return;
    // A context that is not running (suspended by the browser) would only let the queue grow.
    if (ctx.state !== 'running') {
      this.flush();
      return;
    }
    const buffer = ctx.createBuffer(channels, frames, this.format.rate);
    if (littleEndian) {
      const pcm = new Int16Array(data, 0, frames * channels);
      for (let c = 0; c < channels; c++) {
        const out = buffer.getChannelData(c);
        for (let i = 0, j = c; i < frames; i++, j += channels) out[i] = pcm[j] / 32768;
      }
    } else {
      const view = new DataView(data);
      for (let c = 0; c < channels; c++) {
        const out = buffer.getChannelData(c);
        for (let i = 0, j = c * 2; i < frames; i++, j += 2 * channels) out[i] = view.getInt16(j, true) / 32768;
      }
    }
    const now = ctx.currentTime;
    if (this.nextTime < now) {
      // The queue ran dry (or this is the first message): start again a little ahead.
      if (this.nextTime > 0) s.underruns++;
      this.nextTime = now + LEAD_S;
    } else if (this.nextTime - now > MAX_AHEAD_S) {
      // Too much queued: drop it rather than let latency grow.
      s.resyncs++;
      this.flush();
      this.nextTime = now + LEAD_S;
    }
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.gain!);
    source.onended = () => this.queued.delete(source);
    source.start(this.nextTime);
    this.queued.add(source);
    this.nextTime += buffer.duration;
    s.scheduledAheadMs = Math.round((this.nextTime - now) * 1000);
  }

  // Drops whatever is queued.
  private flush(): void {
    for (const source of this.queued) {
      source.onended = null;
      try {
        source.stop();
      } catch {
        // Not started yet in some browsers' eyes: nothing to stop.
      }
      source.disconnect();
    }
    this.queued.clear();
    this.nextTime = 0;
    this.exposed.stats.scheduledAheadMs = 0;
  }

  // The level meter (RMS of what plays, -60..0 dBFS) and the live latency figure, on animation
  // frames while sound is on only.
  private startMeter(): void {
    if (this.frame) return;
    this.level.hidden = false;
    this.volume.hidden = false;
    const tick = () => {
      this.frame = 0;
      if (!this.wanted) return;
      const ctx = this.context;
      const analyser = this.analyser;
      if (ctx && analyser) {
        if (!this.levelData || this.levelData.length !== analyser.fftSize) this.levelData = new Float32Array(analyser.fftSize);
        analyser.getFloatTimeDomainData(this.levelData);
        let sum = 0;
        for (const v of this.levelData) sum += v * v;
        const rms = Math.sqrt(sum / this.levelData.length);
        const db = rms > 0 ? 20 * Math.log10(rms) : -Infinity;
        const fill = Math.max(0, Math.min(1, (db + 60) / 60));
        this.levelBar.style.transform = `scaleX(${fill.toFixed(3)})`;
        this.exposed.stats.scheduledAheadMs = this.nextTime > 0 ? Math.max(0, Math.round((this.nextTime - ctx.currentTime) * 1000)) : 0;
      }
      this.frame = window.requestAnimationFrame(tick);
    };
    this.frame = window.requestAnimationFrame(tick);
  }

  private stopMeter(): void {
    if (this.frame) window.cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.levelBar.style.transform = 'scaleX(0)';
    this.level.hidden = true;
    this.volume.hidden = true;
  }

  // A refusal or a failure: sound goes off and the reason is shown (the server's own words).
  private fail(text: string): void {
    this.setState('error');
    this.stop();
    this.exposed.stats.error = text;
    this.errorBox.textContent = text;
    this.errorBox.hidden = false;
  }

  private setState(state: AudioState): void {
    this.state = state;
    this.exposed.stats.state = state;
    const on = state === 'connecting' || state === 'on' || state === 'reconnecting';
    this.button.textContent = on ? 'Sound on' : 'Sound off';
    this.button.setAttribute('aria-pressed', String(on));
    this.button.dataset.state = state;
    this.button.title = {
      off: 'Play the desktop\'s sound in this browser',
      connecting: 'Connecting to the desktop\'s sound… (click to turn it off)',
      on: 'The desktop\'s sound plays here (click to turn it off)',
      reconnecting: 'The sound was interrupted; reconnecting… (click to turn it off)',
      error: 'No sound: click to try again',
    }[state];
  }
}
