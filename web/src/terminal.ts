// The web terminal of an SSH session: the page the session proxy serves at /desktop/<session>/ for
// sessions on an SSH server, as it serves viewer.html for desktops. The same <meta name="kasm-viewer">
// carries the session id, the token for the WebSocket and whether this viewer may only watch; the
// token leaves the address bar at once and the page sends no Referer.
//
// The WebSocket (<page>/websockify?token=...) reaches the desktop gateway, which speaks the frames
// of terminal-frames.ts: keystrokes, pastes and the terminal's size go up, the shell's output, a
// "ready" with the server's host key fingerprint, an error (shown as it is: wrong password, host
// key changed, server down...) or the shell's exit status come down. A new connection is a new
// shell, so the page never reconnects by itself: it says what happened and offers to.
//
// A view-only viewer sends nothing but pings: no keys, no pastes, no sizes.

import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import {
  FrameReader,
  FrameType,
  decodeExit,
  decodeText,
  encodeFrame,
  encodeInput,
  encodeResize,
  type ReadyInfo,
} from './terminal-frames';
import { dropTokenFromAddress, viewerConfig } from './viewer-config';

// The gateway gives up connecting after 15 s and says why; this only covers a gateway that never
// answers at all.
const CONNECT_TIMEOUT_MS = 30_000;
// Keeps idle connections from being cut by proxies on the way.
const PING_INTERVAL_MS = 25_000;
const RESIZE_DEBOUNCE_MS = 120;



const el = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const encoder = new TextEncoder();

