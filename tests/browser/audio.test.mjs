// The desktop's sound in the session viewer, end to end in headless Chromium against the real
// kasm-server and desktop image: the administrator's group is made to allow audio; the admin
// launches the desktop and opens its viewer (/desktop/<session>/); "Sound" opens the proxy's
// kasm/audio WebSocket (its first message is the stream's format, then whole PCM frames); a 440 Hz
// tone made in the session (PulseAudio's module-sine, loaded with the developer API's
// exec_command_kasm) shows in the page's AnalyserNode (window.kasmAudio.analyser) as the loudest
// frequency bin, well above the rest, and goes away when the module is unloaded. It prints the
// stream's bandwidth, the jitter buffer's latency and how long a tone takes from the exec that
// starts it to the browser. With audio no longer allowed, a reloaded viewer's "Sound" shows the
// server's refusal. The group's settings are restored and the session deleted at the end, whatever
// happened.
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
  console.error('audio: set KASM_URL, KASM_PASSWORD, KASM_API_KEY and KASM_API_SECRET (run.sh does)');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const pageLog = join(artifacts, 'audio-page.log');
writeFileSync(pageLog, '');

const LAUNCH_TIMEOUT_MS = 240_000;
const DRAWN_TIMEOUT_MS = 60_000;
const TONE_TIMEOUT_MS = 15_000;
const VIEWPORT = { width: 1280, height: 800 };
const TONE_HZ = 440;
// How far the tone's bin must stand above the median bin.
const ABOVE_MEDIAN_DB = 30;
const PULSE = '--server=unix:/tmp/kasm-pulse/native';

let shot = 0;
async function screenshot(page, name) {
  const file = join(artifacts, `audio-${String(++shot).padStart(2, '0')}-${name}.png`);
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

// The kasm/audio socket opened from the viewer page itself (its cookie and token), as the page
// does: the first text message, the sizes of the first binary messages, and how it ended.
async function probeAudioSocket(page, binaries = 10, timeoutMs = 8_000) {
  return page.evaluate(({ binaries, timeoutMs }) => new Promise((done) => {
    const base = location.pathname.endsWith('/') ? location.pathname : `${location.pathname}/`;
    const u = new URL(`${base}kasm/audio`, location.href);
    u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const token = JSON.parse(document.querySelector('meta[name="kasm-viewer"]').content).token;
    u.search = `token=${encodeURIComponent(token)}`;
    const out = { texts: [], sizes: [], closed: null, firstBinaryMs: null };
    const t0 = performance.now();
    const ws = new WebSocket(u);
    ws.binaryType = 'arraybuffer';
    const finish = () => { clearTimeout(timer); try { ws.close(); } catch { /* closed */ } done(out); };
    const timer = setTimeout(finish, timeoutMs);
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') out.texts.push(e.data);
      else {
        if (out.firstBinaryMs === null) out.firstBinaryMs = Math.round(performance.now() - t0);
        out.sizes.push(e.data.byteLength);
      }
      if (out.sizes.length >= binaries) finish();
    };
    ws.onclose = (e) => { out.closed = { code: e.code, reason: e.reason }; finish(); };
  }), { binaries, timeoutMs });
}

// Installs, in the page, a watcher of the analyser: every few ms it reads the spectrum and notes
// the first moment (Date.now(), the same clock as this process) when the tone's bin stands
// ABOVE_MEDIAN_DB above the median bin and is (within a bin) the loudest.
async function watchTone(page) {
  await page.evaluate(({ hz, above }) => {
    const a = window.kasmAudio;
    const analyser = a.analyser;
    const bins = new Float32Array(analyser.frequencyBinCount);
    const binHz = a.context.sampleRate / analyser.fftSize;
    const want = hz / binHz;
    const w = { onsetAt: null, samples: 0 };
    window.__kasmTone = w;
    clearInterval(window.__kasmToneTimer);
    window.__kasmToneTimer = setInterval(() => {
      analyser.getFloatFrequencyData(bins);
      w.samples++;
      let peak = 1;
      for (let i = 2; i < bins.length; i++) if (bins[i] > bins[peak]) peak = i;
      const sorted = Array.from(bins).sort((x, y) => x - y);
      const median = sorted[sorted.length >> 1];
      if (w.onsetAt === null && Math.abs(peak - want) <= 1 && bins[peak] - Math.max(median, -160) >= above) {
        w.onsetAt = Date.now();
        clearInterval(window.__kasmToneTimer);
      }
    }, 2);
  }, { hz: TONE_HZ, above: ABOVE_MEDIAN_DB });
}

