// The dashboard: the workspaces the user may launch (searchable, filterable by category) and the
// sessions they already have (resume, delete). Launching shows progress until the desktop is ready;
// a link workspace opens its address in a new tab instead, and a server that wants the user's own
// credentials asks for them first.

import * as api from '../api';
import { can, type PageContext } from '../app';
import { field, h, messageBox, replaceChildren } from '../dom';
import { formatRemaining } from '../format';
import { isOpenableLink, launch, type LaunchProgress } from '../launch';

const SESSIONS_REFRESH_MS = 10_000;

export async function dashboardPage(ctx: PageContext): Promise<void> {
  const { main } = ctx;
  const message = messageBox();
  const search = h('input', { type: 'search', name: 'search', placeholder: 'Search workspaces', autocomplete: 'off' });
  const category = h('select', { name: 'category' }, h('option', { value: '' }, 'All categories'));
  const grid = h('ul', { class: 'workspace-grid', 'aria-label': 'Workspaces' });
  const sessionsList = h('ul', { class: 'session-list', 'aria-label': 'Your sessions' });
  const launchPanel = h('section', { class: 'launch-panel', hidden: true, 'aria-label': 'Launch progress' });

  replaceChildren(
    main,
    h('h1', {}, 'Workspaces'),
    message.el,
    launchPanel,
    h('section', { class: 'sessions', 'aria-labelledby': 'sessions-title' },
      h('h2', { id: 'sessions-title' }, 'Your sessions'),
      sessionsList),
    h('section', { 'aria-labelledby': 'workspaces-title' },
      h('h2', { id: 'workspaces-title', class: 'visually-hidden' }, 'Available workspaces'),
      h('div', { class: 'filters', role: 'search' }, field('Search', search), field('Category', category)),
      grid),
  );

  let workspaces: api.Workspace[] = [];
  const byId = new Map<string, api.Workspace>();
  // Fixed servers, for administrators who may list them: their badges then tell a terminal from a
  // desktop. Others see "Desktop server" for both.
  let servers: api.Server[] = [];
  let launching: AbortController | null = null;
  ctx.onLeave(() => launching?.abort());

  // ---- workspaces ----
  function renderWorkspaces(): void {
    const q = search.value.trim().toLowerCase();
    const cat = category.value;
    const visible = workspaces.filter((w) => {
      if (!w.enabled) return false;
      if (cat && !(w.categories ?? []).includes(cat)) return false;
      if (!q) return true;
      return [w.friendly_name, w.description ?? '', ...(w.categories ?? [])].some((s) => s.toLowerCase().includes(q));
    });
    replaceChildren(grid, visible.map(workspaceCard));
    if (visible.length === 0) {
      grid.appendChild(h('li', { class: 'empty' }, workspaces.length ? 'No workspace matches your search.' : 'No workspaces are available to you yet.'));
    }
  }

  function workspaceCard(w: api.Workspace): HTMLElement {
    const titleId = `ws-${w.id}-title`;
    return h(
      'li',
      { class: 'workspace-card', 'aria-labelledby': titleId, 'data-workspace-id': w.id },
      w.thumbnail_url
        ? h('img', { class: 'thumb', src: w.thumbnail_url, alt: '', loading: 'lazy', onerror: (e: Event) => ((e.target as HTMLElement).hidden = true) })
        : h('div', { class: 'thumb placeholder', 'aria-hidden': 'true' }, w.friendly_name.slice(0, 1).toUpperCase()),
      h('h3', { id: titleId }, w.friendly_name),
      typeBadge(w),
      w.description ? h('p', { class: 'description' }, w.description) : null,
      (w.categories ?? []).length
        ? h('ul', { class: 'tags', 'aria-label': 'Categories' }, (w.categories ?? []).map((c) => h('li', {}, c)))
        : null,
      h('button', { type: 'button', class: 'launch', 'aria-label': `Launch ${w.friendly_name}`, onclick: () => void startLaunch(w) }, 'Launch'),
    );
  }

  function typeBadge(w: api.Workspace): HTMLElement | null {
    let text: string;
    if (w.type === 'link') {
      text = 'Link';
    } else if (w.type === 'server' || w.type === 'server_pool') {
      const behind = w.type === 'server'
        ? servers.filter((s) => s.id === w.server_id)
        : servers.filter((s) => s.pool_id && s.pool_id === w.server_pool_id);
      text = behind.length > 0 && behind.every((s) => s.connection_type === 'ssh') ? 'Terminal' : 'Desktop server';
    } else {
      return null;
    }
    return h('span', { class: `type-badge type-${w.type}`, 'data-testid': 'workspace-type' }, text);
  }

  // ---- launching ----
  function endLaunch(): void {
    launching = null;
    grid.querySelectorAll<HTMLButtonElement>('button.launch').forEach((b) => (b.disabled = false));
  }

  function launchButtonOf(w: api.Workspace): HTMLButtonElement | null {
    return grid.querySelector<HTMLButtonElement>(`li[data-workspace-id="${CSS.escape(w.id)}"] button.launch`);
  }

  // A link workspace: its address in a new tab, with nothing of this page (noopener, noreferrer).
  function openLink(w: api.Workspace, url: string): void {
    window.open(url, '_blank', 'noopener,noreferrer');
    launchPanel.hidden = false;
    replaceChildren(
      launchPanel,
      h('h2', {}, w.friendly_name),
      h('p', { role: 'status', 'data-testid': 'link-opened' }, `${w.friendly_name} opened in a new tab. `,
        h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, 'Open it again'),
        ' if your browser blocked it.'),
      h('button', { type: 'button', class: 'secondary', onclick: () => (launchPanel.hidden = true) }, 'Close'),
    );
  }

  // A server without stored credentials: the user's own, sent with this launch only.
  function askForCredentials(w: api.Workspace, reason: string): void {
    const titleId = `credentials-${w.id}-title`;
    const username = h('input', { type: 'text', name: 'connection_username', autocomplete: 'username', autocapitalize: 'off', spellcheck: 'false' });
    const password = h('input', { type: 'password', name: 'connection_password', autocomplete: 'current-password', required: true });
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const form = h('form', { class: 'credentials-form', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, `Log in to ${w.friendly_name}`),
      h('p', { role: 'status' }, reason),
      field('User name', username),
      field('Password', password),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Connect'), cancel));
    cancel.addEventListener('click', () => {
      launchPanel.hidden = true;
      replaceChildren(launchPanel);
      launchButtonOf(w)?.focus();
    });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const credentials = { username: username.value.trim(), password: password.value };
      // The password leaves the page's memory with this launch.
      password.value = '';
      void startLaunch(w, credentials);
    });
    launchPanel.hidden = false;
    replaceChildren(launchPanel, form);
    username.focus();
  }

  async function startLaunch(w: api.Workspace, credentials?: api.ConnectionCredentials): Promise<void> {
    if (launching) return;
    message.clear();
    launching = new AbortController();
    const signal = launching.signal;
    const status = h('p', { class: 'launch-message', role: 'status' }, 'Requesting a session…');
    const bar = h('progress', { max: 100, 'aria-label': 'Launch progress' });
    const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => launching?.abort() }, 'Cancel');
    launchPanel.hidden = false;
    replaceChildren(launchPanel, h('h2', {}, `Launching ${w.friendly_name}`), status, bar, cancel);
    grid.querySelectorAll<HTMLButtonElement>('button.launch').forEach((b) => (b.disabled = true));
    const show = (p: LaunchProgress) => {
      status.textContent = p.message;
      if (p.progress === null) bar.removeAttribute('value');
      else bar.value = p.progress;
    };
    const result = await launch(w.id, show, signal, credentials);
    endLaunch();
    if (result.ok && result.link !== undefined) {
      if (isOpenableLink(result.link)) openLink(w, result.link);
      else message.error('This link cannot be opened: only http and https addresses are.');
      return;
    }
    if (result.ok) {
      ctx.navigate(`/session/${encodeURIComponent(result.session.id)}`);
      return;
    }
    if (result.credentialsRequired) {
      askForCredentials(w, result.reason);
      return;
    }
    launchPanel.hidden = true;
    if (!result.cancelled) message.error(result.reason);
    void refreshSessions();
  }

  // ---- sessions ----
  async function refreshSessions(): Promise<void> {
    try {
      const sessions = (await api.listSessions()).filter((s) => s.state !== 'destroyed');
      renderSessions(sessions);
    } catch (e) {
      replaceChildren(sessionsList, h('li', { class: 'empty' }, `Your sessions could not be loaded: ${(e as Error).message}`));
    }
  }

  function renderSessions(sessions: api.Session[]): void {
    replaceChildren(sessionsList);
    if (sessions.length === 0) {
      sessionsList.appendChild(h('li', { class: 'empty' }, 'You have no running sessions.'));
      return;
    }
    for (const s of sessions) {
      const ws = byId.get(s.workspace_id);
      const name = ws?.friendly_name ?? s.workspace_id;
      const remaining = s.expires_at ? `expires in ${formatRemaining(s.expires_at - Date.now())}` : '';
      const del = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete session ${name}` }, 'Delete');
      del.addEventListener('click', async () => {
        if (!confirm(`Delete the ${name} session? Unsaved work in it is lost.`)) return;
        del.disabled = true;
        try {
          await api.deleteSession(s.id);
          message.info(`Session ${name} deleted.`);
        } catch (e) {
          message.error(`The session could not be deleted: ${(e as Error).message}`);
        }
        void refreshSessions();
      });
      const canResume = s.state === 'running' || s.state === 'paused';
      sessionsList.appendChild(
        h('li', { class: 'session-item', 'data-session-id': s.id, 'data-state': s.state, 'aria-label': `Session ${name}` },
          h('div', {},
            h('strong', {}, name),
            h('span', { class: `state state-${s.state}` }, s.state),
            s.operational_message && s.state !== 'running' ? h('small', {}, s.operational_message) : null,
            remaining ? h('small', {}, remaining) : null),
          h('div', { class: 'actions' },
            canResume
              ? h('button', { type: 'button', 'aria-label': `Resume session ${name}`, onclick: () => void resume(s) }, 'Resume')
              : null,
            del)),
      );
    }
  }

  async function resume(s: api.Session): Promise<void> {
    if (s.state === 'paused') {
      try {
        await api.resumeSession(s.id);
      } catch (e) {
        message.error(`The session could not be resumed: ${(e as Error).message}`);
        return;
      }
    }
    ctx.navigate(`/session/${encodeURIComponent(s.id)}`);
  }

  // ---- load ----
  search.addEventListener('input', renderWorkspaces);
  category.addEventListener('change', renderWorkspaces);
  replaceChildren(grid, h('li', { class: 'empty' }, 'Loading workspaces…'));
  const sessionsLoaded = refreshSessions();
  try {
    const serversLoaded = can(ctx.auth, 'agents:manage') ? api.listServers().catch(() => [] as api.Server[]) : Promise.resolve([]);
    [workspaces, servers] = await Promise.all([api.listWorkspaces(), serversLoaded]);
    workspaces.sort((a, b) => a.friendly_name.localeCompare(b.friendly_name));
    workspaces.forEach((w) => byId.set(w.id, w));
    const categories = [...new Set(workspaces.flatMap((w) => w.categories ?? []))].sort();
    for (const c of categories) category.appendChild(h('option', { value: c }, c));
    renderWorkspaces();
  } catch (e) {
    replaceChildren(grid);
    message.error(`Workspaces could not be loaded: ${(e as Error).message}`);
  }
  await sessionsLoaded;
  void refreshSessions(); // Again, now that workspace names are known.
  const timer = window.setInterval(() => {
    if (document.visibilityState === 'visible' && !launching) void refreshSessions();
  }, SESSIONS_REFRESH_MS);
  ctx.onLeave(() => window.clearInterval(timer));
}
