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

import {
  adminTestSettings, canvasLit, deleteSession, developerApiClient, DRAWN_TIMEOUT_MS, launchChromium, launchWorkspace,
  logInToDashboard, logPage, newPageLog, openViewer, overrideGroupSettings, patchGroupSettings, restOfContext,
  restoreGroupSettings, runTest, stepsWithScreenshots, viewerSocketUrl, waitFor,
} from './support.mjs';

const { baseUrl, adminUser, adminPassword, apiKey, apiSecret, workspaceName, artifacts } = adminTestSettings('audio');
const pageLog = newPageLog(artifacts, 'audio-page.log');
const { step } = stepsWithScreenshots(artifacts, 'audio');
const developerApi = developerApiClient(baseUrl, apiKey, apiSecret);

const TONE_TIMEOUT_MS = 15_000;
const VIEWPORT = { width: 1280, height: 800 };
const TONE_HZ = 440;
// How far the tone's bin must stand above the median bin.
const ABOVE_MEDIAN_DB = 30;
const PULSE = '--server=unix:/tmp/kasm-pulse/native';

// The kasm/audio socket opened from the viewer page itself (its cookie and token), as the page
// does: the first text message, the sizes of the first binary messages, and how it ended.
async function probeAudioSocket(page, binaries = 10, timeoutMs = 8_000) {
  const url = await viewerSocketUrl(page, 'audio');
  return page.evaluate(({ url, binaries, timeoutMs }) => new Promise((done) => {
    const out = { texts: [], sizes: [], closed: null, firstBinaryMs: null };
    const t0 = performance.now();
    const ws = new WebSocket(url);
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
  }), { url, binaries, timeoutMs });
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
  let allowed = null; // the admin's group and its settings before the test
  let toneLoaded = false;
  try {
    const context = await browser.newContext({ viewport: VIEWPORT });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    logPage(pageLog, page, { websockets: true });

    await step(page, 'login-and-allow-audio', async () => {
      await logInToDashboard(page, baseUrl, adminUser, adminPassword);
      rest = restOfContext(context, baseUrl);
      allowed = await overrideGroupSettings(rest, { allow_audio: true });
      console.log(`\n  group "${allowed.group.name}" (was ${JSON.stringify(allowed.saved)}) now allows audio`);
    });

    await step(page, 'desktop-in-viewer', async () => {
      sessionId = await launchWorkspace(rest, workspaceName);
      console.log(`\n  session ${sessionId}`);
      await openViewer(page, rest, baseUrl, sessionId);
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
      const index = (await developerApi.exec(sessionId, `pactl ${PULSE} load-module module-sine frequency=${TONE_HZ} sink=kasm_output`)).trim();
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
      await developerApi.exec(sessionId, `pactl ${PULSE} unload-module module-sine`);
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
      await patchGroupSettings(rest, allowed.group, { allow_audio: false });
      await openViewer(page, rest, baseUrl, sessionId);
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
    if (toneLoaded && sessionId) await developerApi.exec(sessionId, `pactl ${PULSE} unload-module module-sine`).catch(() => undefined);
    await restoreGroupSettings(rest, allowed);
    await deleteSession(rest, sessionId);
    await browser.close();
  }
}

runTest('audio', main, { minutes: 7, whereToLook: `screenshots and audio-page.log in ${artifacts}` });
