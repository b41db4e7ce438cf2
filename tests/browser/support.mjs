// What the browser tests share: Debian's Chromium through playwright-core (from web/node_modules),
// a bounded wait that says what it waited for, and the harness of the tests that log in as the
// administrator and work in a desktop: their settings, page log, named steps with screenshots and
// overall deadline; logging in; the REST API as the browser (launching the desktop, opening its
// viewer, changing the admin's group settings and restoring them, deleting the session); and the
// developer API (exec_command_kasm in the session).

import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const webDir = resolve(process.env.KASM_WEB_DIR ?? join(here, '..', '..', 'web'));
const { chromium } = createRequire(join(webDir, 'package.json'))('playwright-core');

// `extraArgs`: more command-line switches for this test's browser (the microphone test's fake
// media devices, say).
export function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.KASM_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

// Polls `probe` (returns a truthy value when done) until `timeoutMs`; the error names `what`.
export async function waitFor(what, probe, timeoutMs, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

// A REST call from the logged-in page (its cookie, and the CSRF token /auth/me gives): answers the
// status and the parsed JSON body (null when empty).
export async function restFromPage(page, method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    const me = await fetch('/api/v1/auth/me').then((r) => r.json());
    const r = await fetch(`/api/v1${path}`, {
      method,
      headers: { 'X-CSRF-Token': me.csrf_token, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    return { status: r.status, json: text ? JSON.parse(text) : null };
  }, { method, path, body });
}

// ---- Settings, logs, steps ----------------------------------------------------------------------

// How long a launched desktop may take to run, and then to connect and be drawn in its viewer.
export const LAUNCH_TIMEOUT_MS = 240_000;
export const DRAWN_TIMEOUT_MS = 60_000;

// The settings run.sh gives a test that logs in as the administrator and uses the developer API:
// baseUrl (KASM_URL, no trailing /), adminUser (KASM_USERNAME, default admin@kasm.local),
// adminPassword (KASM_PASSWORD), apiKey and apiSecret (KASM_API_KEY, KASM_API_SECRET),
// workspaceName (KASM_WORKSPACE_NAME, default Desktop) and artifacts (KASM_ARTIFACTS_DIR, made if
// missing). Exits with 2, naming what to set, when one of the four without a default is missing.
export function adminTestSettings(test) {
  const settings = {
    baseUrl: (process.env.KASM_URL ?? '').replace(/\/$/, ''),
    adminUser: process.env.KASM_USERNAME ?? 'admin@kasm.local',
    adminPassword: process.env.KASM_PASSWORD ?? '',
    apiKey: process.env.KASM_API_KEY ?? '',
    apiSecret: process.env.KASM_API_SECRET ?? '',
    workspaceName: process.env.KASM_WORKSPACE_NAME ?? 'Desktop',
    artifacts: resolve(process.env.KASM_ARTIFACTS_DIR ?? 'build/browser-artifacts'),
  };
  if (!settings.baseUrl || !settings.adminPassword || !settings.apiKey || !settings.apiSecret) {
    console.error(`${test}: set KASM_URL, KASM_PASSWORD, KASM_API_KEY and KASM_API_SECRET (run.sh does)`);
    process.exit(2);
  }
  mkdirSync(settings.artifacts, { recursive: true });
  return settings;
}

// An empty file `name` in `artifacts` for logPage to append to; answers its path.
export function newPageLog(artifacts, name) {
  const file = join(artifacts, name);
  writeFileSync(file, '');
  return file;
}

// Appends what `page` reports to the file `logFile`: its console messages, HTTP answers of 400 and
// over (the viewer's token hidden) and uncaught errors; with `websockets`, also the WebSockets it
// opens and how they end. `who` starts every line, to tell several browsers apart in one log.
export function logPage(logFile, page, { who = '', websockets = false } = {}) {
  const tag = (what) => `[${who ? `${who} ` : ''}${what}]`;
  const hideToken = (url) => url.replace(/token=[^&]+/, 'token=…');
  page.on('console', (m) => appendFileSync(logFile, `${tag(`console.${m.type()}`)} ${m.text()}\n`));
  page.on('response', (r) => {
    if (r.status() >= 400) appendFileSync(logFile, `${tag(`http ${r.status()}`)} ${r.request().method()} ${hideToken(r.url())}\n`);
  });
  if (websockets) {
    page.on('websocket', (ws) => {
      const url = hideToken(ws.url());
      appendFileSync(logFile, `${tag('websocket')} open ${url}\n`);
      ws.on('close', () => appendFileSync(logFile, `${tag('websocket')} closed ${url}\n`));
      ws.on('socketerror', (e) => appendFileSync(logFile, `${tag('websocket')} error ${url}: ${e}\n`));
    });
  }
  page.on('pageerror', (e) => appendFileSync(logFile, `${tag('pageerror')} ${e.message}\n`));
}

// A test's named steps and numbered screenshots, saved in `artifacts` as <prefix>-NN-<name>.png
// (NN-<name>.png when `prefix` is empty).
//   screenshot(page, name): saves the page's screen; a failure to do so is reported, not thrown.
//   step(pages, name, fn): prints "step: <name> ... ", runs fn, then "ok (<ms> ms)" or "FAILED",
//     and saves the screen of `pages` afterwards, passed or failed (<name>, or <name>-failed).
//     `pages` is a page, null (no screenshot), or an object naming several pages, { owner: page,
//     joiner: page }, whose screenshots are <name>-owner and so on (null ones are left out). A
//     failure is thrown again as 'step "<name>" failed: <message>'.
export function stepsWithScreenshots(artifacts, prefix) {
  let shot = 0;
  async function screenshot(page, name) {
    const file = join(artifacts, `${prefix ? `${prefix}-` : ''}${String(++shot).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file }).catch((e) => console.error(`screenshot ${name} failed: ${e.message}`));
    return file;
  }
  const screens = (pages, name) => (typeof pages?.screenshot === 'function'
    ? [[name, pages]]
    : Object.entries(pages ?? {}).filter(([, p]) => p).map(([who, p]) => [`${name}-${who}`, p]));
  async function step(pages, name, fn) {
    const started = Date.now();
    process.stdout.write(`step: ${name} ... `);
    try {
      await fn();
      console.log(`ok (${Date.now() - started} ms)`);
      for (const [shotName, p] of screens(pages, name)) await screenshot(p, shotName);
    } catch (e) {
      console.log('FAILED');
      for (const [shotName, p] of screens(pages, name)) await screenshot(p, `${shotName}-failed`);
      throw new Error(`step "${name}" failed: ${e.message}`);
    }
  }
  return { step, screenshot };
}

// Runs a test's `main` under an overall deadline of `minutes` (on top of the per-step ones, so
// nothing can hang ctest) and exits: 0 when it resolves, 1 when it throws or the deadline passes,
// printing "<test>: <message>" and then `whereToLook` (where the screenshots and logs are).
export function runTest(test, main, { minutes, whereToLook }) {
  const overall = setTimeout(() => {
    console.error(`${test}: the whole test exceeded ${minutes} minutes; giving up`);
    process.exit(1);
  }, minutes * 60_000);
  overall.unref();
  main().then(
    () => process.exit(0),
    (e) => {
      console.error(`${test}: ${e.message}\n${whereToLook}`);
      process.exit(1);
    },
  );
}

// ---- The web application ------------------------------------------------------------------------

// Fills in and submits the login page's form (waiting for the page first); what comes next (the
// dashboard, or the page the login was for) is the caller's to wait for.
export async function submitLogin(page, username, password) {
  await page.getByRole('heading', { name: 'Log in to Kasm' }).waitFor({ timeout: 20_000 });
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
}

// Opens `baseUrl`'s login page, logs in and waits for the dashboard ("Workspaces").
export async function logInToDashboard(page, baseUrl, username, password) {
  await page.goto(`${baseUrl}/`);
  await submitLogin(page, username, password);
  await page.getByRole('heading', { name: 'Workspaces', exact: true }).waitFor({ timeout: 20_000 });
}

// The fraction of the viewer's desktop canvas (#screen canvas, sampled) that is not black, or 0
// while it is missing or at most 1 % lit: a probe for waitFor. `page` may be a frame.
export async function canvasLit(page) {
  return page.evaluate(() => {
    const c = document.querySelector('#screen canvas');
    if (!c || !c.width) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let on = 0, n = 0;
    for (let i = 0; i < d.length; i += 64) { n++; if (d[i] + d[i + 1] + d[i + 2] > 30) on++; }
    return on / n > 0.01 ? on / n : 0;
  });
}

// The URL of the viewer's kasm/<name> WebSocket (audio, microphone), made in the viewer page as the
// page makes it: beside the viewer's path, with the page's own token.
export async function viewerSocketUrl(page, name) {
  return page.evaluate((name) => {
    const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
    const u = new URL(`${base}kasm/${name}`, location.href);
    u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const token = JSON.parse(document.querySelector('meta[name="kasm-viewer"]').content).token;
    u.search = `token=${encodeURIComponent(token)}`;
    return u.toString();
  }, name);
}

// ---- The REST API -------------------------------------------------------------------------------

// The REST API (/api/v1) as a logged-in browser context: its cookie (context.request keeps it) and
// `csrf`, or else the CSRF token /auth/me gives (asked once). The answer is rest(method, path, body)
// -> { status, json (null when empty, the text when not JSON), text }; it does not throw on a status.
export function restOfContext(context, baseUrl, csrf = null) {
  return async (method, path, body) => {
    if (!csrf) csrf = (await (await context.request.get(`${baseUrl}/api/v1/auth/me`)).json()).csrf_token;
    const res = await context.request.fetch(`${baseUrl}/api/v1${path}`, {
      method,
      headers: { 'X-CSRF-Token': csrf },
      data: body === undefined ? undefined : body,
    });
    const text = await res.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = text; }
    return { status: res.status(), json, text };
  };
}

// Launches the workspace called `workspaceName` with POST /sessions and answers the new session's
// id. An earlier test's session may still be stopping: the group's session limit then refuses for
// a while (429), so the launch is tried again for up to 90 s.
export async function launchWorkspace(rest, workspaceName) {
  const workspaces = (await rest('GET', '/workspaces?limit=1000')).json?.items ?? [];
  const ws = workspaces.find((w) => w.friendly_name === workspaceName);
  if (!ws) throw new Error(`no workspace "${workspaceName}" among ${workspaces.map((w) => w.friendly_name).join(', ')}`);
  const started = await waitFor('the launch to be accepted', async () => {
    const r = await rest('POST', '/sessions', { workspace_id: ws.id });
    if (r.status === 201 || r.status === 202) return r.json;
    if (r.status === 429) return null;
    throw new Error(`POST /sessions answered ${r.status}: ${r.text}`);
  }, 90_000, 2_000);
  return started.id;
}

// Waits for session `sessionId` to run with a viewer URL, opens that URL in `page`, waits for the
// viewer (/desktop/<session>/) and, unless `connected` is false (no real desktop behind it), for
// its desktop connection. Answers the viewer's URL.
export async function openViewer(page, rest, baseUrl, sessionId, { connected = true } = {}) {
  const s = await waitFor('the session to run with a viewer url', async () => {
    const r = await rest('GET', `/sessions/${sessionId}`);
    if (r.status !== 200) throw new Error(`GET /sessions/${sessionId} answered ${r.status}: ${r.text}`);
    if (r.json.state === 'failed' || r.json.state === 'destroyed') throw new Error(`the session ${r.json.state}: ${r.json.state_reason ?? ''}`);
    return r.json.state === 'running' && r.json.url ? r.json : null;
  }, LAUNCH_TIMEOUT_MS, 1_000);
  const viewerUrl = new URL(s.url, baseUrl).toString();
  await page.goto(viewerUrl);
  await waitFor('the viewer page', async () => new URL(page.url()).pathname === `/desktop/${sessionId}/`, 20_000);
  if (connected) {
    await waitFor('the desktop connection', async () =>
      (await page.evaluate(() => document.documentElement.dataset.connection)) === 'connected', DRAWN_TIMEOUT_MS);
  }
  return viewerUrl;
}

// Sets `settings` (say { allow_audio: false }) on `group`; throws unless the answer has them.
export async function patchGroupSettings(rest, group, settings) {
  const r = await rest('PATCH', `/groups/${group.id}`, { settings });
  const applied = r.status === 200 && Object.entries(settings).every(([k, v]) => r.json?.settings?.[k] === v);
  if (!applied) throw new Error(`PATCH /groups/${group.id} answered ${r.status}: ${r.text}`);
}

// Sets `settings` on the group whose settings apply to the logged-in user (of their groups, the one
// with the lowest priority number). Answers { group, saved }: saved holds those settings' values
// before (as booleans), for restoreGroupSettings. When the change fails they are put back at once.
export async function overrideGroupSettings(rest, settings) {
  const me = (await rest('GET', '/auth/me')).json;
  let group = null;
  for (const id of me?.user?.group_ids ?? []) {
    const g = await rest('GET', `/groups/${id}`);
    if (g.status === 200 && (!group || g.json.priority < group.priority)) group = g.json;
  }
  if (!group) throw new Error(`the admin belongs to no group: ${JSON.stringify(me?.user)}`);
  const saved = Object.fromEntries(Object.keys(settings).map((k) => [k, Boolean(group.settings?.[k])]));
  try {
    await patchGroupSettings(rest, group, settings);
  } catch (e) {
    await restoreGroupSettings(rest, { group, saved });
    throw e;
  }
  return { group, saved };
}

// Puts back what overrideGroupSettings changed (`override` may be null: nothing to do). For the
// clean-up at the end of a test: a failure is printed, not thrown.
export async function restoreGroupSettings(rest, override) {
  if (!override || !rest) return;
  const r = await rest('PATCH', `/groups/${override.group.id}`, { settings: override.saved }).catch((e) => ({ status: 0, text: e.message }));
  if (r.status !== 200) console.error(`restoring the group's settings: ${r.status} ${r.text}`);
}

// Deletes session `sessionId` (may be null: nothing to do), trying up to five times a second
// apart; gone already (404) counts as deleted. For the clean-up at the end of a test: failures are
// printed, not thrown.
export async function deleteSession(rest, sessionId) {
  for (let i = 0; sessionId && rest && i < 5; i++) {
    const r = await rest('DELETE', `/sessions/${sessionId}`).catch((e) => ({ status: 0, text: e.message }));
    if (r.status < 300 || r.status === 404) return;
    console.error(`deleting the session: ${r.status} ${r.text}`);
    await new Promise((res) => setTimeout(res, 1000));
  }
}

// ---- The developer API --------------------------------------------------------------------------

// The developer API (/api/public/<verb>, authenticated by the key in the body), for an integrator's
// calls and for reaching into a session:
//   call(verb, body): the answer's JSON; throws on a status other than 200.
//   exec(sessionId, cmd): runs cmd in the session's container as its user (HOME=/home/kasm-user)
//     with exec_command_kasm; answers its output, or throws naming the exit code.
export function developerApiClient(baseUrl, apiKey, apiSecret) {
  async function call(verb, body) {
    const r = await fetch(`${baseUrl}/api/public/${verb}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ api_key: apiKey, api_key_secret: apiSecret, ...body }),
    });
    const json = await r.json().catch(() => ({}));
    if (r.status !== 200) throw new Error(`${verb} answered ${r.status}: ${JSON.stringify(json)}`);
    return json;
  }
  async function exec(sessionId, cmd) {
    const r = await call('exec_command_kasm', { kasm_id: sessionId, exec_config: { cmd } });
    if (r.exit_code !== undefined && r.exit_code !== 0) throw new Error(`"${cmd}" exited with ${r.exit_code}: ${r.output}`);
    return String(r.output ?? '');
  }
  return { call, exec };
}
