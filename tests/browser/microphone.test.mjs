// The browser's microphone in the desktop, end to end in headless Chromium (with its fake
// microphone, which beeps) against the real kasm-server and desktop image: the administrator's
// group is made to allow the microphone; the admin launches the desktop and opens its viewer
// (/desktop/<session>/); the proxy's kasm/microphone WebSocket says ready; "Mic" sends 24 kHz mono
// PCM, and the desktop's default source (kasm_mic_sink's monitor), recorded with parec through
// the developer API's exec_command_kasm, carries it: its RMS is well above silence with the
// microphone on and about zero once it is off (and the browser's tracks are stopped). A
// microphone the browser does not allow shows a message; with the microphone no longer allowed, a
// reloaded viewer's "Mic" shows the server's refusal without asking the browser for the
// microphone. It prints the RMS measured in the desktop and the bandwidth sent. The group's
// settings are restored and the session deleted at the end, whatever happened.
//
// Environment (tests/browser/run.sh sets it): KASM_URL, KASM_PASSWORD (the admin's), KASM_USERNAME
// (default admin@kasm.local), KASM_API_KEY and KASM_API_SECRET (a key with sessions:manage),
// KASM_WORKSPACE_NAME (default Desktop), KASM_ARTIFACTS_DIR, KASM_WEB_DIR, KASM_CHROMIUM.

import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { launchChromium, waitFor } from './support.mjs';

const baseUrl = (process.env.KASM_URL ?? '').replace(/\/$/, '');
const adminUser = process.env.KASM_USERNAME ?? 'admin@kasm.local';
const adminPassword = process.env.KASM_PASSWORD ?? '';
const apiKey = process.env.KASM_API_KEY ?? '';
const apiSecret = process.env.KASM_API_SECRET ?? '';
const workspaceName = process.env.KASM_WORKSPACE_NAME ?? 'Desktop';
const artifacts = resolve(process.env.KASM_ARTIFACTS_DIR ?? 'build/browser-artifacts');
if (!baseUrl || !adminPassword || !apiKey || !apiSecret) {
  console.error('microphone: set KASM_URL, KASM_PASSWORD, KASM_API_KEY and KASM_API_SECRET (run.sh does)');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const pageLog = join(artifacts, 'microphone-page.log');
writeFileSync(pageLog, '');

const LAUNCH_TIMEOUT_MS = 240_000;
const DRAWN_TIMEOUT_MS = 60_000;
const VIEWPORT = { width: 1280, height: 800 };
// Chromium's fake microphone (a beep several times a second), granted without a prompt.
const FAKE_MEDIA = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];
// 1.5 s of the desktop's default source (24 kHz mono s16le), as the session's user: "RMS peak
// samples". --latency-msec asks the null sink for short blocks (else it renders 2 s at a time).
const RECORD_BYTES = 72_000;
const RECORD = 'timeout 6 parec --server=unix:/tmp/kasm-pulse/native --format=s16le --rate=24000 --channels=1 '
  + `--latency-msec=20 --raw | head -c ${RECORD_BYTES} | od -An -td2 -w2 -v | `
  + 'awk \'{ s += $1 * $1; a = $1 < 0 ? -$1 : $1; if (a > m) m = a } END { if (NR) print int(sqrt(s / NR)), m + 0, NR; else print -1, 0, 0 }\'';
// The RMS (int16 units) the beeps must reach in the desktop, and what silence must stay under.
const MIN_VOICE_RMS = 100;
const MAX_SILENCE_RMS = 20;

