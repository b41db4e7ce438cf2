// A small stand-in for kasm-server's REST API (/api/v1), for developing the web application
// without a C++ build: `npm run build && npm run mock` serves web/dist and the API on
// http://127.0.0.1:8787. Sessions start in three polls and have no desktop (no ws_url answers).
// Not used by the real browser test, which runs against kasm-server (tests/browser/run.sh).
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const port = Number(process.env.MOCK_PORT ?? 8787);
const password = process.env.KASM_ADMIN_PASSWORD ?? 'kasm-admin';
const dist = fileURLToPath(new URL('../dist/', import.meta.url));

const admin = { id: 'u-admin', username: 'admin@kasm.local', first_name: 'Ada', group_ids: ['g-admins'] };
const workspaces = [
  { id: 'w-desktop', type: 'container', enabled: true, friendly_name: 'Desktop', description: 'A Debian desktop with a terminal.', categories: ['Desktop'], thumbnail_url: '/favicon.svg', image: 'kasm/desktop:latest', resources: { millicores: 1000, memory_bytes: 2 ** 30, gpus: 0 }, port: 5901, protocol: 'vnc', path: '' },
  { id: 'w-firefox', type: 'container', enabled: true, friendly_name: 'Firefox', description: 'A web browser.', categories: ['Browser'], thumbnail_url: '', image: 'kasm/firefox:latest', resources: { millicores: 2000, memory_bytes: 2 * 2 ** 30, gpus: 0 }, port: 5901, protocol: 'vnc', path: '' },
];
const agents = [
  { id: 'a-local', hostname: 'local-agent', zone_id: 'z-default', enabled: true, draining: false, status: 'ok', reported: { millicores: 2000, memory_bytes: 24 * 2 ** 30, gpus: 0 }, reserved: { millicores: 0, memory_bytes: 0, gpus: 0 }, overrides: null, session_count: 0, images: ['kasm/desktop:latest'], labels: {} },
];
const zones = [{ id: 'z-default', name: 'default' }];
const groups = [{ id: 'g-admins', name: 'Administrators', priority: 10, permissions: ['admin'], settings: { max_sessions_per_user: 2, keepalive_expiration: 3600000 } }];
const users = [admin];
const staging = [];
const sessions = new Map();
const logins = new Map(); // token -> csrf
let failures = 0;

function send(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}
const error = (res, status, code, message, headers) => send(res, status, { error_message: message, code }, headers);
const list = (items) => ({ items, total: items.length, limit: 100, offset: 0 });

async function body(req) {
  let s = '';
  for await (const chunk of req) s += chunk;
  return s ? JSON.parse(s) : {};
}

function cookieToken(req) {
  const m = /(?:^|;\s*)kasm_session=([^;]+)/.exec(req.headers.cookie ?? '');
  return m && logins.has(m[1]) ? m[1] : null;
}

function authInfo(token) {
  return { user: admin, permissions: ['admin'], csrf_token: logins.get(token), expires_at: Date.now() + 8 * 3600e3 };
}

function advance(s) {
  // Each read moves a starting session on, so the launch progress UI has something to show.
  if (s.state === 'requested') Object.assign(s, { state: 'provisioning', progress: 30, operational_message: 'Pulling image kasm/desktop:latest' });
  else if (s.state === 'provisioning' && s.progress < 90) Object.assign(s, { progress: s.progress + 30, operational_message: 'Starting container' });
  else if (s.state === 'provisioning') Object.assign(s, { state: 'running', progress: 100, operational_message: 'Running', started_at: Date.now() });
  return s;
}

