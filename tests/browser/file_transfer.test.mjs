// File transfer in the session viewer, end to end in headless Chromium against the real kasm-server
// and desktop image: the administrator's group is made to allow uploads and downloads; the admin
// launches the desktop and opens its viewer (/desktop/<session>/); the "Files" panel uploads a file
// of random bytes (progress, then "Saved to ~/Uploads/<name>", and the container has the same
// bytes); a file dropped onto the page goes up too; a file over the limit is refused before it is
// sent, naming the limit; the file is copied into ~/Downloads with the developer API's
// exec_command_kasm, listed after "Refresh" with its size, and downloaded with the same bytes;
// with uploads no longer allowed the server refuses an upload and the panel shows its message, and
// a reloaded viewer has no upload section. The group's settings are restored and the session
// deleted at the end, whatever happened.
//
// Environment (tests/browser/run.sh sets it): KASM_URL, KASM_PASSWORD (the admin's), KASM_USERNAME
// (default admin@kasm.local), KASM_API_KEY and KASM_API_SECRET (a key with sessions:manage),
// KASM_WORKSPACE_NAME (default Desktop), KASM_ARTIFACTS_DIR, KASM_WEB_DIR, KASM_CHROMIUM.
// KASM_BROWSER_SKIP_DESKTOP=1 leaves out what needs a real desktop (the drawn screen and the
// container, through exec_command_kasm), for a run against web/dev/mock-server.mjs, whose uploads
// show in its ~/Downloads by themselves.

import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { launchChromium, waitFor } from './support.mjs';

const baseUrl = (process.env.KASM_URL ?? '').replace(/\/$/, '');
const adminUser = process.env.KASM_USERNAME ?? 'admin@kasm.local';
const adminPassword = process.env.KASM_PASSWORD ?? '';
const apiKey = process.env.KASM_API_KEY ?? '';
const apiSecret = process.env.KASM_API_SECRET ?? '';
const workspaceName = process.env.KASM_WORKSPACE_NAME ?? 'Desktop';
const artifacts = resolve(process.env.KASM_ARTIFACTS_DIR ?? 'build/browser-artifacts');
const skipDesktop = process.env.KASM_BROWSER_SKIP_DESKTOP === '1';
if (!baseUrl || !adminPassword || !apiKey || !apiSecret) {
  console.error('file_transfer: set KASM_URL, KASM_PASSWORD, KASM_API_KEY and KASM_API_SECRET (run.sh does)');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const pageLog = join(artifacts, 'files-page.log');
writeFileSync(pageLog, '');

const LAUNCH_TIMEOUT_MS = 240_000;
const DRAWN_TIMEOUT_MS = 60_000;
const UPLOAD_TIMEOUT_MS = 30_000;
const VIEWPORT = { width: 1280, height: 800 };
const UPLOAD_BYTES = 300 * 1024;

let shot = 0;
async function screenshot(page, name) {
  const file = join(artifacts, `files-${String(++shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file }).catch((e) => console.error(`screenshot ${name} failed: ${e.message}`));
}

// A step with a name; its screen is saved after it, passed or failed.
async function step(page, name, fn) {
  const started = Date.now();
  process.stdout.write(`step: ${name} ... `);
  try {
    await fn();
    console.log(`ok (${Date.now() - started} ms)`);
    if (page) await screenshot(page, name);
  } catch (e) {
    console.log('FAILED');
    if (page) await screenshot(page, `${name}-failed`);
    throw new Error(`step "${name}" failed: ${e.message}`);
  }
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function developerApi(verb, body) {
  const r = await fetch(`${baseUrl}/api/public/${verb}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ api_key: apiKey, api_key_secret: apiSecret, ...body }),
  });
  const json = await r.json().catch(() => ({}));
  if (r.status !== 200) throw new Error(`${verb} answered ${r.status}: ${JSON.stringify(json)}`);
  return json;
}

// A command in the desktop's container, as its user (HOME=/home/kasm-user): its output, or an
// error naming the exit code.
async function inDesktop(sessionId, cmd) {
  const r = await developerApi('exec_command_kasm', { kasm_id: sessionId, exec_config: { cmd } });
  if (r.exit_code !== undefined && r.exit_code !== 0) throw new Error(`"${cmd}" exited with ${r.exit_code}: ${r.output}`);
  return String(r.output ?? '');
}

