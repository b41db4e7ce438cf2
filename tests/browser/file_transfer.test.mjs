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
import { closeSync, ftruncateSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  adminTestSettings, canvasLit, deleteSession, developerApiClient, DRAWN_TIMEOUT_MS, launchChromium, launchWorkspace,
  logInToDashboard, logPage, newPageLog, openViewer, overrideGroupSettings, patchGroupSettings, restOfContext,
  restoreGroupSettings, runTest, stepsWithScreenshots, waitFor,
} from './support.mjs';

const { baseUrl, adminUser, adminPassword, apiKey, apiSecret, workspaceName, artifacts } = adminTestSettings('file_transfer');
const skipDesktop = process.env.KASM_BROWSER_SKIP_DESKTOP === '1';
const pageLog = newPageLog(artifacts, 'files-page.log');
const { step, screenshot } = stepsWithScreenshots(artifacts, 'files');
// Commands run in the desktop's container as its user (HOME=/home/kasm-user).
const developerApi = developerApiClient(baseUrl, apiKey, apiSecret);

const UPLOAD_TIMEOUT_MS = 30_000;
const VIEWPORT = { width: 1280, height: 800 };
const UPLOAD_BYTES = 300 * 1024;

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

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

async function main() {
  const browser = await launchChromium();
  const stamp = Date.now().toString(36);
  const tmp = mkdtempSync(join(tmpdir(), 'kasm-files-'));
  let page = null;
  let rest = null;
  let sessionId = null;
  let allowed = null; // the admin's group and its settings before the test
  try {
    const context = await browser.newContext({ viewport: VIEWPORT, acceptDownloads: true });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    logPage(pageLog, page);

    await step(page, 'login-and-allow-transfer', async () => {
      await logInToDashboard(page, baseUrl, adminUser, adminPassword);
      rest = restOfContext(context, baseUrl);
      allowed = await overrideGroupSettings(rest, { allow_uploads: true, allow_downloads: true });
      console.log(`\n  group "${allowed.group.name}" (was ${JSON.stringify(allowed.saved)}) now allows uploads and downloads`);
    });

    // Without a real desktop behind the session there is no desktop connection to wait for.
    const openSessionViewer = () => openViewer(page, rest, baseUrl, sessionId, { connected: !skipDesktop });

    await step(page, 'desktop-in-viewer', async () => {
      sessionId = await launchWorkspace(rest, workspaceName);
      console.log(`\n  session ${sessionId}`);
      await openSessionViewer();
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
      const inside = await developerApi.exec(sessionId, `sha256sum ~/Uploads/${name}`);
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
      if (!skipDesktop) await developerApi.exec(sessionId, `mkdir -p ~/Downloads && cp ~/Uploads/${name} ~/Downloads/${name}`);
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
      await patchGroupSettings(rest, allowed.group, { allow_uploads: false });
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
      await openSessionViewer();
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
    await restoreGroupSettings(rest, allowed);
    await deleteSession(rest, sessionId);
    rmSync(tmp, { recursive: true, force: true });
    await browser.close();
  }
}

runTest('file_transfer', main, { minutes: 7, whereToLook: `screenshots and files-page.log in ${artifacts}` });
