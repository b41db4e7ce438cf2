// From the click on Launch to the first drawn desktop frame, in headless Chromium against a real
// kasm-server (issue 22: goal under 1 s cold, under 200 ms from a staged session). Run by
// scripts/bench_first_pixels.sh, which starts the server and, for the staged case, a licence with
// the staging feature and a staging pool.
//
// Phases of one launch, each from the click: "navigation" (the session page's address), "canvas"
// (the viewer's canvas exists), "first frame" (more than 1% of the canvas is not black). Prints
// each launch and the median of each phase.
//
// Environment: KASM_URL, KASM_USERNAME, KASM_PASSWORD, KASM_WEB_DIR, KASM_CHROMIUM, KASM_WORKSPACE
// (the card's name, default "Desktop"), KASM_ROUNDS (default 5), KASM_LABEL ("cold" or "staged"),
// KASM_STAGED=1 to wait before each launch until a staged session is ready.

import { createRequire } from 'node:module';
import { join } from 'node:path';

import { restFromPage } from '../../tests/browser/support.mjs';

const base = process.env.KASM_URL;
const require = createRequire(join(process.env.KASM_WEB_DIR, 'package.json'));
const { chromium } = require('playwright-core');
const rounds = Number(process.env.KASM_ROUNDS ?? 5);
const workspace = process.env.KASM_WORKSPACE ?? 'Desktop';
const label = process.env.KASM_LABEL ?? 'cold';
const staged = process.env.KASM_STAGED === '1';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function rest(page, method, path, body) {
  return (await restFromPage(page, method, path, body)).json;
}

async function main() {
  const browser = await chromium.launch({ executablePath: process.env.KASM_CHROMIUM, args: ['--no-sandbox'] });
  const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
  await page.goto(`${base}/login`);
  await page.getByLabel('Username').fill(process.env.KASM_USERNAME);
  await page.getByLabel('Password').fill(process.env.KASM_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Workspaces', exact: true }).waitFor({ timeout: 20_000 });
  const phases = { navigation: [], canvas: [], 'first frame': [] };
  for (let i = 0; i < rounds; i++) {
    if (staged) {
      // A staged session waits, running and unclaimed (no user yet).
      const deadline = Date.now() + 120_000;
      for (;;) {
        const list = await rest(page, 'GET', '/sessions?all=true&state=running');
        if ((list?.items ?? []).some((s) => !s.user_id)) break;
        if (Date.now() > deadline) throw new Error('no staged session became ready within 120 s');
        await page.waitForTimeout(250);
      }
    }
    await page.goto(`${base}/`);
    await page.getByRole('heading', { name: 'Workspaces', exact: true }).waitFor({ timeout: 20_000 });
    const button = page.getByRole('button', { name: `Launch ${workspace}`, exact: true });
    await button.waitFor();
    const t0 = Date.now();
    await button.click();
    await page.waitForURL(/\/session\//, { timeout: 60_000 });
    const tNav = Date.now() - t0;
    await page.waitForSelector('#screen canvas', { timeout: 60_000 });
    const tCanvas = Date.now() - t0;
    await page.waitForFunction(() => {
      const c = document.querySelector('#screen canvas');
      if (!c || !c.width || !c.height) return false;
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let on = 0;
      let n = 0;
      for (let j = 0; j < d.length; j += 256) {
        n++;
        if (d[j] + d[j + 1] + d[j + 2] > 30) on++;
      }
      return on / n > 0.01;
    }, null, { polling: 'raf', timeout: 60_000 });
    const tFrame = Date.now() - t0;
    phases.navigation.push(tNav);
    phases.canvas.push(tCanvas);
    phases['first frame'].push(tFrame);
    console.log(`${label} launch ${i + 1}: navigation ${tNav} ms, canvas ${tCanvas} ms, first frame ${tFrame} ms`);
    const id = decodeURIComponent(new URL(page.url()).pathname.split('/')[2]);
    await rest(page, 'DELETE', `/sessions/${encodeURIComponent(id)}`);
  }
  console.log(`${label} median of ${rounds}: ` +
    Object.entries(phases).map(([k, v]) => `${k} ${median(v)} ms`).join(', '));
  await browser.close();
}

main().then(() => process.exit(0), (e) => {
  console.error(`first_pixels: ${e.message}`);
  process.exit(1);
});
