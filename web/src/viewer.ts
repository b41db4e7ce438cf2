// The session viewer that `kasm_url` opens: a page of its own (no login, no control plane), served
// by the session proxy at /desktop/<session>/ to whoever holds the session's access token, in a tab
// or in an <iframe> on an integrator's portal, and to people a session is shared with. It shows the
// desktop with noVNC, fits it to the window (the desktop resizes, or the picture scales when it
// cannot), keeps the clipboard in step, reconnects after a network drop, and has the session's chat.
//
// The server puts what the page needs into <meta name="kasm-viewer"> (the session id, the token
// for the WebSocket, whether this viewer may only watch); the token is taken out of the address bar
// at once and the page sends no Referer, so it never leaks to another site. The proxy answers the
// desktop's VNC authentication itself, so noVNC connects without credentials, and it drops a
// watcher's input whatever the page sends: view_only here only says what to show.
//
// Whether this viewer may still watch, or control, can change while the page is open (the owner
// gives or takes control, removes them, stops sharing). The page re-reads its own address now and
// then (the cookie of this session carries the token): a refusal means the access ended, a fresh
// view_only is applied to noVNC and the badge.
//
// Kasm's page flags are read from the URL: disable_control_panel hides the buttons, disable_chat
// leaves the chat out; the page always asks the desktop to fit the window.
//
// The session's owner may also transfer files (files.ts) when their group allows it: the "Files"
// button appears only when the proxy's kasm/files says uploads or downloads are allowed.
//
// The owner may also hear the desktop (audio.ts): the "Sound" button opens the proxy's kasm/audio
// WebSocket, which refuses, in words the page shows, when the group does not allow sound; and
// "Mic" sends the browser's microphone to the desktop's default source (microphone.ts, the proxy's
// kasm/microphone, refused likewise when the group does not allow_microphone).

import RFB from '@novnc/novnc';
import { SoundControl } from './audio';
import { ChatPanel } from './chat';
import { acceptDrops, FilesPanel, loadFiles } from './files';
import { MicrophoneControl } from './microphone';
import { dropTokenFromAddress, parseViewerConfig as parseConfig, viewerConfig as config } from './viewer-config';


const RECONNECT_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 15_000];
const CONNECT_TIMEOUT_MS = 30_000;
// How often a connected page re-reads its own access (view only or not, or ended).
const ACCESS_CHECK_MS = 10_000;
const ACCESS_ENDED = 'Your access to this session ended.';


function flag(params: URLSearchParams, name: string): boolean {
  const v = params.get(name);
  return v !== null && v !== '0' && v.toLowerCase() !== 'false';
}

// What the proxy says about this viewer now, read from the viewer page's own address: "ok" with
// the page's current view_only, "ended" (refused: the token's user may no longer open the
// session), "gone" (the session no longer exists), or "unknown" (unreachable, not running).
type Access = { kind: 'ok'; viewOnly: boolean } | { kind: 'ended' | 'gone' | 'unknown' };

async function checkAccess(): Promise<Access> {
  let r: Response;
  try {
    r = await fetch(location.pathname, { cache: 'no-store', credentials: 'same-origin', redirect: 'manual' });
  } catch {
    return { kind: 'unknown' };
  }
  if (r.status === 401 || r.status === 403) return { kind: 'ended' };
  if (r.status === 404) return { kind: 'gone' };
  if (!r.ok) return { kind: 'unknown' };
  // DOMParser builds an inert document: nothing in it runs or loads.
  const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
  const cfg = parseConfig(doc.querySelector('meta[name="kasm-viewer"]')?.getAttribute('content'));
  return cfg ? { kind: 'ok', viewOnly: Boolean(cfg.view_only) } : { kind: 'unknown' };
}

const el = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

