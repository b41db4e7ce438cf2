// The session viewer that `kasm_url` opens: a page of its own (no login, no control plane), served
// by the session proxy at /desktop/<session>/ to whoever holds the session's access token, in a tab
// or in an <iframe> on an integrator's portal. It shows the desktop with noVNC, fits it to the
// window (the desktop resizes, or the picture scales when it cannot), keeps the clipboard in step,
// and reconnects after a network drop.
//
// The server puts what the page needs into <meta name="kasm-viewer"> (the session id, the token
// for the WebSocket, the desktop's VNC password); the token is taken out of the address bar at once
// and the page sends no Referer, so it never leaks to another site. Kasm's page flags are read from
// the URL: disable_control_panel hides the buttons; the page has no chat or tips to disable yet, and
// it always asks the desktop to fit the window (scaling the picture when it cannot resize).

import RFB from '@novnc/novnc';

interface ViewerConfig {
  session: string;
  token: string;
  vnc_password?: string;
}

const RECONNECT_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 15_000];
const CONNECT_TIMEOUT_MS = 30_000;

function config(): ViewerConfig | null {
  const meta = document.querySelector('meta[name="kasm-viewer"]');
  if (!meta) return null;
  try {
    return JSON.parse(meta.getAttribute('content') ?? '') as ViewerConfig;
  } catch {
    return null;
  }
}

function flag(params: URLSearchParams, name: string): boolean {
  const v = params.get(name);
  return v !== null && v !== '0' && v.toLowerCase() !== 'false';
}

const el = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function start(): void {
  const screen = el<HTMLDivElement>('screen');
  const status = el<HTMLDivElement>('status');
  const panel = el<HTMLDivElement>('panel');
  const clip = el<HTMLDivElement>('clip');
  const clipText = el<HTMLTextAreaElement>('clip-text');
  const cfg = config();
  const params = new URLSearchParams(location.search);
  // The token has done its work in the address bar: drop it (and keep the page flags).
  if (params.has('token')) {
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }
  if (!cfg) {
    status.textContent = 'This page must be opened through a session link.';
    return;
  }
  if (flag(params, 'disable_control_panel')) panel.hidden = true;

  let rfb: RFB | null = null;
  let attempt = 0;
  let ended = false;

  function show(text: string, retry = false): void {
    status.hidden = false;
    status.replaceChildren(document.createTextNode(text));
    if (retry) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = 'Reconnect';
      b.onclick = () => {
        attempt = 0;
        connect();
      };
      status.append(' ', b);
    }
  }

  function wsUrl(): string {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
    return `${scheme}//${location.host}${base}websockify?token=${encodeURIComponent(cfg!.token)}`;
  }

  function connect(): void {
    if (ended) return;
    show(attempt === 0 ? 'Connecting to the desktop…' : 'Reconnecting…');
    const client = new RFB(screen, wsUrl(), {
      shared: true,
      credentials: cfg!.vnc_password ? { password: cfg!.vnc_password } : undefined,
    });
    rfb = client;
    client.scaleViewport = true;
    client.resizeSession = true;
    client.background = '#1f2937';
    let connected = false;
    const timer = window.setTimeout(() => {
      if (!connected && rfb === client) client.disconnect();
    }, CONNECT_TIMEOUT_MS);
    client.addEventListener('connect', () => {
      connected = true;
      attempt = 0;
      window.clearTimeout(timer);
      status.hidden = true;
      document.documentElement.dataset.connection = 'connected';
      client.focus();
    });
    client.addEventListener('disconnect', () => {
      window.clearTimeout(timer);
      document.documentElement.dataset.connection = 'disconnected';
      if (rfb !== client) return;
      rfb = null;
      if (attempt >= RECONNECT_DELAYS_MS.length) {
        show('The connection to the desktop was lost.', true);
        return;
      }
      const delay = RECONNECT_DELAYS_MS[attempt++];
      show(`The connection to the desktop was lost. Reconnecting in ${Math.round(delay / 1000)} s…`);
      window.setTimeout(connect, delay);
    });
    client.addEventListener('securityfailure', () => {
      ended = true;
      show('The desktop refused the connection.');
    });
    client.addEventListener('clipboard', (e: Event) => {
      clipText.value = (e as CustomEvent<{ text: string }>).detail.text;
    });
  }

  el<HTMLButtonElement>('clip-toggle').addEventListener('click', (e) => {
    clip.hidden = !clip.hidden;
    (e.currentTarget as HTMLElement).setAttribute('aria-expanded', String(!clip.hidden));
  });
  el<HTMLButtonElement>('clip-send').addEventListener('click', () => rfb?.clipboardPasteFrom(clipText.value));
  el<HTMLButtonElement>('fullscreen').addEventListener('click', () => {
    void document.documentElement.requestFullscreen?.().catch(() => undefined);
  });
  // Paste into the desktop what is pasted onto the page (keyboard users, no panel needed).
  window.addEventListener('paste', (e) => {
    const text = e.clipboardData?.getData('text/plain');
    if (text && rfb) rfb.clipboardPasteFrom(text);
  });
  window.addEventListener('online', () => {
    if (!rfb && !ended) {
      attempt = 0;
      connect();
    }
  });
  connect();
}

start();
