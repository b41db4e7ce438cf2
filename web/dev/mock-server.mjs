// A small stand-in for kasm-server's REST API (/api/v1), for developing the web application
// without a C++ build: `npm run build && npm run mock` serves web/dist and the API on
// http://127.0.0.1:8787. Sessions start in three polls and have no desktop (no ws_url answers).
// A session's viewer page (/desktop/<id>/) is served with its file transfer (kasm/files): what is
// uploaded also shows in the mock's ~/Downloads; MOCK_FILES_LIMIT sets the size limit (bytes), and
// PATCH /api/v1/groups/g-admins {"settings": {"allow_uploads": false}} refuses uploads.
// Its sound (the WebSocket kasm/audio) is a 440 Hz tone in the server's format (s16le, 24 kHz,
// stereo, 20 ms a message); {"settings": {"allow_audio": false}} refuses it as the server does.
// Its microphone (the WebSocket kasm/microphone) says ready and counts the PCM it is sent (logged
// every 5 s); {"settings": {"allow_microphone": false}} refuses it.
// Not used by the real browser test, which runs against kasm-server (tests/browser/run.sh).
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
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
const groups = [{ id: 'g-admins', name: 'Administrators', priority: 10, permissions: ['admin'], settings: { max_sessions_per_user: 2, keepalive_expiration: 3600000, allow_uploads: true, allow_downloads: true, allow_audio: true, allow_microphone: true } }];
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
  if ((m = /^\/groups\/([^/]+)$/.exec(path))) {
    const g = groups.find((x) => x.id === m[1]);
    if (!g) return error(res, 404, 'not_found', 'no such group');
    if (method === 'PATCH' || method === 'PUT') {
      const b = await body(req);
      Object.assign(g, { ...b, id: g.id, settings: { ...g.settings, ...(b.settings ?? {}) } });
    }
    return send(res, 200, g);
  }
  if (path === '/zones') return send(res, 200, list(zones));
  if (path === '/staging') return send(res, 200, list(staging));
  if (path === '/installation') return send(res, 200, { installation_id: 'mock-installation', version: '0.0.0-mock' });
  if (path === '/licenses') return send(res, 200, { status: { mode: 'unlicensed' }, items: [] });
  return error(res, 404, 'not_found', `no route ${method} ${path}`);
}

// The session proxy's file transfer, in memory: ~/Downloads of the desktop, limited like the server.
const filesLimit = Number(process.env.MOCK_FILES_LIMIT ?? 10 * 2 ** 20);
const downloads = new Map([['welcome.txt', { data: Buffer.from('Hello from the mock desktop.\n'), modified: new Date().toISOString() }]]);
async function files(req, res, url, rest) {
  const settings = groups[0].settings;
  const refuse = (status, message) => send(res, status, { error: message });
  if (rest === '' && req.method === 'GET') {
    if (!settings.allow_uploads && !settings.allow_downloads) return refuse(403, 'your group allows no file transfer');
    const list = settings.allow_downloads ? [...downloads].map(([name, f]) => ({ name, size: f.data.length, modified: f.modified })) : [];
    return send(res, 200, { uploads: Boolean(settings.allow_uploads), downloads: Boolean(settings.allow_downloads), limit_bytes: filesLimit, upload_dir: '~/Uploads', download_dir: '~/Downloads', files: list });
  }
  if (rest === '/upload' && req.method === 'POST') {
    if (!settings.allow_uploads) return refuse(403, "your group's settings do not allow uploads");
    const name = url.searchParams.get('name') ?? '';
    if (!name || name.includes('/') || name === '.' || name === '..') return refuse(400, `bad file name "${name}"`);
    if (Number(req.headers['content-length'] ?? 0) > filesLimit) {
      res.writeHead(413, { 'Content-Type': 'text/plain', Connection: 'close' });
      return res.end(`the file is larger than the limit of ${filesLimit} bytes`);
    }
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const data = Buffer.concat(chunks);
    downloads.set(name, { data, modified: new Date().toISOString() });
    return send(res, 201, { name, size: data.length, path: `~/Uploads/${name}` });
  }
  const m = /^\/download\/(.+)$/.exec(rest);
  if (m && req.method === 'GET') {
    if (!settings.allow_downloads) return refuse(403, "your group's settings do not allow downloads");
    const f = downloads.get(decodeURIComponent(m[1]));
    if (!f) return refuse(404, 'no such file in ~/Downloads');
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Disposition': `attachment; filename*=UTF-8''${m[1]}` });
    return res.end(f.data);
  }
  return refuse(404, 'not found');
}

