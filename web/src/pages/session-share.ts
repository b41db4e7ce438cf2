// The session page's sharing section, for the session's owner: share the desktop by a link, see who
// joined, give or take control, remove someone, stop sharing; and the session's chat while it is
// shared. The list is read again every few seconds while it is on screen, since people join by
// themselves. What the server refuses (the group does not allow sharing or full control, the
// licence lacks sharing) is shown as the server words it.

import * as api from '../api';
import { ChatPanel } from '../chat';
import { h, messageBox, replaceChildren } from '../dom';

const REFRESH_MS = 3_000;

const ACCESS_TEXT: Record<string, string> = { r: 'Watching', rw: 'Has control' };

export interface ShareSection {
  root: HTMLElement;
  // The session as the page last read it (its share_id and permissions).
  update(session: api.Session): void;
  // The page is leaving or the session ended: timers and the chat stop.
  stop(): void;
}

// The address people open to join: the application's /join/<share id> route.
export function joinLink(shareId: string): string {
  return `${location.origin}/join/${encodeURIComponent(shareId)}`;
}

export function shareSection(sessionId: string, chatUrl: () => string | null): ShareSection {
  const message = messageBox();
  const body = h('div', { class: 'share-body' });
  const chatHolder = h('div', { class: 'share-chat', hidden: true }, h('h3', {}, 'Chat'));
  const root = h('section', { class: 'share', 'aria-labelledby': 'share-title', 'data-testid': 'share-panel' },
    h('h2', { id: 'share-title' }, 'Sharing'), message.el, body, chatHolder);

  let info: api.ShareInfo | null = null;
  let shown = '';
  let stopped = false;
  let busy = false;
  const chat = new ChatPanel({ url: chatUrl });
  chat.setOpen(true);
  chatHolder.appendChild(chat.root);

  const isShared = (i: api.ShareInfo | null) => Boolean(i && (i.share_id || i.permissions.length > 0));

  function render(next: api.ShareInfo): void {
    info = next;
    // Re-render only what changed, so a poll does not take the focus from a button.
    const key = JSON.stringify([next.share_id, next.permissions.map((p) => [p.user_id, p.username, p.access])]);
    if (key !== shown) {
      shown = key;
      replaceChildren(body, isShared(next) ? sharedView(next) : unsharedView());
    }
    const shared = isShared(next);
    chatHolder.hidden = !shared;
    if (shared && chat.connectionState === 'closed' && !stopped) chat.start();
    if (!shared && chat.connectionState !== 'closed') chat.stop('Chat is off while the session is not shared.');
  }

  function unsharedView(): Node[] {
    const share = h('button', { type: 'button' }, 'Share');
    share.addEventListener('click', () =>
      void run(share, async () => {
        render(await api.createShare(sessionId));
        message.info('Anyone with the link can join after logging in. They watch until you give them control.');
      }, 'The session could not be shared'));
    return [h('p', { class: 'hint' }, 'Let others watch this desktop, or control it with you.'), share];
  }

  function sharedView(i: api.ShareInfo): Node[] {
    const out: Node[] = [];
    if (i.share_id) {
      const link = h('input', { id: 'share-link', type: 'text', readonly: true, value: joinLink(i.share_id), 'data-testid': 'share-link' });
      const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy link');
      copy.addEventListener('click', () => void copyLink(link));
      out.push(h('label', { for: 'share-link' }, 'Join link'), h('div', { class: 'inline share-link' }, link, copy));
      if (i.expires_at) out.push(h('p', { class: 'hint' }, `The link works until ${new Date(i.expires_at).toLocaleString()}.`));
    }
    out.push(h('h3', {}, 'People'));
    if (i.permissions.length === 0) {
      out.push(h('p', { class: 'hint', 'data-testid': 'share-nobody' }, 'Nobody has joined yet.'));
    } else {
      out.push(h('ul', { class: 'share-people', 'aria-label': 'People this session is shared with' },
        i.permissions.map((p) => personRow(p))));
    }
    const stop = h('button', { type: 'button', class: 'danger' }, 'Stop sharing');
    stop.addEventListener('click', () => {
      if (!confirm('Stop sharing? Everyone who joined loses their view at once, and the link stops working.')) return;
      void run(stop, async () => {
        await api.deleteShare(sessionId);
        render(await api.getShare(sessionId));
        message.info('Sharing stopped.');
      }, 'Sharing could not be stopped');
    });
    out.push(h('div', { class: 'actions' }, stop));
    return out;
  }

  function personRow(p: api.SharePermission): HTMLElement {
    const control = p.access === 'rw';
    const toggle = h('button', { type: 'button', class: 'secondary', 'aria-label': `${control ? 'Take control from' : 'Give control to'} ${p.username}` },
      control ? 'Take control' : 'Give control');
    toggle.addEventListener('click', () =>
      void run(toggle, async () => {
        await api.setSharePermission(sessionId, p.user_id, control ? 'r' : 'rw');
        await refresh();
        message.info(control ? `${p.username} now only watches.` : `${p.username} can now use the keyboard and mouse.`);
      }, control ? `Control could not be taken from ${p.username}` : `${p.username} could not be given control`));
    const remove = h('button', { type: 'button', class: 'danger', 'aria-label': `Remove ${p.username}` }, 'Remove');
    remove.addEventListener('click', () =>
      void run(remove, async () => {
        await api.removeSharePermission(sessionId, p.user_id);
        await refresh();
        message.info(`${p.username} was removed; their view closed.`);
      }, `${p.username} could not be removed`));
    return h('li', { 'data-user-id': p.user_id, 'data-access': p.access },
      h('span', { class: 'share-name' }, p.username),
      h('span', { class: `share-access access-${p.access}` }, ACCESS_TEXT[p.access] ?? p.access),
      h('span', { class: 'share-actions' }, toggle, remove));
  }

  async function copyLink(input: HTMLInputElement): Promise<void> {
    try {
      await navigator.clipboard.writeText(input.value);
      message.info('Link copied.');
    } catch {
      // No clipboard permission (or plain HTTP): leave the link selected for Ctrl+C.
      input.focus();
      input.select();
      message.info('Press Ctrl+C to copy the selected link.');
    }
  }

  async function run(button: HTMLButtonElement, fn: () => Promise<void>, failure: string): Promise<void> {
    button.disabled = true;
    busy = true;
    message.clear();
    try {
      await fn();
    } catch (e) {
      message.error(`${failure}: ${(e as Error).message}`);
    } finally {
      busy = false;
      if (button.isConnected) button.disabled = false;
    }
  }

  async function refresh(): Promise<void> {
    try {
      render(await api.getShare(sessionId));
    } catch (e) {
      // A session that ended is the page's to explain; other failures show here until the next poll.
      if (!(e instanceof api.ApiError && e.status === 404)) message.error(`Sharing could not be read: ${(e as Error).message}`);
    }
  }

  const timer = window.setInterval(() => {
    const onScreen = root.isConnected && !root.closest('[hidden]') && document.visibilityState === 'visible';
    if (!stopped && !busy && onScreen && isShared(info)) void refresh();
  }, REFRESH_MS);

  return {
    root,
    update(session) {
      if (stopped || busy) return;
      render({
        session_id: session.id,
        share_id: session.share_id ?? null,
        expires_at: info?.expires_at ?? null,
        permissions: session.permissions ?? [],
      });
    },
    stop() {
      stopped = true;
      window.clearInterval(timer);
      chat.stop();
    },
  };
}
