// The chat of a shared session, over the WebSocket the session proxy serves beside the viewer page
// (`<viewer page directory>kasm/chat`). The viewer page (viewer.ts) and the owner's session page
// both show it. What people write is untrusted: it only ever reaches the page as text nodes, never
// as markup.
//
// The socket's protocol (include/kasm/share/chat.hpp): "ping" -> "pong"; {"members": true} ->
// {"members": [...]}; {"message": text} is broadcast to everyone as {"body": {...}}; on connecting
// {"history": [...]}; {"status": "unavailable" | "available"} while the share database is lost and
// when it is back (a fresh history follows); {"error": text} for a refused message. The socket
// closes when the viewer's access ends or the session does.

import { h, replaceChildren } from './dom';

export interface ChatMessage {
  id: string;
  kind: 'message' | 'system' | string;
  user_id: string;
  username: string;
  message: string;
  timestamp: number;
}

export interface ChatMember {
  user_id: string;
  username: string;
  access: 'owner' | 'rw' | 'r' | string;
}

export type ChatState = 'connecting' | 'connected' | 'unavailable' | 'disconnected' | 'closed';

export interface ChatPanelOptions {
  // The socket's URL, asked again at every (re)connection; null when there is no chat to join.
  url: () => string | null;
  // The socket dropped while the panel runs. The host may find out whether the viewer's access
  // ended and call stop(); otherwise the panel reconnects with a growing delay.
  onDrop?: () => void;
  // Messages that arrived while the panel was collapsed (0 once it is opened).
  onUnread?: (count: number) => void;
}

const RECONNECT_DELAYS_MS = [1_000, 2_000, 4_000, 8_000, 15_000, 30_000];
// Keeps idle proxies and load balancers from closing a quiet chat.
const PING_INTERVAL_MS = 25_000;
// The log keeps this many messages; older ones leave the page.
const MAX_MESSAGES = 500;

const ACCESS_LABELS: Record<string, string> = { owner: 'owner', rw: 'has control', r: 'watching' };

export class ChatPanel {
  readonly root: HTMLElement;
  private readonly statusEl: HTMLElement;
  private readonly errorEl: HTMLElement;
  private readonly membersEl: HTMLUListElement;
  private readonly membersSummary: HTMLElement;
  private readonly log: HTMLOListElement;
  private readonly input: HTMLInputElement;
  private readonly sendBtn: HTMLButtonElement;
  private ws: WebSocket | null = null;
  private state: ChatState = 'closed';
  private stopped = true;
  private attempt = 0;
  private reconnectTimer = 0;
  private pingTimer = 0;
  private errorTimer = 0;
  private open = false;
  private unread = 0;
  private readonly seen = new Set<string>();