let shot = 0;
async function screenshot(page, name) {
  const file = join(artifacts, `microphone-${String(++shot).padStart(2, '0')}-${name}.png`);
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

// A command in the desktop's container, as its user: its output, or an error naming the exit code.
async function inDesktop(sessionId, cmd) {
  const r = await developerApi('exec_command_kasm', { kasm_id: sessionId, exec_config: { cmd } });
  if (r.exit_code !== undefined && r.exit_code !== 0) throw new Error(`"${cmd}" exited with ${r.exit_code}: ${r.output}`);
  return String(r.output ?? '');
}

// What the desktop's applications hear now: the default source's RMS and peak over 1.5 s.
async function recordInDesktop(sessionId) {
  const out = (await inDesktop(sessionId, RECORD)).trim();
  const [rms, peak, samples] = out.split(/\s+/).map(Number);
  if (!Number.isFinite(rms) || rms < 0 || samples < RECORD_BYTES / 2) throw new Error(`parec recorded nothing usable: "${out}"`);
  return { rms, peak, samples };
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
  page.on('websocket', (ws) => {
    const url = ws.url().replace(/token=[^&]+/, 'token=…');
    appendFileSync(pageLog, `[websocket] open ${url}\n`);
    ws.on('close', () => appendFileSync(pageLog, `[websocket] closed ${url}\n`));
    ws.on('socketerror', (e) => appendFileSync(pageLog, `[websocket] error ${url}: ${e}\n`));
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

// The kasm/microphone socket opened from the viewer page itself (its cookie and token), as the
// page does: the text messages the server sends within a moment, and how it ended.
async function probeMicrophoneSocket(page, timeoutMs = 8_000) {
  return page.evaluate(({ timeoutMs }) => new Promise((done) => {
    const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
    const u = new URL(`${base}kasm/microphone`, location.href);
    u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const token = JSON.parse(document.querySelector('meta[name="kasm-viewer"]').content).token;
    u.search = `token=${encodeURIComponent(token)}`;
    const out = { texts: [], binaries: 0, closed: null, firstTextMs: null };
    const t0 = performance.now();
    const ws = new WebSocket(u);
    ws.binaryType = 'arraybuffer';
    const finish = () => { clearTimeout(timer); try { ws.close(); } catch { /* closed */ } done(out); };
    const timer = setTimeout(finish, timeoutMs);
    ws.onmessage = (e) => {
      if (typeof e.data !== 'string') { out.binaries++; return; }
      if (out.firstTextMs === null) out.firstTextMs = Math.round(performance.now() - t0);
      out.texts.push(e.data);
      // Ready: the answer is in; leave nothing playing into the desktop.
      if (out.texts.length === 1) setTimeout(finish, 300);
    };
    ws.onclose = (e) => { out.closed = { code: e.code, reason: e.reason }; finish(); };
  }), { timeoutMs });
}

const stats = (page) => page.evaluate(() => ({ ...window.kasmMicrophone.stats }));
// What the page got from getUserMedia (wrapped by an init script): calls, and tracks still live.
const gum = (page) => page.evaluate(() => ({
  calls: window.__kasmGum.calls,
  live: window.__kasmGum.streams.flatMap((s) => s.getTracks()).filter((t) => t.readyState === 'live').length,
}));

async function main() {
  const browser = await launchChromium(FAKE_MEDIA);
  let page = null;
  let rest = null;
  let sessionId = null;
  let group = null;
  let savedSettings = null;
  try {
    const context = await browser.newContext({ viewport: VIEWPORT });
    context.setDefaultTimeout(15_000);
    // Every getUserMedia the page makes, counted, and its streams kept to see their tracks stop.
    await context.addInitScript(() => {
      window.__kasmGum = { calls: 0, streams: [] };
      const md = navigator.mediaDevices;
      if (!md?.getUserMedia) return;
      const original = md.getUserMedia.bind(md);
      md.getUserMedia = async (constraints) => {
        window.__kasmGum.calls++;
        const s = await original(constraints);
        window.__kasmGum.streams.push(s);
        return s;
      };
    });
    page = await context.newPage();
    logPage(page);

    await step(page, 'login-and-allow-microphone', async () => {
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
      savedSettings = { allow_microphone: Boolean(group.settings?.allow_microphone) };
      const r = await rest('PATCH', `/groups/${group.id}`, { settings: { allow_microphone: true } });
      if (r.status !== 200 || r.json?.settings?.allow_microphone !== true) throw new Error(`PATCH /groups/${group.id} answered ${r.status}: ${r.text}`);
      console.log(`\n  group "${group.name}" (was ${JSON.stringify(savedSettings)}) now allows the microphone`);
    });

    const openViewer = async () => {
      const s = await waitFor('the session to run with a viewer url', async () => {
        const r = await rest('GET', `/sessions/${sessionId}`);
        if (r.status !== 200) throw new Error(`GET /sessions/${sessionId} answered ${r.status}: ${r.text}`);
        if (r.json.state === 'failed' || r.json.state === 'destroyed') throw new Error(`the session ${r.json.state}: ${r.json.state_reason ?? ''}`);
        return r.json.state === 'running' && r.json.url ? r.json : null;
      }, LAUNCH_TIMEOUT_MS, 1_000);
      await page.goto(new URL(s.url, baseUrl).toString());
      await waitFor('the viewer page', async () => new URL(page.url()).pathname === `/desktop/${sessionId}/`, 20_000);
      await waitFor('the desktop connection', async () =>
        (await page.evaluate(() => document.documentElement.dataset.connection)) === 'connected', DRAWN_TIMEOUT_MS);
    };

    await step(page, 'desktop-in-viewer', async () => {
      sessionId = await launchDesktop(rest);
      console.log(`\n  session ${sessionId}`);
      await openViewer();
      await waitFor('a drawn desktop in the viewer', () => canvasLit(page), DRAWN_TIMEOUT_MS, 500);
    });

    await step(page, 'microphone-socket', async () => {
      // The server's side of the contract, seen from the page: one text message, ready.
      const p = await probeMicrophoneSocket(page);
      if (p.texts.length === 0) throw new Error(`no text message (closed ${JSON.stringify(p.closed)})`);
      const header = JSON.parse(p.texts[0]);
      if (header.error) throw new Error(`the server refused the microphone: ${header.error}`);
      if (header.ready !== true || header.format !== 's16le' || header.rate !== 24000 || header.channels !== 1) throw new Error(`unexpected first message ${p.texts[0]}`);
      if (p.binaries) throw new Error(`the server sent ${p.binaries} binary message(s)`);
      console.log(`\n  ${p.texts[0]} after ${p.firstTextMs} ms`);
    });

    let silenceBefore = null;
    await step(page, 'mic-on', async () => {
      silenceBefore = await recordInDesktop(sessionId);
      const button = page.locator('#mic-toggle');
      await button.waitFor({ state: 'visible' });
      if ((await button.innerText()).trim() !== 'Mic off') throw new Error(`the button says "${await button.innerText()}" before the click`);
      if ((await gum(page)).calls !== 0) throw new Error('the page asked for the microphone before the click');
      await button.click();
      await waitFor('"Mic on" and PCM sent', async () => {
        const s = await stats(page);
        if (s.state === 'error') throw new Error(`the page says: ${s.error}`);
        return s.state === 'on' && s.bytesSent > 0 ? s : null;
      }, 10_000);
      if ((await button.innerText()).trim() !== 'Mic on') throw new Error(`the button says "${await button.innerText()}"`);
      if ((await button.getAttribute('aria-pressed')) !== 'true') throw new Error('the button is not pressed');
      if (!(await page.locator('#mic-level').isVisible())) throw new Error('no level meter while the microphone is on');
      const g = await gum(page);
      if (g.calls !== 1 || g.live !== 1) throw new Error(`getUserMedia: ${JSON.stringify(g)}`);
      const s = await stats(page);
      console.log(`\n  before: the desktop's default source RMS ${silenceBefore.rms} (peak ${silenceBefore.peak}); capture context at ${s.contextRate} Hz`);
    });

    await step(page, 'voice-in-desktop', async () => {
      const a = await stats(page);
      const t0 = Date.now();
      let level = 0;
      const sampling = (async () => {
        while (Date.now() - t0 < 2_500) {
          level = Math.max(level, (await stats(page)).level);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const heard = await recordInDesktop(sessionId);
      await sampling;
      const b = await stats(page);
      const seconds = (Date.now() - t0) / 1000;
      const rate = (b.bytesSent - a.bytesSent) / seconds;
      const expected = 24000 * 2;
      console.log(`\n  the desktop's default source: RMS ${heard.rms}, peak ${heard.peak} over ${heard.samples} samples (microphone on)`);
      console.log(`  sent ${Math.round(rate)} bytes/s (${(rate * 8 / 1000).toFixed(0)} kbit/s; the format makes ${expected}), ${((b.messagesSent - a.messagesSent) / seconds).toFixed(1)} messages/s, ${Math.round((b.bytesSent - a.bytesSent) / Math.max(1, b.messagesSent - a.messagesSent))} bytes each; page level up to ${level}`);
      if (b.state !== 'on') throw new Error(`the microphone is ${b.state}: ${b.error}`);
      if (heard.rms <= MIN_VOICE_RMS) throw new Error(`the desktop hears RMS ${heard.rms}, not above ${MIN_VOICE_RMS}`);
      if (rate < expected * 0.8 || rate > expected * 1.2) throw new Error(`the page sends ${Math.round(rate)} bytes/s, not about ${expected}`);
      if (!(level > 0.01)) throw new Error(`the page's level stayed at ${level}`);
    });

    await step(page, 'mic-off', async () => {
      const button = page.locator('#mic-toggle');
      await button.click();
      await waitFor('"Mic off"', async () => (await button.innerText()).trim() === 'Mic off', 5_000, 100);
      const s = await stats(page);
      if (s.state !== 'off') throw new Error(`state ${s.state} after turning the microphone off`);
      if (await page.locator('#mic-level').isVisible()) throw new Error('the level meter stayed');
      const g = await gum(page);
      if (g.live !== 0) throw new Error(`${g.live} microphone track(s) still live`);
      const before = s.bytesSent;
      await new Promise((r) => setTimeout(r, 500));
      if ((await stats(page)).bytesSent !== before) throw new Error('PCM still sent with the microphone off');
      const quiet = await recordInDesktop(sessionId);
      console.log(`\n  the desktop's default source: RMS ${quiet.rms}, peak ${quiet.peak} (microphone off)`);
      if (quiet.rms >= MAX_SILENCE_RMS) throw new Error(`the desktop still hears RMS ${quiet.rms} with the microphone off`);
    });

    await step(page, 'browser-denies', async () => {
      // The browser (or the user) says no: the page says so, and nothing stays open.
      await page.evaluate(() => {
        navigator.mediaDevices.getUserMedia = async () => {
          window.__kasmGum.calls++;
          throw new DOMException('Permission denied', 'NotAllowedError');
        };
      });
      const calls = (await gum(page)).calls;
      await page.locator('#mic-toggle').click();
      const box = page.locator('#mic-error');
      await box.waitFor({ state: 'visible', timeout: 10_000 });
      const shown = (await box.innerText()).trim();
      if (!/did not allow the microphone/.test(shown)) throw new Error(`the page shows "${shown}"`);
      if ((await gum(page)).calls !== calls + 1) throw new Error('getUserMedia was not asked');
      const s = await stats(page);
      if (s.state !== 'error' || (await page.locator('#mic-toggle').innerText()).trim() !== 'Mic off') throw new Error(`after the denial: state ${s.state}`);
      await box.click();
      await box.waitFor({ state: 'hidden', timeout: 2_000 });
      console.log(`\n  denied: "${shown}"`);
    });

    await step(page, 'microphone-refused', async () => {
      const r = await rest('PATCH', `/groups/${group.id}`, { settings: { allow_microphone: false } });
      if (r.status !== 200 || r.json?.settings?.allow_microphone !== false) throw new Error(`PATCH /groups/${group.id} answered ${r.status}: ${r.text}`);
      await openViewer();
      // The server's words, from a socket of our own.
      const p = await probeMicrophoneSocket(page);
      const refusal = p.texts.map((t) => { try { return JSON.parse(t).error; } catch { return undefined; } }).find((e) => typeof e === 'string');
      if (!refusal) throw new Error(`the server did not refuse: ${JSON.stringify(p)}`);
      const button = page.locator('#mic-toggle');
      await button.waitFor({ state: 'visible' });
      await button.click();
      const box = page.locator('#mic-error');
      await box.waitFor({ state: 'visible', timeout: 10_000 });
      const shown = (await box.innerText()).trim();
      if (shown !== refusal) throw new Error(`the page shows "${shown}", the server said "${refusal}"`);
      if ((await box.getAttribute('role')) !== 'alert') throw new Error('the refusal is not an alert');
      if ((await button.innerText()).trim() !== 'Mic off') throw new Error(`the button says "${await button.innerText()}" after the refusal`);
      const s = await stats(page);
      if (s.state !== 'error' || s.bytesSent !== 0) throw new Error(`after the refusal: state ${s.state}, ${s.bytesSent} bytes`);
      if ((await gum(page)).calls !== 0) throw new Error('the page asked the browser for the microphone although the server refused it');
      console.log(`\n  refused with "${shown}" (closed ${JSON.stringify(p.closed)})`);
    });

    console.log(`microphone: all steps passed; screenshots in ${artifacts}`);
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
    await browser.close();
  }
}

// A global deadline on top of the per-step ones, so nothing can hang ctest.
const overall = setTimeout(() => {
  console.error('microphone: the whole test exceeded 7 minutes; giving up');
  process.exit(1);
}, 7 * 60_000);
overall.unref();

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`microphone: ${e.message}\nscreenshots and microphone-page.log in ${artifacts}`);
    process.exit(1);
  },
);
