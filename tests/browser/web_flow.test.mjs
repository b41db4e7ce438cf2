// The web application end to end in headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core): log in (a wrong password first), see the dashboard, launch the desktop, wait
// for the remote desktop to be drawn, type into its terminal and see the screen change, delete the
// session, then drain an agent as an administrator. Every wait is bounded and says what it waited
// for; a screenshot of each step goes to KASM_ARTIFACTS_DIR.
//
// Environment:
//   KASM_URL               base URL of a running kasm-server (required), e.g. http://127.0.0.1:8443
//   KASM_PASSWORD          the admin password (required); KASM_USERNAME defaults to admin@kasm.local
//   KASM_WORKSPACE_NAME    friendly name of the workspace to launch (default: Desktop)
//   KASM_ARTIFACTS_DIR     where screenshots and the page log go (default: build/browser-artifacts)
//   KASM_WEB_DIR           the web/ directory whose node_modules has playwright-core (default: ../../web)
//   KASM_CHROMIUM          the browser binary (default: /usr/bin/chromium)
//   KASM_BROWSER_SKIP_DESKTOP=1  skip the steps that need a real desktop (for a run against
//                          web/dev/mock-server.mjs, which has no VNC behind its sessions)

import { mkdirSync, appendFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  DRAWN_TIMEOUT_MS, LAUNCH_TIMEOUT_MS, launchChromium, newPageLog, runTest, stepsWithScreenshots, waitFor,
} from './support.mjs';

const baseUrl = (process.env.KASM_URL ?? '').replace(/\/$/, '');
const username = process.env.KASM_USERNAME ?? 'admin@kasm.local';
const password = process.env.KASM_PASSWORD ?? '';
const workspaceName = process.env.KASM_WORKSPACE_NAME ?? 'Desktop';
const artifacts = resolve(process.env.KASM_ARTIFACTS_DIR ?? 'build/browser-artifacts');
const skipDesktop = process.env.KASM_BROWSER_SKIP_DESKTOP === '1';