// The spectrum now: the loudest bin (its frequency), the tone's bin, the median, and the RMS level.
async function spectrum(page) {
  return page.evaluate((hz) => {
    const a = window.kasmAudio;
    const analyser = a.analyser;
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    const time = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(time);
    let sum = 0;
    for (const v of time) sum += v * v;
    const rms = Math.sqrt(sum / time.length);
    const binHz = a.context.sampleRate / analyser.fftSize;
    let peak = 1;
    for (let i = 2; i < bins.length; i++) if (bins[i] > bins[peak]) peak = i;
    const sorted = Array.from(bins).sort((x, y) => x - y);
    const toneBin = Math.round(hz / binHz);
    const toneDb = Math.max(bins[toneBin - 1], bins[toneBin], bins[toneBin + 1]);
    return {
      binHz, peakBin: peak, peakHz: peak * binHz, peakDb: bins[peak], toneBin: hz / binHz, toneDb,
      medianDb: sorted[sorted.length >> 1], rmsDb: rms > 0 ? 20 * Math.log10(rms) : -Infinity,
    };
  }, TONE_HZ);
}

const stats = (page) => page.evaluate(() => ({ ...window.kasmAudio.stats, contextState: window.kasmAudio.context?.state ?? null }));
const fmt = (v) => (Number.isFinite(v) ? v.toFixed(1) : String(v));