// The viewer page as the session proxy serves it: viewer.html with its <meta name="kasm-viewer">.
async function viewerPage(res, id) {
  const html = await readFile(join(dist, 'viewer.html'), 'utf8');
  const cfg = JSON.stringify({ session: id, token: 'mock', view_only: false, owner: true }).replace(/"/g, '&quot;');
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(html.replace('<head>', `<head>\n    <meta name="kasm-viewer" content="${cfg}" />`));
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

// kasm/audio: a WebSocket by hand (server-to-client frames only; what the client sends is read
// for its close frame and otherwise ignored).
function wsFrame(opcode, payload) {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, n])
    : n < 65536 ? Buffer.from([0x80 | opcode, 126, n >> 8, n & 255])
      : (() => { const b = Buffer.alloc(10); b[0] = 0x80 | opcode; b[1] = 127; b.writeBigUInt64BE(BigInt(n), 2); return b; })();
  return Buffer.concat([head, payload]);
}

function audioSocket(req, socket) {
  const key = req.headers['sec-websocket-key'];
  if (!key) return socket.destroy();
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const text = (o) => socket.write(wsFrame(1, Buffer.from(JSON.stringify(o))));
  if (!groups[0].settings.allow_audio) {
    text({ error: 'sound is turned off for your group (allow_audio); ask an administrator' });
    socket.end(wsFrame(8, Buffer.from([0x03, 0xe8])));
    return;
  }
  text({ format: 's16le', rate: 24000, channels: 2 });
  const rate = 24000, frames = 480;
  let n = 0;
  const started = Date.now();
  let sent = 0;
  const timer = setInterval(() => {
    // As many 20 ms messages as the clock says are due (timers drift).
    while (sent * 20 <= Date.now() - started) {
      const pcm = Buffer.alloc(frames * 4);
      for (let i = 0; i < frames; i++, n++) {
        const v = Math.round(Math.sin((2 * Math.PI * 440 * n) / rate) * 0.25 * 32767);
        pcm.writeInt16LE(v, i * 4);
        pcm.writeInt16LE(v, i * 4 + 2);
      }
      socket.write(wsFrame(2, pcm));
      sent++;
    }
  }, 10);
  const stop = () => { clearInterval(timer); socket.destroy(); };
  socket.on('data', (d) => { if ((d[0] & 0x0f) === 8) stop(); });
  socket.on('error', stop);
  socket.on('close', stop);
}

// kasm/microphone: ready, then the client's (masked) frames are parsed for their sizes and close.
function microphoneSocket(req, socket) {
  const key = req.headers['sec-websocket-key'];
  if (!key) return socket.destroy();
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const text = (o) => socket.write(wsFrame(1, Buffer.from(JSON.stringify(o))));
  if (!groups[0].settings.allow_microphone) {
    text({ error: 'the microphone is turned off for your group (allow_microphone); ask an administrator' });
    socket.end(wsFrame(8, Buffer.from([0x03, 0xe8])));
    return;
  }
  text({ ready: true, format: 's16le', rate: 24000, channels: 1 });
  let buf = Buffer.alloc(0);
  let bytes = 0;
  const timer = setInterval(() => console.log(`mock microphone: ${bytes} bytes of PCM so far`), 5000);
  const stop = () => { clearInterval(timer); socket.destroy(); };
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      let len = buf[1] & 127, at = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
      if (buf[1] & 128) at += 4;
      if (buf.length < at + len) return;
      const opcode = buf[0] & 15;
      buf = buf.subarray(at + len);
      if (opcode === 8) return stop();
      if (opcode === 2) bytes += len;
    }
  });
  socket.on('error', stop);
  socket.on('close', stop);
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  try {
    if (url.pathname === '/readyz') return send(res, 200, 'ready');
    if (url.pathname.startsWith('/api/v1/')) return await api(req, res, url.pathname.slice(7));
    const d = /^\/desktop\/([^/]+)\/(?:kasm\/files(\/.*)?)?$/.exec(url.pathname);
    if (d && d[2] === undefined && !url.pathname.includes('/kasm/files')) return await viewerPage(res, d[1]);
    if (d) return await files(req, res, url, d[2] ?? '');
    return await staticFile(res, url.pathname);
  } catch (e) {
    return error(res, 500, 'internal', String(e));
  }
});
server.on('upgrade', (req, socket) => {
  const path = new URL(req.url, 'http://localhost').pathname;
  if (/^\/desktop\/[^/]+\/kasm\/audio$/.test(path)) return audioSocket(req, socket);
  if (/^\/desktop\/[^/]+\/kasm\/microphone$/.test(path)) return microphoneSocket(req, socket);
  socket.destroy();
});
server.listen(port, '127.0.0.1', () => console.log(`mock kasm API on http://127.0.0.1:${port} (admin@kasm.local / ${password})`));
