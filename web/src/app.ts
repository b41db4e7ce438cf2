// The application shell: who is logged in, client-side routing, and the header with navigation.

import * as api from './api';
import { h, replaceChildren } from './dom';

export interface PageContext {
  auth: api.AuthInfo;
  params: Record<string, string>;
  // The element the page renders into.
  main: HTMLElement;
  navigate(path: string, replace?: boolean): void;
  // Registers a function to run when the page is left (timers, sockets, listeners).
  onLeave(fn: () => void): void;
}

export type Page = (ctx: PageContext) => void | Promise<void>;

interface Route {
  pattern: RegExp;
  keys: string[];
  page: () => Promise<Page>;
  // Full-window pages (the desktop) have no header.
  bare?: boolean;
  // Permission needed (any of), checked before the page loads.
  anyOf?: string[];
}

export const ADMIN_PERMISSIONS = [
  'admin',
  'users:manage',
  'workspaces:manage',
  'agents:manage',
  'sessions:manage',
  'settings:manage',
  'licenses:manage',
];

export function can(auth: api.AuthInfo, ...permissions: string[]): boolean {
  return auth.permissions.includes('admin') || permissions.some((p) => auth.permissions.includes(p));
}

function route(path: string, page: Route['page'], extra: Partial<Route> = {}): Route {
  const keys: string[] = [];
  const pattern = new RegExp(
    '^' + path.replace(/:([a-z_]+)/g, (_m, key: string) => {
      keys.push(key);
      return '([^/]+)';
    }) + '/?$',
  );
  return { pattern, keys, page, ...extra };
}

const routes: Route[] = [
  route('/', async () => (await import('./pages/dashboard')).dashboardPage),
  route('/session/:id', async () => (await import('./pages/session')).sessionPage, { bare: true }),
  // A share link; the login page sends the visitor back here.
  route('/join/:share_id', async () => (await import('./pages/join')).joinPage),
  route('/admin', async () => (await import('./pages/admin/index')).adminHomePage, { anyOf: ADMIN_PERMISSIONS }),
  route('/admin/workspaces', async () => (await import('./pages/admin/workspaces')).workspacesAdminPage, {
    anyOf: ['workspaces:manage'],
  }),
  route('/admin/agents', async () => (await import('./pages/admin/agents')).agentsAdminPage, {
    anyOf: ['agents:manage'],
  }),
  route('/admin/servers', async () => (await import('./pages/admin/servers')).serversAdminPage, {
    anyOf: ['agents:manage'],
  }),
  route('/admin/server-pools', async () => (await import('./pages/admin/server-pools')).serverPoolsAdminPage, {
    anyOf: ['agents:manage'],
  }),
  route('/admin/autoscale', async () => (await import('./pages/admin/autoscale')).autoscaleAdminPage, {
    anyOf: ['agents:manage'],
  }),
  route('/admin/autoscale/:id', async () => (await import('./pages/admin/autoscale')).autoscaleDetailPage, {
    anyOf: ['agents:manage'],
  }),
  route('/admin/sessions', async () => (await import('./pages/admin/sessions')).sessionsAdminPage, {
    anyOf: ['sessions:manage'],
  }),
  route('/admin/users', async () => (await import('./pages/admin/users')).usersAdminPage, {
    anyOf: ['users:manage'],
  }),
  route('/admin/groups', async () => (await import('./pages/admin/groups')).groupsAdminPage, {
    anyOf: ['users:manage'],
  }),
  route('/admin/zones', async () => (await import('./pages/admin/zones')).zonesAdminPage, {
    anyOf: ['settings:manage', 'agents:manage'],
  }),
  route('/admin/staging', async () => (await import('./pages/admin/staging')).stagingAdminPage, {
    anyOf: ['settings:manage', 'workspaces:manage'],
  }),
  route('/admin/license', async () => (await import('./pages/admin/license')).licenseAdminPage, {
    anyOf: ['licenses:manage'],
  }),
];

export class App {
  private auth: api.AuthInfo | null = null;
  private leaveHandlers: (() => void)[] = [];
  private renderSeq = 0;

  constructor(private readonly root: HTMLElement) {}