if (!baseUrl || !password) {
  console.error('web_flow: set KASM_URL and KASM_PASSWORD (tests/browser/run.sh does)');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const pageLog = newPageLog(artifacts, 'page.log');

// Screenshots NN-<step>.png in the artifacts directory.
const { step, screenshot } = stepsWithScreenshots(artifacts, '');

// An error the steps below make themselves (the launch's wait tells it from its own timeout).
class StepError extends Error {}

// Fraction of non-black pixels and a checksum of the noVNC canvas (sampled on a grid).
async function canvasStats(page) {
  return page.evaluate(() => {
    const canvas = document.querySelector('#screen canvas');
    if (!canvas || canvas.width === 0 || canvas.height === 0) return null;
    const ctx = canvas.getContext('2d');
    const { width, height } = canvas;
    const data = ctx.getImageData(0, 0, width, height).data;
    let lit = 0;
    let samples = 0;
    let hash = 0;
    const step = 4;
    for (let y = 0; y < height; y += step) {
      for (let x = 0; x < width; x += step) {
        const i = (y * width + x) * 4;
        const r = data[i], g = data[i + 1], b = data[i + 2];
        samples++;
        if (r + g + b > 30) lit++;
        hash = (Math.imul(hash, 31) + r * 65536 + g * 256 + b) | 0;
      }
    }
    return { width, height, litFraction: lit / samples, hash };
  });
}

async function visibleAlert(page) {
  const alerts = page.locator('[role=alert]:visible');
  const n = await alerts.count();
  for (let i = 0; i < n; i++) {
    const t = (await alerts.nth(i).innerText()).trim();
    if (t) return t;
  }
  return '';
}

async function main() {
  const browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  page.on('console', (m) => appendFileSync(pageLog, `[console.${m.type()}] ${m.text()}\n`));
  page.on('pageerror', (e) => appendFileSync(pageLog, `[pageerror] ${e.message}\n`));
  page.on('dialog', (d) => d.accept()); // The delete confirmations.

  let sessionId = null;
  try {
    await step(page, 'login-page', async () => {
      await page.goto(`${baseUrl}/`, { waitUntil: 'domcontentloaded' });
      await page.getByRole('heading', { name: 'Log in to Kasm' }).waitFor({ timeout: 20_000 });
      await page.getByLabel('Username').waitFor();
      await page.getByLabel('Password').waitFor();
    });

    await step(page, 'wrong-password', async () => {
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill(`${password}-wrong`);
      await page.getByRole('button', { name: 'Log in' }).click();
      const text = await waitFor('the wrong-password message', () => visibleAlert(page), 15_000);
      if (!/wrong username or password/i.test(text)) throw new Error(`expected "Wrong username or password", got "${text}"`);
    });

    await step(page, 'dashboard', async () => {
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'Workspaces', exact: true }).waitFor({ timeout: 20_000 });
      await page.getByRole('button', { name: new RegExp(`^Launch ${workspaceName}$`, 'i') }).first().waitFor({ timeout: 20_000 });
      await page.getByRole('link', { name: 'Admin' }).waitFor();
    });

    await step(page, 'launch', async () => {
      await page.getByRole('button', { name: new RegExp(`^Launch ${workspaceName}$`, 'i') }).first().click();
      const progress = new Set();
      await waitFor(`the session page (launch of ${workspaceName})`, async () => {
        if (/\/session\/[^/]+/.test(new URL(page.url()).pathname)) return true;
        const msg = await page.locator('.launch-message').innerText().catch(() => '');
        if (msg && !progress.has(msg)) {
          progress.add(msg);
          console.log(`\n  launch: ${msg}`);
          if (progress.size === 1) await screenshot(page, 'launch-progress');
        }
        const alert = await visibleAlert(page);
        if (alert) throw new StepError(`the launch failed: ${alert}`);
        return false;
      }, LAUNCH_TIMEOUT_MS, 500).catch((e) => {
        throw e instanceof StepError ? new Error(e.message) : e;
      });
      sessionId = decodeURIComponent(new URL(page.url()).pathname.split('/')[2]);
      console.log(`\n  session ${sessionId}`);
    });

    if (!skipDesktop) {
      let drawn;
      await step(page, 'desktop-drawn', async () => {
        await waitFor('the desktop connection (#screen[data-connection=connected])', async () => {
          const state = await page.locator('#screen').getAttribute('data-connection');
          if (state === 'ended') throw new StepError(`the session ended: ${await visibleAlert(page)}`);
          return state === 'connected';
        }, DRAWN_TIMEOUT_MS);
        drawn = await waitFor('a non-black remote desktop canvas', async () => {
          const s = await canvasStats(page);
          return s && s.litFraction > 0.01 ? s : null;
        }, DRAWN_TIMEOUT_MS, 500);
        console.log(`\n  canvas ${drawn.width}x${drawn.height}, ${(drawn.litFraction * 100).toFixed(1)}% lit`);
      });

      // The desktop fits its window (issue 22): the viewer asks the desktop to take the size of the
      // screen area (RFB SetDesktopSize, which the images' Xvnc accepts), and follows the window
      // and the panel being hidden.
      const fits = async () => page.evaluate(() => {
        const screen = document.querySelector('#screen');
        const canvas = document.querySelector('#screen canvas');
        if (!screen || !canvas) return null;
        return { cw: canvas.width, ch: canvas.height, sw: screen.clientWidth, sh: screen.clientHeight };
      });
      const fitted = (f) => f && Math.abs(f.cw - f.sw) <= 2 && Math.abs(f.ch - f.sh) <= 2;
      await step(page, 'desktop-fits-window', async () => {
        const first = await waitFor('the desktop to take the size of its window', async () => {
          const f = await fits();
          return fitted(f) ? f : null;
        }, 20_000, 300).catch(async (e) => { throw new StepError(`${e.message}: ${JSON.stringify(await fits())}`); });
        await page.setViewportSize({ width: 1200, height: 760 });
        const second = await waitFor('the desktop to follow the window', async () => {
          const f = await fits();
          return fitted(f) && f.cw !== first.cw ? f : null;
        }, 20_000, 300).catch(async (e) => { throw new StepError(`${e.message}: ${JSON.stringify(await fits())}`); });
        console.log(`\n  desktop ${first.cw}x${first.ch}, then ${second.cw}x${second.ch} after the window shrank`);
        await page.setViewportSize({ width: 1440, height: 900 });
      });

      await step(page, 'typed-in-terminal', async () => {
        // Let the first frames settle so the change we see is ours.
        let before = await canvasStats(page);
        await waitFor('the desktop to stop changing', async () => {
          await new Promise((r) => setTimeout(r, 700));
          const now = await canvasStats(page);
          const stable = now && before && now.hash === before.hash;
          before = now;
          return stable;
        }, 15_000, 0).catch(() => {});
        await page.locator('#screen canvas').focus();
        await page.keyboard.type('echo kasm-$((6*7))', { delay: 30 });
        await page.keyboard.press('Enter');
        await waitFor('the remote screen to change after typing', async () => {
          const now = await canvasStats(page);
          return now && now.hash !== before.hash;
        }, 20_000);
        await new Promise((r) => setTimeout(r, 500)); // So the screenshot shows the echoed line.
      });

      await step(page, 'clipboard-panel', async () => {
        await page.getByLabel('Send text').fill('kasm clipboard');
        await page.getByRole('button', { name: 'Send to remote clipboard' }).click();
        await waitFor('the clipboard confirmation', async () => /sent to the remote clipboard/i.test(await visibleAlert(page)), 5_000);
      });
    } else {
      console.log('step: desktop-drawn, typed-in-terminal, clipboard-panel ... skipped (KASM_BROWSER_SKIP_DESKTOP=1)');
    }

    await step(page, 'session-deleted', async () => {
      await page.getByRole('button', { name: 'Delete session' }).click();
      await waitFor('"Session deleted." on the session page', async () => /session deleted/i.test(await page.locator('.overlay').innerText()), 30_000);
      await page.getByRole('link', { name: 'Back to workspaces' }).click();
      await page.getByRole('heading', { name: 'Workspaces', exact: true }).waitFor();
      await waitFor('the deleted session to leave "Your sessions"', async () => {
        const rows = await page.locator(`.session-item[data-session-id="${sessionId}"]`).count();
        if (rows > 0) {
          await page.reload();
          await page.getByRole('heading', { name: 'Workspaces', exact: true }).waitFor();
          await page.locator('.session-list li').first().waitFor();
          return (await page.locator(`.session-item[data-session-id="${sessionId}"]`).count()) === 0;
        }
        return true;
      }, 60_000, 2000);
      const status = await page.evaluate(async (id) => {
        const r = await fetch(`/api/v1/sessions/${encodeURIComponent(id)}`, { credentials: 'same-origin' });
        return r.status === 200 ? (await r.json()).state : r.status;
      }, sessionId);
      if (status !== 404 && status !== 'destroyed') {
        throw new Error(`GET /api/v1/sessions/${sessionId} says ${status}; expected 404 or destroyed`);
      }
      sessionId = null;
    });

    await step(page, 'agent-drained', async () => {
      await page.getByRole('link', { name: 'Admin' }).click();
      await page.getByRole('link', { name: 'Agents' }).first().click();
      await page.getByRole('heading', { name: 'Agents', exact: true }).waitFor();
      const row = page.locator('tr[data-agent-id]').first();
      await waitFor('an agent row on the agents page', async () => (await row.count()) > 0, 20_000);
      const host = await row.getAttribute('aria-label');
      await row.getByRole('button', { name: `Drain ${host}` }).click();
      await waitFor(`agent ${host} shown as draining`, async () => {
        const r = page.locator(`tr[aria-label="${host}"]`);
        return (await r.getAttribute('data-draining')) === 'true' && /draining/.test(await r.getByTestId('agent-state').innerText());
      }, 15_000);
      console.log(`\n  agent ${host} drained`);
      await screenshot(page, 'agent-drained-row');
      // Leave the agent as we found it for whoever uses this server next.
      await page.locator(`tr[aria-label="${host}"]`).getByRole('button', { name: `Stop draining ${host}` }).click();
      await waitFor(`agent ${host} accepting sessions again`, async () =>
        (await page.locator(`tr[aria-label="${host}"]`).getAttribute('data-draining')) === 'false', 15_000);
    });

    await step(page, 'license-page', async () => {
      await page.getByRole('link', { name: 'Licence' }).first().click();
      await page.getByRole('heading', { name: 'Licence', exact: true }).waitFor();
      const expected = await page.evaluate(async () => (await (await fetch('/api/v1/installation')).json()).installation_id);
      await waitFor('the installation id on the licence page', async () =>
        (await page.getByTestId('installation-id').innerText()).trim() === expected, 15_000);
      await waitFor('the community state without a licence', async () =>
        /community/.test(await page.getByTestId('license-state').innerText()), 5_000);
      // Garbage pasted into the licence field: a clear message, nothing added.
      await page.getByLabel('Paste a licence').fill('this is not a licence');
      await page.getByRole('button', { name: 'Add licence' }).click();
      await waitFor('an error for a pasted non-licence', async () => /licen[cs]e/i.test(await visibleAlert(page)), 10_000);
    });

    console.log(`web_flow: all steps passed; screenshots in ${artifacts}`);
  } finally {
    if (sessionId) {
      // A failed run must not leave a desktop running.
      await page.evaluate(async (id) => {
        const me = await fetch('/api/v1/auth/me').then((r) => r.json()).catch(() => null);
        await fetch(`/api/v1/sessions/${encodeURIComponent(id)}`, { method: 'DELETE', headers: { 'X-CSRF-Token': me?.csrf_token ?? '' } });
      }, sessionId).catch(() => {});
    }
    await browser.close();
  }
}

runTest('web_flow', main, { minutes: 9, whereToLook: `screenshots and page.log in ${artifacts}` });
