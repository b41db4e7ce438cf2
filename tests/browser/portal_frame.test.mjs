// An integrator's portal frames kasm_url: a page on another origin puts the URL that the developer
// API's request_kasm returned in an <iframe>, and the desktop appears in it and takes typed input.
// Checked in headless Chromium against the real kasm-server: the viewer connects, the canvas is
// drawn, text typed into the frame runs in the desktop's terminal (a file appears in the container,
// read back through exec_command_kasm), and the token is gone from the frame's address.
//
// Environment (tests/browser/run.sh sets it): KASM_URL, KASM_API_KEY, KASM_API_SECRET,
// KASM_PORTAL_PORT (a free loopback port that kasm-server allows as a frame ancestor),
// KASM_ARTIFACTS_DIR, KASM_WEB_DIR, KASM_CHROMIUM.

import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canvasLit, developerApiClient, launchChromium, waitFor } from './support.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const baseUrl = (process.env.KASM_URL ?? '').replace(/\/$/, '');
const apiKey = process.env.KASM_API_KEY ?? '';
const apiSecret = process.env.KASM_API_SECRET ?? '';
const portalPort = Number(process.env.KASM_PORTAL_PORT ?? '0');
const artifacts = resolve(process.env.KASM_ARTIFACTS_DIR ?? 'build/browser-artifacts');
if (!baseUrl || !apiKey || !apiSecret || !portalPort) {
  console.error('portal_frame: set KASM_URL, KASM_API_KEY, KASM_API_SECRET and KASM_PORTAL_PORT (run.sh does)');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const developerApi = developerApiClient(baseUrl, apiKey, apiSecret);

async function main() {
  // The integrator's side: a session for a user, through the developer API.
  const images = (await developerApi.call('get_images', {})).images ?? [];
  const desktop = images.find((i) => i.friendly_name === (process.env.KASM_WORKSPACE_NAME ?? 'Desktop'));
  if (!desktop) throw new Error(`no Desktop among the images: ${JSON.stringify(images.map((i) => i.friendly_name))}`);
  const started = await developerApi.call('request_kasm', { image_id: desktop.image_id });
  const kasmId = started.kasm_id;
  console.log(`portal_frame: kasm ${kasmId}, status ${started.status}`);
  let server;
  const browser = await launchChromium();
  try {
    await waitFor('the session to run', async () =>
      (await developerApi.call('get_kasm_status', { kasm_id: kasmId })).operational_status === 'running', 240_000, 1000);
    const status = await developerApi.call('get_kasm_status', { kasm_id: kasmId });
    const kasmUrl = new URL(status.kasm_url ?? started.kasm_url, baseUrl).toString();

    // The portal: another origin (another port) serving the page of docs/integrating.md, as written
    // there, with the real kasm_url in place of its placeholder.
    const guide = readFileSync(join(here, '..', '..', 'docs', 'integrating.md'), 'utf8');
    const snippet = /```html\n([\s\S]*?)```/.exec(guide)?.[1];
    if (!snippet || !snippet.includes('KASM_URL_FROM_YOUR_SERVER')) throw new Error('docs/integrating.md has no portal <iframe> block');
    const framed = snippet.replace('KASM_URL_FROM_YOUR_SERVER', kasmUrl.replace(/&/g, '&amp;').replace(/"/g, '&quot;'));
    server = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><title>Portal</title><h1>My portal</h1><div style="width:1100px">${framed}</div>`);
    });
    await new Promise((r) => server.listen(portalPort, '127.0.0.1', r));
    const context = await browser.newContext({ viewport: { width: 1200, height: 820 } });
    const page = await context.newPage();
    const viewerRequests = [];
    page.on('request', (r) => {
      if (r.url().startsWith(baseUrl)) viewerRequests.push({ url: r.url(), referer: r.headers()['referer'] ?? '' });
    });
    await page.goto(`http://127.0.0.1:${portalPort}/`);
    const frame = await waitFor('the kasm frame', async () => page.frames().find((f) => f.url().startsWith(baseUrl)), 20_000);

    await waitFor('the viewer to connect (html[data-connection=connected])', async () =>
      (await frame.evaluate(() => document.documentElement.dataset.connection)) === 'connected', 60_000);
    const lit = await waitFor('a drawn desktop in the frame', () => canvasLit(frame), 60_000, 500);
    console.log(`portal_frame: desktop drawn in the frame (${(lit * 100).toFixed(1)}% lit)`);
    if (/token=/.test(frame.url())) throw new Error(`the token is still in the frame's address: ${frame.url()}`);
    for (const r of viewerRequests) {
      if (/token=/.test(r.referer)) throw new Error(`a request carried the token in its Referer: ${r.url}`);
    }

    // Typed text reaches the desktop's terminal: it creates a file the container then has.
    await new Promise((r) => setTimeout(r, 1500));
    await frame.locator('#screen canvas').click({ position: { x: 300, y: 300 } });
    await page.keyboard.type('touch /tmp/typed-in-portal-frame', { delay: 25 });
    await page.keyboard.press('Enter');
    await waitFor('the typed command to run in the desktop', async () =>
      /present/.test(await developerApi.exec(kasmId, 'test -f /tmp/typed-in-portal-frame && echo present')), 30_000, 1000);
    await page.screenshot({ path: join(artifacts, 'portal-frame.png') });

    // get_kasm_screenshot: a PNG of the desktop, 300 pixels wide by default (the server logs in to
    // the desktop's VNC server with the session's password, as a viewer would).
    const shot = await fetch(`${baseUrl}/api/public/get_kasm_screenshot`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ api_key: apiKey, api_key_secret: apiSecret, kasm_id: kasmId }),
    });
    const png = Buffer.from(await shot.arrayBuffer());
    if (shot.status !== 200 || shot.headers.get('content-type') !== 'image/png') {
      throw new Error(`get_kasm_screenshot answered ${shot.status} ${shot.headers.get('content-type')}: ${png.toString().slice(0, 200)}`);
    }
    if (png.subarray(1, 4).toString() !== 'PNG' || png.readUInt32BE(16) !== 300) {
      throw new Error(`get_kasm_screenshot: not a 300-pixel-wide PNG (width ${png.readUInt32BE(16)})`);
    }
    writeFileSync(join(artifacts, 'kasm-screenshot.png'), png);
    console.log(`portal_frame: get_kasm_screenshot gave a ${png.readUInt32BE(16)}x${png.readUInt32BE(20)} PNG`);
    console.log('portal_frame: typed text ran in the desktop; all checks passed');
  } finally {
    await developerApi.call('destroy_kasm', { kasm_id: kasmId }).catch((e) => console.error(`destroy_kasm: ${e.message}`));
    await browser.close();
    server?.close();
  }
}

const overall = setTimeout(() => {
  console.error('portal_frame: exceeded 6 minutes; giving up');
  process.exit(1);
}, 6 * 60_000);
overall.unref();

main().then(() => process.exit(0), (e) => {
  console.error(`portal_frame: ${e.message}`);
  process.exit(1);
});