async function main() {
  const browser = await launchChromium();
  let page = null;
  let rest = null;
  let sessionId = null;
  let group = null;
  let savedSettings = null;
  let toneLoaded = false;
  try {
    const context = await browser.newContext({ viewport: VIEWPORT });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    logPage(page);

    await step(page, 'login-and-allow-audio', async () => {
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
      savedSettings = { allow_audio: Boolean(group.settings?.allow_audio) };
      const r = await rest('PATCH', `/groups/${group.id}`, { settings: { allow_audio: true } });
      if (r.status !== 200 || r.json?.settings?.allow_audio !== true) throw new Error(`PATCH /groups/${group.id} answered ${r.status}: ${r.text}`);
      console.log(`\n  group "${group.name}" (was ${JSON.stringify(savedSettings)}) now allows audio`);
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

    await step(page, 'audio-socket', async () => {
      // The server's side of the contract, seen from the page: the format first, then whole frames.
      const p = await probeAudioSocket(page);
      if (p.texts.length === 0) throw new Error(`no text message first (closed ${JSON.stringify(p.closed)}, ${p.sizes.length} binary)`);
      const header = JSON.parse(p.texts[0]);
      if (header.error) throw new Error(`the server refused the sound: ${header.error}`);
      if (header.format !== 's16le' || header.rate !== 24000 || header.channels !== 2) throw new Error(`unexpected format ${p.texts[0]}`);
      if (p.sizes.length === 0) throw new Error('no PCM within 8 s');
      const odd = p.sizes.filter((n) => n % 4 !== 0);
      if (odd.length) throw new Error(`binary messages that are not whole frames: ${odd.join(', ')}`);
      console.log(`\n  ${p.texts[0]}; first PCM after ${p.firstBinaryMs} ms; message sizes ${p.sizes.join(', ')}`);
    });

    await step(page, 'sound-on', async () => {
      const button = page.locator('#sound-toggle');
      await button.waitFor({ state: 'visible' });
      if ((await button.innerText()).trim() !== 'Sound off') throw new Error(`the button says "${await button.innerText()}" before the click`);
      await button.click();
      await waitFor('"Sound on" and PCM arriving', async () => {
        const s = await stats(page);
        return s.state === 'on' && s.bytes > 0 && s.contextState === 'running' ? s : null;
      }, 10_000);
      if ((await button.innerText()).trim() !== 'Sound on') throw new Error(`the button says "${await button.innerText()}"`);
      if ((await button.getAttribute('aria-pressed')) !== 'true') throw new Error('the button is not pressed');
      if (!(await page.locator('#sound-level').isVisible())) throw new Error('no level meter while sound is on');
      const s = await stats(page);
      console.log(`\n  context ${s.contextState} at ${s.contextRate} Hz, stream ${JSON.stringify(s.format)}`);
    });

    let onsetMs = null;
    await step(page, 'tone-440', async () => {
      await watchTone(page);
      const before = await spectrum(page);
      const t0 = Date.now();
      const index = (await inDesktop(sessionId, `pactl ${PULSE} load-module module-sine frequency=${TONE_HZ} sink=kasm_output`)).trim();
      toneLoaded = true;
      const execMs = Date.now() - t0;
      const onsetAt = await waitFor('the 440 Hz tone in the analyser', () => page.evaluate(() => window.__kasmTone.onsetAt), TONE_TIMEOUT_MS, 20);
      onsetMs = onsetAt - t0;
      // A little later, steady: the loudest bin is the tone's, far above the rest.
      await new Promise((r) => setTimeout(r, 300));
      const sp = await spectrum(page);
      if (Math.abs(sp.peakBin - sp.toneBin) > 1) throw new Error(`the loudest bin is ${fmt(sp.peakHz)} Hz (bin ${sp.peakBin}), not ${TONE_HZ} Hz (bin ${fmt(sp.toneBin)})`);
      if (sp.peakDb - sp.medianDb < ABOVE_MEDIAN_DB) throw new Error(`the tone is only ${fmt(sp.peakDb - sp.medianDb)} dB above the median bin`);
      console.log(`\n  module-sine #${index} (exec ${execMs} ms); before: peak ${fmt(before.peakDb)} dB, rms ${fmt(before.rmsDb)} dBFS`);
      console.log(`  peak ${fmt(sp.peakHz)} Hz (bin ${sp.peakBin}, ${fmt(sp.binHz)} Hz per bin; ${TONE_HZ} Hz is bin ${fmt(sp.toneBin)}), ${fmt(sp.peakDb)} dB, median ${fmt(sp.medianDb)} dB, rms ${fmt(sp.rmsDb)} dBFS`);
      console.log(`  tone onset to browser ~${onsetMs} ms (includes the exec round trip)`);
    });

    await step(page, 'measure', async () => {
      const a = await stats(page);
      const ahead = [];
      const t0 = Date.now();
      while (Date.now() - t0 < 3_000) {
        ahead.push((await stats(page)).scheduledAheadMs);
        await new Promise((r) => setTimeout(r, 100));
      }
      const b = await stats(page);
      const seconds = (Date.now() - t0) / 1000;
      const rate = (b.bytes - a.bytes) / seconds;
      ahead.sort((x, y) => x - y);
      const expected = 24000 * 2 * 2;
      console.log(`\n  bandwidth ${Math.round(rate)} bytes/s (${(rate * 8 / 1000).toFixed(0)} kbit/s; the format makes ${expected}), ${((b.messages - a.messages) / seconds).toFixed(1)} messages/s`);
      console.log(`  jitter buffer (scheduledAheadMs) min ${ahead[0]} / median ${ahead[ahead.length >> 1]} / max ${ahead[ahead.length - 1]} ms; underruns ${b.underruns}, resyncs ${b.resyncs} since Sound on`);
      const lat = await page.evaluate(() => ({ base: window.kasmAudio.context.baseLatency, output: window.kasmAudio.context.outputLatency }));
      console.log(`  context baseLatency ${Math.round((lat.base ?? 0) * 1000)} ms, outputLatency ${Math.round((lat.output ?? 0) * 1000)} ms`);
      if (rate < expected * 0.8 || rate > expected * 1.2) throw new Error(`the stream carries ${Math.round(rate)} bytes/s, not about ${expected}`);
      if (ahead[ahead.length >> 1] > 300) throw new Error(`the jitter buffer holds ${ahead[ahead.length >> 1]} ms`);
    });

    await step(page, 'tone-off', async () => {
      const on = await spectrum(page);
      await inDesktop(sessionId, `pactl ${PULSE} unload-module module-sine`);
      toneLoaded = false;
      const off = await waitFor('the tone to go', async () => {
        const sp = await spectrum(page);
        return on.toneDb - sp.toneDb >= ABOVE_MEDIAN_DB && sp.rmsDb < on.rmsDb - 30 ? sp : null;
      }, TONE_TIMEOUT_MS, 100);
      console.log(`\n  440 Hz bin ${fmt(on.toneDb)} -> ${fmt(off.toneDb)} dB, rms ${fmt(on.rmsDb)} -> ${fmt(off.rmsDb)} dBFS`);
      const s = await stats(page);
      if (s.state !== 'on') throw new Error(`sound is ${s.state} after the tone`);
    });

    await step(page, 'sound-off', async () => {
      const button = page.locator('#sound-toggle');
      await button.click();
      await waitFor('"Sound off"', async () => (await button.innerText()).trim() === 'Sound off', 5_000, 100);
      const s = await stats(page);
      if (s.state !== 'off') throw new Error(`state ${s.state} after turning sound off`);
      if (await page.locator('#sound-level').isVisible()) throw new Error('the level meter stayed');
      const before = s.bytes;
      await new Promise((r) => setTimeout(r, 500));
      if ((await stats(page)).bytes !== before) throw new Error('PCM still arrives with sound off');
    });

    await step(page, 'audio-refused', async () => {
      const r = await rest('PATCH', `/groups/${group.id}`, { settings: { allow_audio: false } });
      if (r.status !== 200 || r.json?.settings?.allow_audio !== false) throw new Error(`PATCH /groups/${group.id} answered ${r.status}: ${r.text}`);
      await openViewer();
      // The server's words, from a socket of our own.
      const p = await probeAudioSocket(page, 1, 8_000);
      const refusal = p.texts.map((t) => { try { return JSON.parse(t).error; } catch { return undefined; } }).find((e) => typeof e === 'string');
      if (!refusal) throw new Error(`the server did not refuse: ${JSON.stringify(p)}`);
      if (p.sizes.length) throw new Error(`the server refused and sent ${p.sizes.length} binary message(s)`);
      const button = page.locator('#sound-toggle');
      await button.waitFor({ state: 'visible' });
      await button.click();
      const box = page.locator('#sound-error');
      await box.waitFor({ state: 'visible', timeout: 10_000 });
      const shown = (await box.innerText()).trim();
      if (shown !== refusal) throw new Error(`the page shows "${shown}", the server said "${refusal}"`);
      if ((await box.getAttribute('role')) !== 'alert') throw new Error('the refusal is not an alert');
      if ((await button.innerText()).trim() !== 'Sound off') throw new Error(`the button says "${await button.innerText()}" after the refusal`);
      const s = await stats(page);
      if (s.state !== 'error' || s.bytes !== 0) throw new Error(`after the refusal: state ${s.state}, ${s.bytes} bytes`);
      console.log(`\n  refused with "${shown}" (closed ${JSON.stringify(p.closed)})`);
    });

    console.log(`audio: all steps passed; screenshots in ${artifacts}`);
  } finally {
    // Leave the server as it was: the group's settings back, no tone, no desktop running.
    if (toneLoaded && sessionId) await inDesktop(sessionId, `pactl ${PULSE} unload-module module-sine`).catch(() => undefined);
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
  console.error('audio: the whole test exceeded 7 minutes; giving up');
  process.exit(1);
}, 7 * 60_000);
overall.unref();

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`audio: ${e.message}\nscreenshots and audio-page.log in ${artifacts}`);
    process.exit(1);
  },
);