  constructor(private readonly options: ChatPanelOptions) {
    const inputId = `chat-input-${Math.random().toString(36).slice(2, 8)}`;
    this.statusEl = h('p', { class: 'chat-status', role: 'status' });
    this.errorEl = h('p', { class: 'chat-error', role: 'alert', hidden: true });
    this.membersSummary = h('summary', {}, 'People here');
    this.membersEl = h('ul', { class: 'chat-members', 'aria-label': 'People in this session' });
    const members = h('details', { class: 'chat-people' }, this.membersSummary, this.membersEl);
    members.addEventListener('toggle', () => {
      if (members.open) this.requestMembers();
    });
    this.log = h('ol', { class: 'chat-log', 'aria-label': 'Chat history', 'aria-live': 'polite' });
    this.input = h('input', { id: inputId, type: 'text', maxlength: 2000, autocomplete: 'off', placeholder: 'Write a message' });
    this.sendBtn = h('button', { type: 'submit' }, 'Send');
    const form = h('form', { class: 'chat-form' },
      h('label', { for: inputId, class: 'visually-hidden' }, 'Chat message'), this.input, this.sendBtn);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.send();
    });
    // Keys typed here are for the chat, not for the desktop under it.
    for (const ev of ['keydown', 'keyup', 'keypress'] as const) this.input.addEventListener(ev, (e) => e.stopPropagation());
    this.root = h('section', { class: 'chat', 'aria-label': 'Chat', 'data-chat-state': 'closed' },
      this.statusEl, this.errorEl, members, this.log, form);
    this.setState('closed', 'Chat is off.');
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  }

  // Leaves the chat for good (the page is leaving, or the viewer's access ended).
  stop(reason = 'Chat closed.'): void {
    this.stopped = true;
    window.clearTimeout(this.reconnectTimer);
    window.clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    // Who was here is no longer known; the messages stay readable.
    this.membersSummary.textContent = 'People here';
    replaceChildren(this.membersEl);
    this.setState('closed', reason);
  }

  // The host shows or collapses the panel: opening clears the unread count and asks who is here.
  setOpen(open: boolean): void {
    this.open = open;
    if (open) {
      this.unread = 0;
      this.options.onUnread?.(0);
      this.requestMembers();
      this.log.lastElementChild?.scrollIntoView({ block: 'nearest' });
    }
  }

  get connectionState(): ChatState {
    return this.state;
  }

  private connect(): void {
    if (this.stopped) return;
    const url = this.options.url();
    if (!url) {
      this.stop('There is no chat for this session.');
      return;
    }
    this.setState('connecting', this.attempt === 0 ? 'Connecting to the chat…' : 'Reconnecting to the chat…');
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      if (this.ws !== ws) return;
      this.setState('connected', '');
      window.clearInterval(this.pingTimer);
      this.pingTimer = window.setInterval(() => this.sendRaw('ping'), PING_INTERVAL_MS);
      if (this.open) this.requestMembers();
    });
    ws.addEventListener('message', (e) => {
      if (this.ws === ws && typeof e.data === 'string') this.receive(e.data);
    });
    ws.addEventListener('close', () => {
      if (this.ws !== ws) return;
      this.ws = null;
      window.clearInterval(this.pingTimer);
      if (this.stopped) return;
      this.options.onDrop?.();
      if (!this.stopped) this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    const delay = RECONNECT_DELAYS_MS[Math.min(this.attempt, RECONNECT_DELAYS_MS.length - 1)];
    this.attempt++;
    this.setState('disconnected', `The chat connection was lost. Reconnecting in ${Math.round(delay / 1000)} s…`);
    window.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = window.setTimeout(() => this.connect(), delay);
  }

  private receive(text: string): void {
    if (text === 'pong') return;
    let msg: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(text);
      if (!parsed || typeof parsed !== 'object') return;
      msg = parsed as Record<string, unknown>;
    } catch {
      return;
    }
    if (Array.isArray(msg.history)) {
      // The chat is healthy: a later drop starts its backoff from the beginning again.
      this.attempt = 0;
      if (this.state !== 'connected') this.setState('connected', '');
      this.seen.clear();
      replaceChildren(this.log);
      for (const m of msg.history) this.addMessage(m, false);
    } else if (msg.body && typeof msg.body === 'object') {
      this.addMessage(msg.body, true);
    } else if (Array.isArray(msg.members)) {
      this.showMembers(msg.members as ChatMember[]);
    } else if (msg.status === 'unavailable') {
      const reason = typeof msg.reason === 'string' && msg.reason ? `: ${msg.reason}` : '.';
      this.setState('unavailable', `Chat unavailable${reason} Your view of the desktop is not affected.`);
    } else if (msg.status === 'available') {
      this.setState('connected', '');
    } else if (typeof msg.error === 'string') {
      this.showError(msg.error);
    }
  }

  private addMessage(raw: unknown, fresh: boolean): void {
    if (!raw || typeof raw !== 'object') return;
    const m = raw as Partial<ChatMessage>;
    const id = String(m.id ?? '');
    if (id && this.seen.has(id)) return;
    if (id) this.seen.add(id);
    const system = m.kind === 'system';
    const time = typeof m.timestamp === 'number' ? new Date(m.timestamp) : null;
    const item = h('li', { class: system ? 'chat-system' : 'chat-message', 'data-kind': system ? 'system' : 'message', 'data-user-id': m.user_id ?? '' });
    if (time) item.appendChild(h('time', { datetime: time.toISOString() }, time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })));
    if (!system) item.appendChild(h('span', { class: 'chat-author' }, String(m.username ?? m.user_id ?? 'someone')));
    item.appendChild(h('span', { class: 'chat-text' }, String(m.message ?? '')));
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 24;
    this.log.appendChild(item);
    while (this.log.childElementCount > MAX_MESSAGES) this.log.firstElementChild?.remove();
    if (atBottom || !fresh) this.log.scrollTop = this.log.scrollHeight;
    if (fresh) {
      // Someone came or went: the member list is out of date.
      if (system && this.open) this.requestMembers();
      if (!this.open && !system) {
        this.unread++;
        this.options.onUnread?.(this.unread);
      }
    }
  }

  private showMembers(members: ChatMember[]): void {
    this.membersSummary.textContent = `People here (${members.length})`;
    replaceChildren(this.membersEl, members.map((p) =>
      h('li', { 'data-access': String(p.access) },
        h('span', { class: 'chat-author' }, String(p.username || p.user_id)),
        ' ',
        h('span', { class: 'chat-access' }, `(${ACCESS_LABELS[p.access] ?? String(p.access)})`))));
  }

  private requestMembers(): void {
    this.sendRaw(JSON.stringify({ members: true }));
  }

  private send(): void {
    const text = this.input.value.trim();
    if (!text) return;
    if (this.state === 'unavailable') {
      this.showError('The chat is unavailable right now; try again in a moment.');
      return;
    }
    if (!this.sendRaw(JSON.stringify({ message: text }))) {
      this.showError('Not connected to the chat; your message was not sent.');
      return;
    }
    this.input.value = '';
  }

  private sendRaw(text: string): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(text);
    return true;
  }

  private showError(text: string): void {
    this.errorEl.textContent = text;
    this.errorEl.hidden = false;
    window.clearTimeout(this.errorTimer);
    this.errorTimer = window.setTimeout(() => {
      this.errorEl.hidden = true;
    }, 6_000);
  }

  private setState(state: ChatState, text: string): void {
    this.state = state;
    this.root.dataset.chatState = state;
    this.statusEl.textContent = text;
    this.statusEl.hidden = text === '';
    const usable = state === 'connected';
    this.input.disabled = !usable;
    this.sendBtn.disabled = !usable;
  }
}