  async start(): Promise<void> {
    api.setUnauthenticatedHandler(() => {
      if (!this.auth) return;
      this.auth = null;
      this.navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}&expired=1`, true);
    });
    window.addEventListener('popstate', () => void this.render());
    document.addEventListener('click', (e) => this.interceptLink(e));
    try {
      this.auth = await api.currentUser();
    } catch (e) {
      // The server is down: the login page says so and offers a retry.
      this.auth = null;
      this.startupError = e instanceof api.ApiError ? e.message : String(e);
    }
    await this.render();
  }

  startupError: string | null = null;

  setAuth(auth: api.AuthInfo | null): void {
    this.auth = auth;
  }

  navigate(path: string, replace = false): void {
    if (replace) history.replaceState(null, '', path);
    else history.pushState(null, '', path);
    void this.render();
  }

  private interceptLink(e: MouseEvent): void {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = (e.target as Element | null)?.closest?.('a[data-link]') as HTMLAnchorElement | null;
    if (!a || a.target) return;
    e.preventDefault();
    this.navigate(a.getAttribute('href') ?? '/');
  }

  private leave(): void {
    const handlers = this.leaveHandlers;
    this.leaveHandlers = [];
    for (const fn of handlers) {
      try {
        fn();
      } catch (e) {
        console.error('leaving page failed', e);
      }
    }
  }

  async render(): Promise<void> {
    const seq = ++this.renderSeq;
    this.leave();
    const path = location.pathname;

    if (path === '/login' || !this.auth) {
      const { loginPage } = await import('./pages/login');
      if (seq !== this.renderSeq) return;
      if (path !== '/login') {
        const next = path === '/' ? '' : `?next=${encodeURIComponent(path + location.search)}`;
        history.replaceState(null, '', `/login${next}`);
      }
      replaceChildren(this.root);
      loginPage(this.root, this);
      return;
    }

    const auth = this.auth;
    const match = routes
      .map((r) => ({ r, m: r.pattern.exec(path) }))
      .find((x) => x.m !== null);
    const main = h('main', { id: 'main', class: 'page' });
    if (!match || !match.m) {
      this.renderShell(auth, main);
      replaceChildren(main, h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '/', 'data-link': '' }, 'Back to your workspaces')));
      return;
    }
    const { r, m } = match;
    if (r.anyOf && !can(auth, ...r.anyOf)) {
      this.renderShell(auth, main);
      replaceChildren(main, h('h1', {}, 'Not allowed'), h('p', {}, 'Your account does not have permission to see this page.'));
      return;
    }
    const params: Record<string, string> = {};
    r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1])));
    if (r.bare) replaceChildren(this.root, main);
    else this.renderShell(auth, main);
    main.textContent = 'Loading…';
    const page = await r.page();
    if (seq !== this.renderSeq) return;
    main.textContent = '';
    await page({
      auth,
      params,
      main,
      navigate: (p, replace) => this.navigate(p, replace),
      onLeave: (fn) => this.leaveHandlers.push(fn),
    });
  }

  private renderShell(auth: api.AuthInfo, main: HTMLElement): void {
    const path = location.pathname;
    const link = (href: string, text: string) =>
      h('a', {
        href,
        'data-link': '',
        'aria-current': (href === '/' ? path === '/' : path.startsWith(href)) ? 'page' : undefined,
      }, text);
    const nav = h('nav', { 'aria-label': 'Main' }, link('/', 'Workspaces'));
    if (can(auth, ...ADMIN_PERMISSIONS)) nav.appendChild(link('/admin', 'Admin'));
    const who = [auth.user.first_name, auth.user.last_name].filter(Boolean).join(' ') || auth.user.username;
    const header = h(
      'header',
      { class: 'topbar' },
      h('a', { href: '/', 'data-link': '', class: 'brand' }, h('img', { src: '/favicon.svg', alt: '' }), 'Kasm'),
      nav,
      h(
        'div',
        { class: 'who' },
        h('span', { class: 'username', title: auth.user.username }, who),
        h('button', { type: 'button', class: 'secondary', onclick: () => void this.logout() }, 'Log out'),
      ),
    );
    replaceChildren(this.root, header, main);
  }

  async logout(): Promise<void> {
    try {
      await api.logout();
    } catch {
      // Logging out of an unreachable server still forgets the login here.
    }
    this.auth = null;
    this.navigate('/login', true);
  }
}
