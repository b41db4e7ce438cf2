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

import {
  adminTestSettings, canvasLit, deleteSession, developerApiClient, DRAWN_TIMEOUT_MS, launchChromium, launchWorkspace,
  logInToDashboard, logPage, newPageLog, openViewer, overrideGroupSettings, patchGroupSettings, restOfContext,
  restoreGroupSettings, runTest, stepsWithScreenshots, viewerSocketUrl, waitFor,
} from './support.mjs';

const { baseUrl, adminUser, adminPassword, apiKey, apiSecret, workspaceName, artifacts } = adminTestSettings('microphone');
const pageLog = newPageLog(artifacts, 'microphone-page.log');
const { step } = stepsWithScreenshots(artifacts, 'microphone');
const developerApi = developerApiClient(baseUrl, apiKey, apiSecret);

const VIEWPORT = { width: 1280, height: 800 };
// Chromium's fake microphone (a beep several times a second), granted without a prompt.
const FAKE_MEDIA = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];
// 1.5 s of the desktop's default source (24 kHz mono s16le), as the session's user: "RMS peak
// samples". --latency-msec asks the null sink for short blocks (else it renders 2 s at a time).
const RECORD_BYTES = 72_000;
const RECORD = 'timeout 6 parec --server=unix:/tmp/kasm-pulse/native --format=s16le --rate=24000 --channels=1 '
  + `--latency-msec=20 --raw 2>/dev/null | head -c ${RECORD_BYTES} | od -An -td2 -w2 -v | `
  + 'awk \'{ s += $1 * $1; a = $1 < 0 ? -$1 : $1; if (a > m) m = a } END { if (NR) print int(sqrt(s / NR)), m + 0, NR; else print -1, 0, 0 }\'';
// The RMS (int16 units) the beeps must reach in the desktop, and what silence must stay under.
const MIN_VOICE_RMS = 100;
const MAX_SILENCE_RMS = 20;

// What the desktop's applications hear now: the default source's RMS and peak over 1.5 s.
async function recordInDesktop(sessionId) {
  const out = (await developerApi.exec(sessionId, RECORD)).trim();
  const [rms, peak, samples] = out.split(/\s+/).map(Number);
  if (!Number.isFinite(rms) || rms < 0 || samples < RECORD_BYTES / 2) throw new Error(`parec recorded nothing usable: "${out}"`);
  return { rms, peak, samples };
}

// The kasm/microphone socket opened from the viewer page itself (its cookie and token), as the
// page does: the text messages the server sends within a moment, and how it ended.
async function probeMicrophoneSocket(page, timeoutMs = 8_000) {
  const url = await viewerSocketUrl(page, 'microphone');
  return page.evaluate(({ url, timeoutMs }) => new Promise((done) => {
    const out = { texts: [], binaries: 0, closed: null, firstTextMs: null };
    const t0 = performance.now();
    const ws = new WebSocket(url);
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
  }), { url, timeoutMs });
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
  let allowed = null; // the admin's group and its settings before the test
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
    logPage(pageLog, page, { websockets: true });

    await step(page, 'login-and-allow-microphone', async () => {
      await logInToDashboard(page, baseUrl, adminUser, adminPassword);
      rest = restOfContext(context, baseUrl);
      allowed = await overrideGroupSettings(rest, { allow_microphone: true });
      console.log(`\n  group "${allowed.group.name}" (was ${JSON.stringify(allowed.saved)}) now allows the microphone`);
    });

    await step(page, 'desktop-in-viewer', async () => {
      sessionId = await launchWorkspace(rest, workspaceName);
      console.log(`\n  session ${sessionId}`);
      await openViewer(page, rest, baseUrl, sessionId);
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
      await patchGroupSettings(rest, allowed.group, { allow_microphone: false });
      await openViewer(page, rest, baseUrl, sessionId);
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
    await restoreGroupSettings(rest, allowed);
    await deleteSession(rest, sessionId);
    await browser.close();
  }
}

runTest('microphone', main, { minutes: 7, whereToLook: `screenshots and microphone-page.log in ${artifacts}` });
