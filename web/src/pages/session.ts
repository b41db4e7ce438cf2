// The session view: the remote desktop (noVNC, scaled to the window) or an HTTP workspace's page,
// and a side panel with the time left, clipboard, pause/resume/delete, and sharing with its chat
// (session-share.ts). Keepalives are sent while
// the tab is visible and in use. Whatever ends the session (deleted elsewhere, expired, the server
// restarting) is shown with a way back to the dashboard.

import RFB from '@novnc/novnc';
import * as api from '../api';
import type { PageContext } from '../app';
import { h, messageBox, replaceChildren } from '../dom';
import { formatRemaining } from '../format';
import { describe, isGone, waitUntilRunning } from '../launch';
import { shareSection } from './session-share';

const KEEPALIVE_INTERVAL_MS = 60_000;
// Input within this window counts as "in use" for keepalives.
const ACTIVITY_WINDOW_MS = 5 * 60_000;
const STATUS_POLL_MS = 15_000;
const RECONNECT_DELAYS_MS = [1_000, 3_000, 8_000];
const CONNECT_TIMEOUT_MS = 30_000;

// What an HTTP workspace's page may do in its frame. Never allow-same-origin while the page comes
// from this origin: together with allow-scripts it would let the page reach into this one, read
// the login's CSRF token and act as the viewer. A page from a separate session origin (the
// installation's session_origin) holds none of this origin's cookies, so it may keep its own.
// The proxy sends a sandbox policy with every page as well, which also covers a page opened
// outside this frame.
export function sessionFrameSandbox(url: string): string {
  const tokens = [
    'allow-scripts',
    'allow-forms',
    'allow-popups',
    'allow-popups-to-escape-sandbox',
    'allow-modals',
    'allow-downloads',
    'allow-pointer-lock',
  ];
  if (new URL(url, window.location.href).origin !== window.location.origin) tokens.push('allow-same-origin');
  return tokens.join(' ');
}

type Connection = 'connecting' | 'connected' | 'disconnected' | 'paused' | 'ended';