function start(): void {
  const screen = el<HTMLDivElement>('screen');
  const status = el<HTMLDivElement>('status');
  const where = el<HTMLSpanElement>('where');
  const badge = el<HTMLSpanElement>('badge');
  const bar = el<HTMLDivElement>('bar');
  const copyButton = el<HTMLButtonElement>('copy');
  const pasteButton = el<HTMLButtonElement>('paste');
  const readerButton = el<HTMLButtonElement>('reader');
  const cfg = viewerConfig();
  const params = dropTokenFromAddress();
  if (!cfg) {
    showNotice('This page must be opened through a session link.', { error: true });
    return;
  }
  const flag = (name: string) => {
    const v = params.get(name);
    return v !== null && v !== '0' && v.toLowerCase() !== 'false';
  };
  if (flag('disable_control_panel')) bar.hidden = true;
  const viewOnly = Boolean(cfg.view_only);
  // Like the desktop viewer: only the owner's window sizes a shared session.
  const sendsSize = !viewOnly && cfg.owner !== false;
  badge.hidden = !viewOnly;
  badge.title = viewOnly ? 'You are watching: your keyboard does not reach this terminal.' : '';
  pasteButton.hidden = viewOnly;
  document.documentElement.dataset.viewOnly = String(viewOnly);

  const term = new Terminal({
    cursorBlink: !viewOnly,
    disableStdin: viewOnly,
    fontFamily: "ui-monospace, 'DejaVu Sans Mono', 'Liberation Mono', Menlo, Consolas, monospace",
    fontSize: 14,
    scrollback: 5000,
    theme: { background: '#111827', foreground: '#e5e7eb', cursor: '#93c5fd', selectionBackground: '#374151' },
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();

  let ws: WebSocket | null = null;
  let ended = false;

  function showNotice(text: string, opts: { error?: boolean; title?: string; retry?: boolean } = {}): void {
    status.hidden = false;
    status.className = opts.error ? 'error' : '';
    // Errors interrupt a screen reader; progress does not.
    status.setAttribute('role', opts.error ? 'alert' : 'status');
    const parts: Node[] = [];
    if (opts.title) {
      const t = document.createElement('p');
      t.className = 'title';
      t.textContent = opts.title;
      parts.push(t);
    }
    const p = document.createElement('p');
    p.textContent = text;
    parts.push(p);
    if (opts.retry) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Connect again';
      b.onclick = () => connect();
      const wrap = document.createElement('p');
      wrap.append(b);
      parts.push(wrap);
    }
    status.replaceChildren(...parts);
    if (opts.retry) (status.querySelector('button') as HTMLButtonElement).focus();
  }

  function send(bytes: Uint8Array): void {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes);
  }

  // Input from the keyboard, a paste or the terminal's own answers (cursor reports): only for a
  // viewer who may type.
  term.onData((data) => {
    if (!viewOnly && !ended) send(encodeInput(encoder.encode(data)));
  });
  term.onBinary((data) => {
    if (viewOnly || ended) return;
    const bytes = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
    send(encodeInput(bytes));
  });
  term.onTitleChange((title) => {
    document.title = title ? `${title} — Kasm terminal` : 'Kasm terminal';
  });

  function sendSize(): void {
    if (sendsSize && !ended) send(encodeResize(term.cols, term.rows));
  }
  let resizeTimer = 0;
  term.onResize(() => {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(sendSize, RESIZE_DEBOUNCE_MS);
  });
  new ResizeObserver(() => fit.fit()).observe(screen);

  async function copySelection(): Promise<void> {
    const text = term.getSelection();
    if (!text) return;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      // Without clipboard access (an insecure origin), the browser's own copy still works.
      document.execCommand('copy');
    }
  }
  async function pasteClipboard(): Promise<void> {
    if (viewOnly) return;
    try {
      const text = await navigator.clipboard.readText();
      if (text) term.paste(text);
    } catch {
      showNotice('The browser did not allow reading the clipboard: press Ctrl+Shift+V in the terminal instead.');
      window.setTimeout(() => {
        if (!ended && ws?.readyState === WebSocket.OPEN) status.hidden = true;
      }, 4000);
    }
    term.focus();
  }

  // Ctrl+Shift+C copies and Ctrl+Shift+V pastes, as in desktop terminals; plain Ctrl+C stays the
  // shell's interrupt. Returning false keeps xterm from sending the key; for V the browser then
  // fires its paste event, which xterm's own handler turns into input (bracketed when asked).
  term.attachCustomKeyEventHandler((e) => {
    if (e.type !== 'keydown' || !e.ctrlKey || !e.shiftKey || e.altKey || e.metaKey) return true;
    const key = e.key.toLowerCase();
    if (key === 'c') {
      void copySelection();
      return false;
    }
    if (key === 'v') return false;
    return true;
  });
  copyButton.addEventListener('click', () => {
    void copySelection();
    term.focus();
  });
  pasteButton.addEventListener('click', () => void pasteClipboard());
  // A paste anywhere else on the page goes to the terminal too (the terminal's own input handles
  // those aimed at it).
  window.addEventListener('paste', (e) => {
    if (viewOnly || screen.contains(e.target as Node | null)) return;
    const text = e.clipboardData?.getData('text/plain');
    if (text) {
      e.preventDefault();
      term.paste(text);
    }
  });
  readerButton.addEventListener('click', () => {
    const on = readerButton.getAttribute('aria-pressed') !== 'true';
    readerButton.setAttribute('aria-pressed', String(on));
    term.options.screenReaderMode = on;
    term.focus();
  });
  el<HTMLButtonElement>('fullscreen').addEventListener('click', () => {
    void document.documentElement.requestFullscreen?.().catch(() => undefined);
  });

  function wsUrl(): string {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
    return `${scheme}//${location.host}${base}websockify?token=${encodeURIComponent(cfg!.token)}`;
  }

  function connect(): void {
    ended = false;
    term.reset();
    showNotice('Connecting to the SSH server…');
    where.textContent = 'Terminal';
    document.documentElement.dataset.connection = 'connecting';
    const socket = new WebSocket(wsUrl());
    socket.binaryType = 'arraybuffer';
    ws = socket;
    const reader = new FrameReader();
    let ready = false;
    let pinger = 0;
    const timer = window.setTimeout(() => {
      if (ws === socket && !ready) finish(socket, 'The SSH server did not answer in time.', 'error');
    }, CONNECT_TIMEOUT_MS);

    socket.onopen = () => {
      // The gateway keeps what comes before the shell runs: the size is there from the start.
      sendSize();
      pinger = window.setInterval(() => send(encodeFrame(FrameType.Ping)), PING_INTERVAL_MS);
    };
    socket.onmessage = (ev: MessageEvent) => {
      if (ws !== socket || !(ev.data instanceof ArrayBuffer)) return;
      let frames;
      try {
        frames = reader.push(new Uint8Array(ev.data));
      } catch (e) {
        finish(socket, `The terminal stream broke (${(e as Error).message}).`, 'error');
        return;
      }
      for (const f of frames) {
        if (f.type === FrameType.Output) {
          term.write(f.payload);
        } else if (f.type === FrameType.Ready) {
          ready = true;
          window.clearTimeout(timer);
          onReady(decodeText(f.payload));
        } else if (f.type === FrameType.Error) {
          finish(socket, decodeText(f.payload), 'error');
          return;
        } else if (f.type === FrameType.Exit) {
          const code = decodeExit(f.payload);
          finish(socket, code >= 0 ? `The shell exited with status ${code}.` : 'The shell was ended.', 'exit');
          return;
        }
      }
    };
    socket.onclose = () => {
      window.clearTimeout(timer);
      window.clearInterval(pinger);
      if (ws !== socket) return;
      finish(socket, ready ? 'The connection to the terminal was lost.' : 'The terminal could not be reached.', 'error');
    };

    function finish(s: WebSocket, text: string, kind: 'error' | 'exit'): void {
      window.clearTimeout(timer);
      window.clearInterval(pinger);
      if (ws !== s) return;
      ws = null;
      ended = true;
      s.close();
      document.documentElement.dataset.connection = kind === 'exit' ? 'ended' : 'error';
      if (kind === 'exit') {
        showNotice(text, { title: 'Session ended', retry: true });
      } else {
        showNotice(text, { error: true, title: 'Terminal error', retry: true });
      }
    }
  }

  function onReady(json: string): void {
    status.hidden = true;
    document.documentElement.dataset.connection = 'connected';
    let info: Partial<ReadyInfo> = {};
    try {
      info = JSON.parse(json) as ReadyInfo;
    } catch {
      // The gateway always sends JSON; without it the terminal still works.
    }
    if (info.host) {
      const port = info.port && info.port !== 22 ? `:${info.port}` : '';
      const fp = document.createElement('span');
      fp.className = 'fingerprint';
      fp.textContent = info.fingerprint ?? '';
      fp.title = `Host key (${info.key_type ?? 'unknown type'}) fingerprint`;
      where.replaceChildren(`${info.user ?? ''}@${info.host}${port}`, fp);
    }
    term.focus();
  }

  connect();
}

start();
