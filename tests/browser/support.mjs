// What the browser tests share: Debian's Chromium through playwright-core (from web/node_modules),
// and a bounded wait that says what it waited for.

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