async function canvasLit(page) {
  return page.evaluate(() => {
    const c = document.querySelector('#screen canvas');
    if (!c || !c.width) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let on = 0, n = 0;
    for (let i = 0; i < d.length; i += 64) { n++; if (d[i] + d[i + 1] + d[i + 2] > 30) on++; }
    return on / n > 0.01 ? on / n : 0;
  });
}

function logPage(page) {
  page.on('console', (m) => appendFileSync(pageLog, `[console.${m.type()}] ${m.text()}\n`));
  page.on('response', (r) => {
    if (r.status() >= 400) appendFileSync(pageLog, `[http ${r.status()}] ${r.request().method()} ${r.url().replace(/token=[^&]+/, 'token=…')}\n`);
  });
  page.on('pageerror', (e) => appendFileSync(pageLog, `[pageerror] ${e.message}\n`));
}

// The REST API as the logged-in browser: the context's cookie and the CSRF token /auth/me gives.
function restOf(context) {
  let csrf = null;
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

// GET kasm/files from the viewer page itself (its cookie), as the panel does.
async function filesInfo(page) {
  return page.evaluate(async () => {
    const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
    const r = await fetch(`${base}kasm/files`, { cache: 'no-store' });
    const text = await r.text();
    let json = null;
    try { json = JSON.parse(text); } catch { /* reported as text */ }
    return { status: r.status, json, text };
  });
}

// The state changes and percentages an upload row goes through (a MutationObserver installed
// before the upload starts; loopback is too fast to catch them by polling).
async function watchUploads(page) {
  await page.evaluate(() => {
    const w = window;
    w.__kasmUploadTrail = [];
    w.__kasmUploadObserver?.disconnect();
    const list = document.querySelector('#files-box .files-uploads');
    w.__kasmUploadObserver = new MutationObserver((records) => {
      for (const r of records) {
        const li = r.target instanceof Element ? r.target.closest('li[data-name]') : r.target.parentElement?.closest('li[data-name]');
        if (!li) continue;
        // An attribute record keeps the value it replaced: with the current one, no state is missed.
        if (r.type === 'attributes' && r.attributeName === 'data-state') w.__kasmUploadTrail.push({ name: li.dataset.name, state: r.oldValue });
        w.__kasmUploadTrail.push({ name: li.dataset.name, state: li.dataset.state, percent: li.querySelector('.files-percent')?.textContent ?? '' });
      }
    });
    w.__kasmUploadObserver.observe(list, { subtree: true, childList: true, characterData: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-state', 'value'] });
  });
}

async function uploadRow(page, name, timeoutMs = UPLOAD_TIMEOUT_MS) {
  const row = page.locator(`#files-box .files-uploads li[data-name="${name}"]`);
  const state = await waitFor(`the upload of ${name} to finish`, async () => {
    const s = await row.getAttribute('data-state', { timeout: 1_000 });
    return s === 'done' || s === 'error' ? s : null;
  }, timeoutMs);
  return { row, state, status: (await row.locator('.files-status').innerText()).trim() };
}

async function launchDesktop(rest) {
  const workspaces = (await rest('GET', '/workspaces?limit=1000')).json?.items ?? [];
  const ws = workspaces.find((w) => w.friendly_name === workspaceName);
  if (!ws) throw new Error(`no workspace "${workspaceName}" among ${workspaces.map((w) => w.friendly_name).join(', ')}`);
  // An earlier test's session may still be stopping: the group's session limit then refuses for a
  // while (429).
  const started = await waitFor('the launch to be accepted', async () => {
    const r = await rest('POST', '/sessions', { workspace_id: ws.id });
    if (r.status === 201 || r.status === 202) return r.json;
    if (r.status === 429) return null;
    throw new Error(`POST /sessions answered ${r.status}: ${r.text}`);
  }, 90_000, 2_000);
  return started.id;
}

async function main() {
  const browser = await launchChromium();
  const stamp = Date.now().toString(36);
  const tmp = mkdtempSync(join(tmpdir(), 'kasm-files-'));
  let page = null;
  let rest = null;
  let sessionId = null;
  let group = null;
  let savedSettings = null;
  try {
    const context = await browser.newContext({ viewport: VIEWPORT, acceptDownloads: true });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    logPage(page);

    await step(page, 'login-and-allow-transfer', async () => {
      await page.goto(`${baseUrl}/`);
      await page.getByRole('heading', { name: 'Log in to Kasm' }).waitFor({ timeout: 20_000 });
      await page.getByLabel('Username').fill(adminUser);
      await page.getByLabel('Password').fill(adminPassword);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'Workspaces', exact: true }).waitFor({ timeout: 20_000 });
      rest = restOf(context);
      // The group whose settings apply: the admin's group with the lowest priority number.
      const me = (await rest('GET', '/auth/me')).json;
      for (const id of me?.user?.group_ids ?? []) {
        const g = await rest('GET', `/groups/${id}`);
        if (g.status === 200 && (!group || g.json.priority < group.priority)) group = g.json;
      }
      if (!group) throw new Error(`the admin belongs to no group: ${JSON.stringify(me?.user)}`);
      savedSettings = { allow_uploads: Boolean(group.settings?.allow_uploads), allow_downloads: Boolean(group.settings?.allow_downloads) };
      const r = await rest('PATCH', `/groups/${group.id}`, { settings: { allow_uploads: true, allow_downloads: true } });
      if (r.status !== 200 || !r.json?.settings?.allow_uploads || !r.json?.settings?.allow_downloads) {
        throw new Error(`PATCH /groups/${group.id} answered ${r.status}: ${r.text}`);
      }
      console.log(`\n  group "${group.name}" (was ${JSON.stringify(savedSettings)}) now allows uploads and downloads`);
    });

    let viewerUrl;
    const openViewer = async () => {
      const s = await waitFor('the session to run with a viewer url', async () => {
        const r = await rest('GET', `/sessions/${sessionId}`);
        if (r.status !== 200) throw new Error(`GET /sessions/${sessionId} answered ${r.status}: ${r.text}`);
        if (r.json.state === 'failed' || r.json.state === 'destroyed') throw new Error(`the session ${r.json.state}: ${r.json.state_reason ?? ''}`);
        return r.json.state === 'running' && r.json.url ? r.json : null;
      }, LAUNCH_TIMEOUT_MS, 1_000);
      viewerUrl = new URL(s.url, baseUrl).toString();
      await page.goto(viewerUrl);
      await waitFor('the viewer page', async () => new URL(page.url()).pathname === `/desktop/${sessionId}/`, 20_000);
      if (!skipDesktop) {
        await waitFor('the desktop connection', async () =>
          (await page.evaluate(() => document.documentElement.dataset.connection)) === 'connected', DRAWN_TIMEOUT_MS);
      }
    };

    await step(page, 'desktop-in-viewer', async () => {
      sessionId = await launchDesktop(rest);
      console.log(`\n  session ${sessionId}`);
      await openViewer();
      if (!skipDesktop) await waitFor('a drawn desktop in the viewer', () => canvasLit(page), DRAWN_TIMEOUT_MS, 500);
    });

    let info;
    await step(page, 'files-panel', async () => {
      const r = await filesInfo(page);
      if (r.status !== 200 || !r.json) throw new Error(`GET kasm/files answered ${r.status}: ${r.text}`);
      info = r.json;
      console.log(`\n  kasm/files: uploads ${info.uploads}, downloads ${info.downloads}, limit ${info.limit_bytes} bytes, ${info.files?.length} file(s)`);
      if (!info.uploads || !info.downloads) throw new Error(`the group allows both, kasm/files says ${r.text}`);
      const toggle = page.getByRole('button', { name: 'Files', exact: true });
      await toggle.waitFor({ state: 'visible', timeout: 15_000 });
      await toggle.click();
      if ((await toggle.getAttribute('aria-expanded')) !== 'true') throw new Error('the Files button does not say its panel is open');
      await page.locator('#files-box').getByRole('heading', { name: 'Upload' }).waitFor();
      await page.locator('#files-box').getByRole('heading', { name: 'Downloads' }).waitFor();
    });

    const name = `kasm-upload-${stamp}.bin`;
    const data = randomBytes(UPLOAD_BYTES);
    await step(page, 'upload', async () => {
      await watchUploads(page);
      await page.getByLabel('Choose files to upload', { exact: true }).setInputFiles({ name, mimeType: 'application/octet-stream', buffer: data });
      const { row, state, status } = await uploadRow(page, name);
      if (state !== 'done') throw new Error(`the upload failed: ${status}`);
      const expected = `Saved to ${info.upload_dir ?? '~/Uploads'}/${name}`;
      if (status !== expected) throw new Error(`expected "${expected}", the panel says "${status}"`);
      const trail = await page.evaluate(() => window.__kasmUploadTrail.filter((t) => t.name));
      const states = [...new Set(trail.filter((t) => t.name === name).map((t) => t.state))];
      if (!states.includes('uploading')) throw new Error(`the row never showed the upload in progress: ${JSON.stringify(trail)}`);
      if ((await row.locator('.files-percent').innerText()).trim() !== '100%') throw new Error('the progress does not end at 100%');
      if ((await row.locator('progress').evaluate((p) => p.value)) !== 100) throw new Error('the progress bar does not end full');
      console.log(`\n  states ${states.join(' -> ')}`);
      if (skipDesktop) return;
      const inside = await inDesktop(sessionId, `sha256sum ~/Uploads/${name}`);
      if (!inside.startsWith(sha256(data))) throw new Error(`the container's copy differs: ${inside.trim()} (sent ${sha256(data)})`);
      console.log(`  the container has the same ${UPLOAD_BYTES} bytes`);
    });

    await step(page, 'drop-upload', async () => {
      const dropped = `kasm-dropped-${stamp}.txt`;
      const dt = await page.evaluateHandle((n) => {
        const d = new DataTransfer();
        d.items.add(new File([`dropped onto the viewer ${n}\n`], n, { type: 'text/plain' }));
        return d;
      }, dropped);
      await page.dispatchEvent('#screen', 'dragenter', { dataTransfer: dt });
      await page.dispatchEvent('#screen', 'dragover', { dataTransfer: dt });
      if (!(await page.locator('#drop-overlay').isVisible())) throw new Error('no drop overlay while files are dragged over the page');
      await screenshot(page, 'drop-overlay');
      await page.dispatchEvent('#screen', 'drop', { dataTransfer: dt });
      const { state, status } = await uploadRow(page, dropped);
      if (state !== 'done' || !status.endsWith(`/${dropped}`)) throw new Error(`the dropped file: ${state}: ${status}`);
      if (await page.locator('#drop-overlay').isVisible()) throw new Error('the drop overlay stayed after the drop');
    });

    await step(page, 'over-limit', async () => {
      if (!(info.limit_bytes > 0)) {
        console.log('\n  no limit_bytes: nothing to check');
        return;
      }
      // A sparse file one byte over the limit: the panel refuses it without reading or sending it.
      const big = join(tmp, `kasm-too-big-${stamp}.bin`);
      const fd = openSync(big, 'w');
      ftruncateSync(fd, info.limit_bytes + 1);
      closeSync(fd);
      const sent = [];
      const onRequest = (r) => { if (r.url().includes('/kasm/files/upload')) sent.push(r.url()); };
      page.on('request', onRequest);
      try {
        await page.getByLabel('Choose files to upload', { exact: true }).setInputFiles(big);
        const { state, status } = await uploadRow(page, `kasm-too-big-${stamp}.bin`, 5_000);
        if (state !== 'error' || !/larger than the upload limit of [\d.]+ MB/.test(status)) throw new Error(`expected a refusal naming the limit, got ${state}: "${status}"`);
        await new Promise((r) => setTimeout(r, 500));
        if (sent.length) throw new Error(`the over-limit file was sent anyway: ${sent.join(', ')}`);
        console.log(`\n  "${status}"`);
      } finally {
        page.off('request', onRequest);
        rmSync(big, { force: true });
      }
    });

    await step(page, 'download', async () => {
      if (!skipDesktop) await inDesktop(sessionId, `mkdir -p ~/Downloads && cp ~/Uploads/${name} ~/Downloads/${name}`);
      const panel = page.locator('#files-box');
      await panel.getByRole('button', { name: 'Refresh', exact: true }).click();
      const link = panel.getByRole('link', { name, exact: true });
      await link.waitFor({ timeout: 10_000 });
      const row = panel.locator(`.files-downloads li[data-name="${name}"]`);
      const size = (await row.locator('.files-size').innerText()).trim();
      if (size !== '300 KiB') throw new Error(`the listed size is "${size}", not "300 KiB"`);
      const href = await link.getAttribute('href');
      if (href !== `/desktop/${sessionId}/kasm/files/download/${encodeURIComponent(name)}`) throw new Error(`unexpected link ${href}`);
      const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), link.click()]);
      const failure = await download.failure();
      if (failure) throw new Error(`the download failed: ${failure}`);
      const got = readFileSync(await download.path());
      if (got.length !== data.length || sha256(got) !== sha256(data)) {
        throw new Error(`the downloaded file differs: ${got.length} bytes, sha256 ${sha256(got)} (uploaded ${sha256(data)})`);
      }
      if (download.suggestedFilename() !== name) throw new Error(`the download is named "${download.suggestedFilename()}", not "${name}"`);
      console.log(`\n  downloaded ${got.length} bytes, sha256 ${sha256(got).slice(0, 16)}… as uploaded`);
    });

    await step(page, 'uploads-refused', async () => {
      const r = await rest('PATCH', `/groups/${group.id}`, { settings: { allow_uploads: false } });
      if (r.status !== 200 || r.json?.settings?.allow_uploads !== false) throw new Error(`PATCH /groups/${group.id} answered ${r.status}: ${r.text}`);
      await waitFor('kasm/files to say uploads are not allowed', async () => (await filesInfo(page)).json?.uploads === false, 15_000, 500);
      // The open panel still offers an upload: the server refuses it and the panel shows its words.
      const refused = `kasm-refused-${stamp}.bin`;
      await page.getByLabel('Choose files to upload', { exact: true }).setInputFiles({ name: refused, mimeType: 'application/octet-stream', buffer: randomBytes(1024) });
      const { row, state, status } = await uploadRow(page, refused);
      if (state !== 'error') throw new Error(`an upload went through with uploads not allowed: ${status}`);
      const direct = await page.evaluate(async (n) => {
        const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
        const res = await fetch(`${base}kasm/files/upload?name=${encodeURIComponent(n)}`, {
          method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: new Uint8Array(16),
        });
        return { status: res.status, text: await res.text() };
      }, `${refused}.direct`);
      let message = direct.text.trim();
      try { message = JSON.parse(direct.text).error ?? message; } catch { /* plain text */ }
      if (direct.status !== 403) throw new Error(`the server answered ${direct.status} to an upload with uploads not allowed: ${direct.text}`);
      if (status !== message) throw new Error(`the panel says "${status}", the server "${message}"`);
      const color = await row.locator('.files-status').evaluate((e) => getComputedStyle(e).color);
      console.log(`\n  refused with "${status}" (${color})`);
      // A fresh viewer: Files (downloads are still allowed), but no upload section.
      await openViewer();
      const toggle = page.getByRole('button', { name: 'Files', exact: true });
      await toggle.waitFor({ state: 'visible', timeout: 15_000 });
      await toggle.click();
      await page.locator('#files-box').getByRole('heading', { name: 'Downloads' }).waitFor();
      await page.locator('#files-box').getByRole('link', { name, exact: true }).waitFor({ timeout: 10_000 });
      if ((await page.locator('#files-box .files-upload').count()) !== 0) throw new Error('the panel still has an upload section');
      if ((await page.getByLabel('Choose files to upload', { exact: true }).count()) !== 0) throw new Error('the panel still has a file picker');
    });

    console.log(`file_transfer: all steps passed; screenshots in ${artifacts}`);
  } finally {
    // Leave the server as it was: the group's settings back, no desktop running.
    if (group && savedSettings && rest) {
      const r = await rest('PATCH', `/groups/${group.id}`, { settings: savedSettings }).catch((e) => ({ status: 0, text: e.message }));
      if (r.status !== 200) console.error(`restoring the group's settings: ${r.status} ${r.text}`);
    }
    for (let i = 0; sessionId && rest && i < 5; i++) {
      const r = await rest('DELETE', `/sessions/${sessionId}`).catch((e) => ({ status: 0, text: e.message }));
      if (r.status < 300 || r.status === 404) {
        sessionId = null;
      } else {
        console.error(`deleting the session: ${r.status} ${r.text}`);
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
    rmSync(tmp, { recursive: true, force: true });
    await browser.close();
  }
}

// A global deadline on top of the per-step ones, so nothing can hang ctest.
const overall = setTimeout(() => {
  console.error('file_transfer: the whole test exceeded 7 minutes; giving up');
  process.exit(1);
}, 7 * 60_000);
overall.unref();

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`file_transfer: ${e.message}\nscreenshots and files-page.log in ${artifacts}`);
    process.exit(1);
  },
);