function start(): void {
  const screen = el<HTMLDivElement>('screen');
  const status = el<HTMLDivElement>('status');
  const panel = el<HTMLDivElement>('panel');
  const badge = el<HTMLDivElement>('badge');
  const clip = el<HTMLDivElement>('clip');
  const clipText = el<HTMLTextAreaElement>('clip-text');
  const clipToggle = el<HTMLButtonElement>('clip-toggle');
  const chatBox = el<HTMLDivElement>('chat-box');
  const chatToggle = el<HTMLButtonElement>('chat-toggle');
  const filesBox = el<HTMLDivElement>('files-box');
  const filesToggle = el<HTMLButtonElement>('files-toggle');
  const dropOverlay = el<HTMLDivElement>('drop-overlay');
  const cfg = config();
  const params = dropTokenFromAddress();
  if (!cfg) {
    status.textContent = 'This page must be opened through a session link.';
    return;
  }
  if (flag(params, 'disable_control_panel')) panel.hidden = true;

  let rfb: RFB | null = null;
  let attempt = 0;
  let ended = false;
  let viewOnly = Boolean(cfg.view_only);
  let chat: ChatPanel | null = null;
  let sound: SoundControl | null = null;
  let mic: MicrophoneControl | null = null;

  function setViewOnly(v: boolean): void {
    viewOnly = v;
    badge.hidden = !v;
    badge.title = v ? 'You are watching: your keyboard and mouse do not reach this desktop.' : '';
    document.documentElement.dataset.viewOnly = String(v);
    if (rfb) rfb.viewOnly = v;
  }
  setViewOnly(viewOnly);

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

  // The end of this viewer's access (or of the session): no more reconnecting, chat closed.
  function end(text: string): void {
    ended = true;
    const old = rfb;
    rfb = null;
    old?.disconnect();
    chat?.stop(text);
    sound?.stop();
    mic?.stop();
    document.documentElement.dataset.connection = 'ended';
    show(text);
  }

  // One check at a time; the desktop and the chat dropping together ask once.
  let checking: Promise<Access> | null = null;
  async function recheck(): Promise<Access> {
    if (!checking) checking = checkAccess().finally(() => (checking = null));
    const a = await checking;
    if (ended) return a;
    if (a.kind === 'ended') end(ACCESS_ENDED);
    else if (a.kind === 'gone') end('This session has ended.');
    else if (a.kind === 'ok' && a.viewOnly !== viewOnly) setViewOnly(a.viewOnly);
    return a;
  }

  function wsUrl(): string {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
    return `${scheme}//${location.host}${base}websockify?token=${encodeURIComponent(cfg!.token)}`;
  }

  function connect(): void {
    if (ended) return;
    show(attempt === 0 ? 'Connecting to the desktop…' : 'Reconnecting…');
    // No credentials: the proxy authenticates to the desktop's VNC server itself.
    const client = new RFB(screen, wsUrl(), { shared: true });
    rfb = client;
    client.viewOnly = viewOnly;
    client.scaleViewport = true;
    client.resizeSession = Boolean(cfg?.owner);
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
      if (rfb !== client) return;
      rfb = null;
      document.documentElement.dataset.connection = 'disconnected';
      show('The connection to the desktop was lost. Checking…');
      void recheck().then(() => {
        if (ended) return;
        if (attempt >= RECONNECT_DELAYS_MS.length) {
          show('The connection to the desktop was lost.', true);
          return;
        }
        const delay = RECONNECT_DELAYS_MS[attempt++];
        show(`The connection to the desktop was lost. Reconnecting in ${Math.round(delay / 1000)} s…`);
        window.setTimeout(connect, delay);
      });
    });
    client.addEventListener('securityfailure', () => {
      end('The desktop refused the connection.');
    });
    client.addEventListener('clipboard', (e: Event) => {
      clipText.value = (e as CustomEvent<{ text: string }>).detail.text;
    });
  }

  // The panels under the control panel's buttons (clipboard, chat, files): one open at a time.
  interface Panel {
    box: HTMLElement;
    toggle: HTMLButtonElement;
    onOpen?: (open: boolean) => void;
  }
  const panels: Panel[] = [];
  function addPanel(box: HTMLElement, toggle: HTMLButtonElement, onOpen?: (open: boolean) => void): Panel {
    const p = { box, toggle, onOpen };
    panels.push(p);
    return p;
  }
  function setPanel(p: Panel, open: boolean): void {
    p.box.hidden = !open;
    p.toggle.setAttribute('aria-expanded', String(open));
    p.onOpen?.(open);
  }
  function togglePanel(p: Panel): void {
    const open = p.box.hidden;
    if (open) for (const other of panels) if (other !== p && !other.box.hidden) setPanel(other, false);
    setPanel(p, open);
  }

  // ---- chat ----
  if (!flag(params, 'disable_chat')) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
    const chatUrl = `${scheme}//${location.host}${base}kasm/chat?token=${encodeURIComponent(cfg.token)}`;
    const panelChat = new ChatPanel({
      url: () => chatUrl,
      // The chat closes when the access ends: find out at once rather than at the next check.
      onDrop: () => void recheck(),
      onUnread: (n) => {
        chatToggle.replaceChildren('Chat');
        if (n > 0) {
          const count = document.createElement('span');
          count.className = 'unread';
          count.textContent = String(n);
          count.setAttribute('aria-label', `${n} unread`);
          chatToggle.append(count);
        }
      },
    });
    chat = panelChat;
    chatBox.append(panelChat.root);
    chatToggle.hidden = false;
    const chatPanel = addPanel(chatBox, chatToggle, (open) => {
      panelChat.setOpen(open);
      if (open) chatBox.querySelector('input')?.focus();
    });
    chatToggle.addEventListener('click', () => togglePanel(chatPanel));
    panelChat.start();
  }

  const clipPanel = addPanel(clip, clipToggle);
  clipToggle.addEventListener('click', () => togglePanel(clipPanel));

  // ---- files (the owner's, when the group allows uploads or downloads) ----
  if (cfg.owner !== false && !panel.hidden) {
    const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
    void loadFiles(base).then((info) => {
      if (!info || ended) return;
      const files = new FilesPanel(base, info);
      filesBox.append(files.root);
      filesToggle.hidden = false;
      const filesPanel = addPanel(filesBox, filesToggle, (open) => {
        if (open && info.downloads) void files.refresh();
      });
      filesToggle.addEventListener('click', () => togglePanel(filesPanel));
      if (info.uploads) {
        acceptDrops(dropOverlay, (dropped) => {
          if (filesBox.hidden) togglePanel(filesPanel);
          files.upload(dropped);
        });
      }
    });
  }
  // ---- sound and microphone (the owner's; the server refuses what the group does not allow) ----
  if (cfg.owner !== false && !panel.hidden) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
    const audioUrl = new URL(`${base}kasm/audio`, location.href);
    audioUrl.protocol = scheme;
    // The token in the address too, as for the chat: a portal's frame may not send the cookie.
    audioUrl.search = `token=${encodeURIComponent(cfg.token)}`;
    sound = new SoundControl(
      el<HTMLButtonElement>('sound-toggle'),
      el<HTMLSpanElement>('sound-level'),
      el<HTMLSpanElement>('sound-level-bar'),
      el<HTMLInputElement>('sound-volume'),
      el<HTMLDivElement>('sound-error'),
      { url: () => audioUrl.toString(), onDrop: () => void recheck() },
    );
    el<HTMLSpanElement>('sound').hidden = false;
    // The microphone likewise (the server refuses it when the group does not allow_microphone).
    const micUrl = new URL(`${base}kasm/microphone`, location.href);
    micUrl.protocol = scheme;
    micUrl.search = audioUrl.search;
    mic = new MicrophoneControl(
      el<HTMLButtonElement>('mic-toggle'),
      el<HTMLSpanElement>('mic-level'),
      el<HTMLSpanElement>('mic-level-bar'),
      el<HTMLDivElement>('mic-error'),
      { url: () => micUrl.toString(), onDrop: () => void recheck() },
    );
    el<HTMLSpanElement>('mic').hidden = false;
  }
  el<HTMLButtonElement>('clip-send').addEventListener('click', () => {
    if (!viewOnly) rfb?.clipboardPasteFrom(clipText.value);
  });
  el<HTMLButtonElement>('fullscreen').addEventListener('click', () => {
    void document.documentElement.requestFullscreen?.().catch(() => undefined);
  });
  // Paste into the desktop what is pasted onto the page (keyboard users, no panel needed), unless
  // it was pasted into the chat.
  window.addEventListener('paste', (e) => {
    if ((e.target as Element | null)?.closest?.('.chat')) return;
    const text = e.clipboardData?.getData('text/plain');
    if (text && rfb && !viewOnly) rfb.clipboardPasteFrom(text);
  });
  window.addEventListener('online', () => {
    if (!rfb && !ended) {
      attempt = 0;
      connect();
    }
  });
  window.setInterval(() => {
    if (!ended && rfb && document.visibilityState === 'visible') void recheck();
  }, ACCESS_CHECK_MS);
  connect();
}

start();