async function api(req, res, path) {
  const method = req.method;
  if (path === '/auth/login' && method === 'POST') {
    const b = await body(req);
    if (failures >= 5) return error(res, 429, 'resource_exhausted', 'too many login attempts', { 'Retry-After': '30' });
    if (b.username !== admin.username || b.password !== password) {
      failures++;
      return error(res, 401, 'unauthenticated', 'wrong username or password');
    }
    failures = 0;
    const token = randomUUID();
    logins.set(token, randomUUID());
    return send(res, 200, authInfo(token), { 'Set-Cookie': `kasm_session=${token}; HttpOnly; SameSite=Strict; Path=/` });
  }
  const token = cookieToken(req);
  if (!token) return error(res, 401, 'unauthenticated', 'not logged in');
  if (method !== 'GET' && req.headers['x-csrf-token'] !== logins.get(token)) return error(res, 403, 'permission_denied', 'missing or wrong CSRF token');
  if (path === '/auth/me') return send(res, 200, authInfo(token));
  if (path === '/auth/logout') { logins.delete(token); res.writeHead(204); return res.end(); }
  if (path === '/workspaces' && method === 'GET') return send(res, 200, list(workspaces));
  let m;
  if ((m = /^\/workspaces\/([^/]+)$/.exec(path))) {
    const w = workspaces.find((x) => x.id === m[1]);
    if (!w) return error(res, 404, 'not_found', 'no such workspace');
    if (method === 'PUT') Object.assign(w, await body(req), { id: w.id });
    return send(res, 200, w);
  }
  if (path === '/sessions' && method === 'GET') return send(res, 200, list([...sessions.values()].filter((s) => s.state !== 'deleted')));
  if (path === '/sessions' && method === 'POST') {
    const b = await body(req);
    if (!workspaces.some((w) => w.id === b.workspace_id)) return error(res, 404, 'not_found', 'no such workspace');
    const id = randomUUID();
    const s = { id, user_id: admin.id, workspace_id: b.workspace_id, zone_id: 'z-default', agent_id: 'a-local', state: 'requested', progress: 0, operational_message: 'Waiting for an agent', created_at: Date.now(), expires_at: Date.now() + 3600e3, hard_expires_at: Date.now() + 8 * 3600e3, protocol: 'vnc', url: `/desktop/${id}/?token=mock`, ws_url: `/desktop/${id}/websockify?token=mock` };
    sessions.set(id, s);
    return send(res, 202, s);
  }
  if ((m = /^\/sessions\/([^/]+)(?:\/(keepalive|pause|resume|stop))?$/.exec(path))) {
    const s = sessions.get(m[1]);
    if (!s || s.state === 'deleted') return error(res, 404, 'not_found', 'no such session');
    if (method === 'DELETE') { s.state = 'deleted'; res.writeHead(204); return res.end(); }
    if (m[2] === 'keepalive') s.expires_at = Date.now() + 3600e3;
    if (m[2] === 'pause') s.state = 'paused';
    if (m[2] === 'resume') s.state = 'running';
    return send(res, 200, method === 'GET' ? advance(s) : s);
  }
  if (path === '/agents') return send(res, 200, list(agents));
  if ((m = /^\/agents\/([^/]+)$/.exec(path))) {
    const a = agents.find((x) => x.id === m[1]);
    if (!a) return error(res, 404, 'not_found', 'no such agent');
    if (method === 'PATCH') { const b = await body(req); for (const k of ['enabled', 'draining', 'overrides']) if (k in b) a[k] = b[k]; }
    return send(res, 200, a);
  }
  if (path === '/users') return send(res, 200, list(users));
  if (path === '/groups') return send(res, 200, list(groups));
  if (path === '/zones') return send(res, 200, list(zones));
  if (path === '/staging') return send(res, 200, list(staging));
  if (path === '/installation') return send(res, 200, { installation_id: 'mock-installation', version: '0.0.0-mock' });
  if (path === '/licenses') return send(res, 200, { status: { mode: 'unlicensed' }, items: [] });
  return error(res, 404, 'not_found', `no route ${method} ${path}`);
}

const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.map': 'application/json' };
async function staticFile(res, urlPath) {
  let rel = normalize(decodeURIComponent(urlPath)).replace(/^(\.\.[/\\])+/, '');
  let file = join(dist, rel);
  if (!file.startsWith(dist)) return error(res, 400, 'invalid_argument', 'bad path');
  try {
    if (!(await stat(file)).isFile()) throw new Error('dir');
  } catch {
    if (extname(rel)) return error(res, 404, 'not_found', 'not found');
    file = join(dist, 'index.html');
  }
  res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' });
  res.end(await readFile(file));
}

createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  try {
    if (url.pathname === '/readyz') return send(res, 200, 'ready');
    if (url.pathname.startsWith('/api/v1/')) return await api(req, res, url.pathname.slice(7));
    return await staticFile(res, url.pathname);
  } catch (e) {
    return error(res, 500, 'internal', String(e));
  }
}).listen(port, '127.0.0.1', () => console.log(`mock kasm API on http://127.0.0.1:${port} (admin@kasm.local / ${password})`));