export async function sessionPage(ctx: PageContext): Promise<void> {
  const id = ctx.params.id;
  const { main } = ctx;
  main.classList.add('session-page');

  const screen = h('div', { id: 'screen', class: 'screen', role: 'application', 'aria-label': 'Remote desktop' });
  const overlay = h('div', { class: 'overlay', role: 'status', 'aria-live': 'polite' });
  const stage = h('div', { class: 'stage' }, screen, overlay);
  const title = h('h1', { class: 'session-title' }, 'Session');
  const stateEl = h('span', { class: 'state', 'data-testid': 'session-state' }, '…');
  const remainingEl = h('span', { class: 'remaining', 'aria-label': 'Time remaining' }, '–');
  const message = messageBox();
  const pauseBtn = h('button', { type: 'button', class: 'secondary' }, 'Pause');
  const resumeBtn = h('button', { type: 'button', hidden: true }, 'Resume');
  const deleteBtn = h('button', { type: 'button', class: 'danger' }, 'Delete session');
  const remoteClip = h('textarea', { id: 'remote-clipboard', readonly: true, rows: 4 });
  const localClip = h('textarea', { id: 'send-clipboard', rows: 4, placeholder: 'Text to send to the remote clipboard' });
  const sendClip = h('button', { type: 'button', class: 'secondary' }, 'Send to remote clipboard');
  // The chat uses the viewer page's token, which comes with every fresh read of the session.
  const share = shareSection(id, () => (session ? api.chatWebSocketUrl(session) : null));
  const togglePanel = h('button', { type: 'button', class: 'panel-toggle', 'aria-expanded': 'true', 'aria-controls': 'side-panel' }, 'Hide panel');

  const panel = h(
    'aside',
    { id: 'side-panel', class: 'side-panel', 'aria-label': 'Session controls' },
    h('a', { href: '/', 'data-link': '', class: 'back' }, '← Workspaces'),
    title,
    h('dl', { class: 'facts' }, h('dt', {}, 'State'), h('dd', {}, stateEl), h('dt', {}, 'Time left'), h('dd', {}, remainingEl)),
    message.el,
    h('div', { class: 'actions' }, pauseBtn, resumeBtn, deleteBtn),
    share.root,
    h('section', { class: 'clipboard', 'aria-labelledby': 'clipboard-title' },
      h('h2', { id: 'clipboard-title' }, 'Clipboard'),
      h('label', { for: 'remote-clipboard' }, 'Remote clipboard'),
      remoteClip,
      h('label', { for: 'send-clipboard' }, 'Send text'),
      localClip,
      sendClip),
  );
  const layout = h('div', { class: 'session-layout' }, stage, panel);
  replaceChildren(main, togglePanel, layout);

  togglePanel.addEventListener('click', () => {
    const hidden = !panel.hidden;
    panel.hidden = hidden;
    togglePanel.setAttribute('aria-expanded', String(!hidden));
    togglePanel.textContent = hidden ? 'Show panel' : 'Hide panel';
  });

  // ---- state ----
  let session: api.Session | null = null;
  let rfb: RFB | null = null;
  let iframe: HTMLIFrameElement | null = null;
  let connection: Connection = 'connecting';
  let reconnectAttempt = 0;
  let left = false;
  const timers: number[] = [];
  const abort = new AbortController();
  let lastActivity = Date.now();
  let lastKeepalive = 0;

  ctx.onLeave(() => {
    left = true;
    abort.abort();
    timers.forEach((t) => window.clearInterval(t));
    disconnect();
    share.stop();
    document.removeEventListener('visibilitychange', onVisibility);
    for (const ev of ACTIVITY_EVENTS) window.removeEventListener(ev, onActivity, true);
  });

  function setConnection(c: Connection, text?: string): void {
    connection = c;
    screen.dataset.connection = c;
    main.dataset.connection = c;
    overlay.hidden = c === 'connected';
    if (text !== undefined) replaceChildren(overlay, h('p', {}, text));
  }

  function showEnded(text: string): void {
    disconnect();
    share.stop();
    setConnection('ended');
    replaceChildren(
      overlay,
      h('div', { class: 'ended', role: 'alert' },
        h('p', {}, text),
        h('a', { href: '/', 'data-link': '', class: 'button' }, 'Back to workspaces')),
    );
    pauseBtn.disabled = resumeBtn.disabled = deleteBtn.disabled = sendClip.disabled = true;
  }

  function updateFacts(): void {
    if (!session) return;
    stateEl.textContent = session.state;
    stateEl.className = `state state-${session.state}`;
    pauseBtn.hidden = session.state !== 'running';
    resumeBtn.hidden = session.state !== 'paused';
    if (connection !== 'ended') share.update(session);
    tickRemaining();
  }

  function tickRemaining(): void {
    const expires = session?.expires_at;
    if (!expires) {
      remainingEl.textContent = '–';
      return;
    }
    const ms = expires - Date.now();
    remainingEl.textContent = formatRemaining(ms);
    remainingEl.classList.toggle('warning', ms < 5 * 60_000);
  }

  // ---- connecting ----
  function disconnect(): void {
    if (rfb) {
      const old = rfb;
      rfb = null;
      try {
        old.disconnect();
      } catch {
        // Already closed.
      }
    }
    if (iframe) {
      iframe.remove();
      iframe = null;
    }
  }

  function connect(): void {
    if (!session || left) return;
    disconnect();
    replaceChildren(screen);
    // An RDP server is shown as a VNC desktop: the gateway speaks RFB to the proxy.
    const protocol = session.protocol ?? 'vnc';
    const isVnc = (protocol === 'vnc' || protocol === 'rdp') && session.ws_url;
    if (!isVnc) {
      if (!session.url) {
        showEnded('This session has no address to open. Ask an administrator to check its workspace.');
        return;
      }
      iframe = h('iframe', {
        src: session.url,
        title: title.textContent ?? 'Session',
        class: 'app-frame',
        // The SSH terminal is this application's own page (served by the proxy), showing the server's
        // output as text: sandboxed to an opaque origin it could not load its own scripts. Anything
        // else a session serves is the session's content and stays sandboxed.
        sandbox: protocol === 'ssh' ? undefined : sessionFrameSandbox(session.url),
      });
      screen.appendChild(iframe);
      setConnection('connected');
      return;
    }
    const url = api.desktopWebSocketUrl(session);
    if (!url) return;
    setConnection('connecting', 'Connecting to the desktop…');
    // No credentials: the proxy answers the desktop's VNC authentication itself.
    const client = new RFB(screen, url, { shared: true });
    rfb = client;
    client.scaleViewport = true;
    client.resizeSession = true;
    client.background = '#1f2937';
    let connected = false;
    const connectTimer = window.setTimeout(() => {
      if (!connected && rfb === client) {
        client.disconnect();
      }
    }, CONNECT_TIMEOUT_MS);
    client.addEventListener('connect', () => {
      connected = true;
      window.clearTimeout(connectTimer);
      reconnectAttempt = 0;
      setConnection('connected');
      message.clear();
      client.focus();
    });
    client.addEventListener('disconnect', (e: Event) => {
      window.clearTimeout(connectTimer);
      if (rfb !== client) return; // We closed it on purpose.
      rfb = null;
      const clean = (e as CustomEvent<{ clean: boolean }>).detail?.clean;
      void afterDisconnect(connected, clean);
    });
    client.addEventListener('securityfailure', (e: Event) => {
      const reason = (e as CustomEvent<{ reason?: string }>).detail?.reason;
      message.error(`The desktop refused the connection${reason ? `: ${reason}` : '.'}`);
    });
    client.addEventListener('credentialsrequired', () => {
      message.error('The desktop asks for credentials, which this page cannot supply. Ask an administrator to check the workspace.');
    });
    client.addEventListener('clipboard', (e: Event) => {
      remoteClip.value = (e as CustomEvent<{ text: string }>).detail.text;
    });
    client.addEventListener('desktopname', (e: Event) => {
      const name = (e as CustomEvent<{ name: string }>).detail.name;
      if (name) screen.setAttribute('aria-label', `Remote desktop: ${name}`);
    });
  }

  // Works out why the connection closed and what to do: show the end, or reconnect (bounded).
  let deleting = false;
  async function afterDisconnect(wasConnected: boolean, _clean: boolean | undefined): Promise<void> {
    // Our own delete closes the desktop too; its handler says what happened.
    if (left || deleting) return;
    setConnection('disconnected', 'The connection to the desktop was lost. Checking the session…');
    let fresh: api.Session | null = null;
    try {
      fresh = await api.getSession(id);
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 404) {
        showEnded('This session was deleted (here or elsewhere). Its desktop is gone.');
        return;
      }
      if (e instanceof api.ApiError && (e.unreachable || e.status >= 500)) {
        scheduleReconnect('The server cannot be reached; it may be restarting.');
        return;
      }
      showEnded(`The session could not be checked: ${(e as Error).message}`);
      return;
    }
    session = fresh;
    updateFacts();
    if (fresh.state === 'paused') {
      showPaused();
      return;
    }
    if (isGone(fresh.state) || fresh.state === 'stopping') {
      showEnded(
        fresh.state_reason ? `This session has ended: ${fresh.state_reason}` : `This session has ended (it is ${fresh.state}).`,
      );
      return;
    }
    scheduleReconnect(wasConnected ? 'The connection to the desktop was lost.' : 'The desktop could not be reached.');
  }

  function scheduleReconnect(why: string): void {
    if (reconnectAttempt >= RECONNECT_DELAYS_MS.length) {
      setConnection('disconnected');
      replaceChildren(
        overlay,
        h('div', { class: 'ended', role: 'alert' },
          h('p', {}, `${why} Reconnecting did not help.`),
          h('button', { type: 'button', onclick: () => { reconnectAttempt = 0; void refreshAndConnect(); } }, 'Reconnect'),
          ' ',
          h('a', { href: '/', 'data-link': '', class: 'button secondary' }, 'Back to workspaces')),
      );
      return;
    }
    const delay = RECONNECT_DELAYS_MS[reconnectAttempt++];
    setConnection('disconnected', `${why} Reconnecting in ${Math.round(delay / 1000)} s…`);
    window.setTimeout(() => {
      if (!left) void refreshAndConnect();
    }, delay);
  }

  // Fetches the session (for a fresh token and state) and connects or explains.
  async function refreshAndConnect(): Promise<void> {
    try {
      session = await api.getSession(id);
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 404) {
        showEnded('This session no longer exists.');
        return;
      }
      scheduleReconnect(`The session could not be loaded: ${(e as Error).message}.`);
      return;
    }
    updateFacts();
    if (session.state === 'running') connect();
    else if (session.state === 'paused') showPaused();
    else if (isGone(session.state)) showEnded(session.state_reason ? `This session has ended: ${session.state_reason}` : `This session has ended (it is ${session.state}).`);
    else await waitThenConnect();
  }

  async function waitThenConnect(): Promise<void> {
    if (!session) return;
    setConnection('connecting', describe(session).message);
    const result = await waitUntilRunning(session, (p) => setConnection('connecting', p.message + (p.progress !== null ? ` (${p.progress}%)` : '')), abort.signal);
    if (left) return;
    if (result.ok) {
      session = result.session;
      updateFacts();
      connect();
    } else {
      if (result.session) session = result.session;
      updateFacts();
      showEnded(result.reason);
    }
  }

  function showPaused(): void {
    disconnect();
    setConnection('paused');
    replaceChildren(
      overlay,
      h('div', { class: 'ended' }, h('p', {}, 'This session is paused.'), h('button', { type: 'button', onclick: () => resumeBtn.click() }, 'Resume')),
    );
  }

  // ---- buttons ----
  pauseBtn.addEventListener('click', async () => {
    pauseBtn.disabled = true;
    try {
      const s = await api.pauseSession(id);
      session = s && typeof s === 'object' && 'state' in s ? s : { ...(session as api.Session), state: 'paused' };
      updateFacts();
      showPaused();
      message.info('Session paused.');
    } catch (e) {
      message.error(`The session could not be paused: ${(e as Error).message}`);
    } finally {
      pauseBtn.disabled = false;
    }
  });
  resumeBtn.addEventListener('click', async () => {
    resumeBtn.disabled = true;
    try {
      await api.resumeSession(id);
      message.clear();
      reconnectAttempt = 0;
      session = await api.getSession(id);
      updateFacts();
      await waitThenConnect();
    } catch (e) {
      message.error(`The session could not be resumed: ${(e as Error).message}`);
    } finally {
      resumeBtn.disabled = false;
    }
  });
  deleteBtn.addEventListener('click', async () => {
    if (!confirm('Delete this session? Unsaved work in it is lost.')) return;
    deleteBtn.disabled = true;
    deleting = true;
    try {
      await api.deleteSession(id);
      showEnded('Session deleted.');
      stateEl.textContent = 'deleted';
    } catch (e) {
      deleteBtn.disabled = false;
      deleting = false;
      message.error(`The session could not be deleted: ${(e as Error).message}`);
    }
  });
  sendClip.addEventListener('click', () => {
    if (!rfb) {
      message.error('Not connected to the desktop.');
      return;
    }
    rfb.clipboardPasteFrom(localClip.value);
    message.info('Text sent to the remote clipboard.');
  });

  // ---- keepalive and status ----
  const ACTIVITY_EVENTS = ['keydown', 'pointerdown', 'pointermove', 'wheel', 'touchstart'];
  function onActivity(): void {
    lastActivity = Date.now();
  }
  for (const ev of ACTIVITY_EVENTS) window.addEventListener(ev, onActivity, { capture: true, passive: true });

  async function maybeKeepalive(): Promise<void> {
    if (left || !session || session.state !== 'running') return;
    if (document.visibilityState !== 'visible') return;
    if (Date.now() - lastActivity > ACTIVITY_WINDOW_MS) return;
    if (Date.now() - lastKeepalive < KEEPALIVE_INTERVAL_MS - 1000) return;
    lastKeepalive = Date.now();
    try {
      const s = await api.keepaliveSession(id);
      if (s && typeof s === 'object' && 'expires_at' in s && session) {
        session = { ...session, expires_at: s.expires_at, hard_expires_at: s.hard_expires_at ?? session.hard_expires_at };
        tickRemaining();
      }
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 404) showEnded('This session was deleted (here or elsewhere).');
      else if (e instanceof api.ApiError && e.code === 'failed_precondition') message.error(`Keepalive refused: ${e.message}`);
    }
  }
  function onVisibility(): void {
    if (document.visibilityState === 'visible') void maybeKeepalive();
  }
  document.addEventListener('visibilitychange', onVisibility);

  async function pollStatus(): Promise<void> {
    if (left || connection === 'ended' || document.visibilityState !== 'visible') return;
    try {
      const s = await api.getSession(id);
      const before = session?.state;
      session = s;
      updateFacts();
      if (isGone(s.state)) showEnded(s.state_reason ? `This session has ended: ${s.state_reason}` : `This session has ended (it is ${s.state}).`);
      else if (s.state === 'paused' && before !== 'paused') showPaused();
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 404) showEnded('This session was deleted (here or elsewhere). Its desktop is gone.');
      // Other errors: the WebSocket's own close tells us more; keep polling.
    }
  }

  timers.push(window.setInterval(tickRemaining, 1000));
  timers.push(window.setInterval(() => void maybeKeepalive(), 10_000));
  timers.push(window.setInterval(() => void pollStatus(), STATUS_POLL_MS));

  // ---- first load ----
  setConnection('connecting', 'Loading the session…');
  try {
    session = await api.getSession(id);
  } catch (e) {
    showEnded(
      e instanceof api.ApiError && e.status === 404
        ? 'This session does not exist (it may have been deleted).'
        : `The session could not be loaded: ${(e as Error).message}`,
    );
    return;
  }
  try {
    const ws = await api.getWorkspace(session.workspace_id);
    title.textContent = ws.friendly_name;
    document.title = `${ws.friendly_name} – Kasm`;
    ctx.onLeave(() => (document.title = 'Kasm'));
  } catch {
    title.textContent = 'Session';
  }
  updateFacts();
  await refreshAndConnect();
}
