// Fixed servers end to end in headless Chromium against a real kasm-server: an administrator makes,
// through the admin pages, a server pool, a VNC server (the fixed Xvnc of scripts/services/xvnc.sh,
// its password stored), an SSH server in that pool (scripts/services/sshd.sh, no stored
// credentials, so the user is asked) and three workspaces: one on the VNC server, one on the pool,
// and a link. Then, from the dashboard: the link opens in a new tab and makes no session; the VNC
// desktop is drawn (non-black pixels on the viewer's canvas); a drained VNC server refuses with the
// server's own words; the SSH workspace asks for a user name and password and its terminal runs
// `echo kasm-$((6*7))`, showing kasm-42. Everything made is removed at the end, pass or fail.
//
// Environment (tests/browser/run.sh sets the first group; scripts/lib-services.sh the second):
//   KASM_URL, KASM_PASSWORD, KASM_USERNAME (default admin@kasm.local), KASM_ARTIFACTS_DIR,
//   KASM_WEB_DIR, KASM_CHROMIUM
//   KASM_TEST_VNC_ADDR, KASM_TEST_VNC_PASSWORD                      the VNC part
//   KASM_TEST_SSHD_ADDR, KASM_TEST_SSHD_USER, KASM_TEST_SSHD_PASSWORD  the SSH part
//   KASM_TEST_XRDP_ADDR, KASM_TEST_XRDP_USER, KASM_TEST_XRDP_PASSWORD  the RDP part
// A part whose variables are missing is skipped with a message, unless KASM_REQUIRE_SERVICES=1:
// then that is a failure. The link part needs nothing and always runs.

import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { launchChromium, restFromPage, waitFor } from './support.mjs';

const baseUrl = (process.env.KASM_URL ?? '').replace(/\/$/, '');
const username = process.env.KASM_USERNAME ?? 'admin@kasm.local';
const password = process.env.KASM_PASSWORD ?? '';
const artifacts = resolve(process.env.KASM_ARTIFACTS_DIR ?? 'build/browser-artifacts');
const requireServices = process.env.KASM_REQUIRE_SERVICES === '1';

if (!baseUrl || !password) {
  console.error('fixed_servers: set KASM_URL and KASM_PASSWORD (tests/browser/run.sh does)');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const pageLog = join(artifacts, 'fixed-servers-page.log');
writeFileSync(pageLog, '');

// "127.0.0.1:5901" -> { host, port }; null when unset or not an address on this machine (the test
// only ever connects to loopback).
function loopbackAddr(name) {
  const v = process.env[name] ?? '';
  const m = /^(127\.0\.0\.1|localhost):(\d+)$/.exec(v);
  return m ? { host: m[1] === 'localhost' ? '127.0.0.1' : m[1], port: Number(m[2]) } : null;
}

const vnc = loopbackAddr('KASM_TEST_VNC_ADDR');
const vncPassword = process.env.KASM_TEST_VNC_PASSWORD ?? '';
const sshd = loopbackAddr('KASM_TEST_SSHD_ADDR');
const sshUser = process.env.KASM_TEST_SSHD_USER ?? '';
const sshPassword = process.env.KASM_TEST_SSHD_PASSWORD ?? '';
const xrdp = loopbackAddr('KASM_TEST_XRDP_ADDR');
const rdpUser = process.env.KASM_TEST_XRDP_USER ?? '';
const rdpPassword = process.env.KASM_TEST_XRDP_PASSWORD ?? '';

const parts = {
  vnc: vnc && vncPassword ? null : 'KASM_TEST_VNC_ADDR (a 127.0.0.1 address) and KASM_TEST_VNC_PASSWORD are not set (scripts/services/xvnc.sh sets them)',
  ssh: sshd && sshUser && sshPassword ? null : 'KASM_TEST_SSHD_ADDR (a 127.0.0.1 address), KASM_TEST_SSHD_USER and KASM_TEST_SSHD_PASSWORD are not set (scripts/services/sshd.sh sets them)',
  rdp: xrdp && rdpUser && rdpPassword ? null : 'KASM_TEST_XRDP_ADDR (a 127.0.0.1 address), KASM_TEST_XRDP_USER and KASM_TEST_XRDP_PASSWORD are not set (scripts/services/xrdp.sh sets them)',
};
for (const [part, why] of Object.entries(parts)) {
  if (!why) continue;
  if (requireServices) {
    console.error(`fixed_servers: the ${part.toUpperCase()} part cannot run: ${why} (KASM_REQUIRE_SERVICES=1, so this is a failure)`);
    process.exit(1);
  }
  console.log(`fixed_servers: the ${part.toUpperCase()} part is SKIPPED: ${why}`);
}

const LAUNCH_TIMEOUT_MS = 60_000;
const DRAWN_TIMEOUT_MS = 60_000;
const STATUS_TIMEOUT_MS = 60_000;

let shot = 0;
async function screenshot(page, name) {
  const file = join(artifacts, `fixed-${String(++shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file }).catch((e) => console.error(`screenshot ${name} failed: ${e.message}`));
}

async function step(page, name, fn) {
  const started = Date.now();
  process.stdout.write(`step: ${name} ... `);
  try {
    await fn();
    console.log(`ok (${Date.now() - started} ms)`);
    await screenshot(page, name);
  } catch (e) {
    console.log('FAILED');
    await screenshot(page, `${name}-failed`);
    throw new Error(`step "${name}" failed: ${e.message}`);
  }
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

// The REST API through the page's own login (cookie and CSRF token), for what the UI is not the
// point of: counting sessions, and cleaning up.
function rest(page, method, path, body) {
  return restFromPage(page, method, path, body);
}

// Fraction of non-black pixels on the noVNC canvas (sampled).
async function canvasLit(page) {
  return page.evaluate(() => {
    const c = document.querySelector('#screen canvas');
    if (!c || !c.width || !c.height) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let on = 0;
    let n = 0;
    for (let i = 0; i < d.length; i += 64) {
      n++;
      if (d[i] + d[i + 1] + d[i + 2] > 30) on++;
    }
    return on / n;
  });
}

async function openAdminSection(page, name) {
  await page.goto(`${baseUrl}/admin`);
  await page.getByRole('heading', { name: 'Administration' }).waitFor();
  // The admin home's list of sections (the top bar has its own "Workspaces").
  await page.locator('main').getByRole('link', { name, exact: true }).click();
  await page.getByRole('heading', { name, exact: true }).waitFor();
}

async function gotoDashboard(page) {
  await page.goto(`${baseUrl}/`);
  await page.getByRole('heading', { name: 'Workspaces', exact: true }).waitFor({ timeout: 20_000 });
}

// Clicks "Launch <name>" and waits for the session page; answers the session id.
async function launchToSession(page, name, beforeSession = async () => {}) {
  await page.getByRole('button', { name: `Launch ${name}`, exact: true }).click();
  await beforeSession();
  await waitFor(`the session page of ${name}`, async () => {
    if (/\/session\/[^/]+/.test(new URL(page.url()).pathname)) return true;
    const alert = await visibleAlert(page);
    if (alert) throw new Error(`the launch failed: ${alert}`);
    return false;
  }, LAUNCH_TIMEOUT_MS, 300).catch((e) => {
    throw new Error(e.message.replace(/^timed out.*\(last error: (.*)\)$/, '$1'));
  });
  return decodeURIComponent(new URL(page.url()).pathname.split('/')[2]);
}

async function deleteSessionFromPage(page) {
  await page.getByRole('button', { name: 'Delete session' }).click();
  await waitFor('"Session deleted." on the session page', async () => /session deleted/i.test(await page.locator('.overlay').innerText()), 30_000);
}

async function main() {
  const browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  page.on('console', (m) => appendFileSync(pageLog, `[console.${m.type()}] ${m.text()}\n`));
  page.on('pageerror', (e) => appendFileSync(pageLog, `[pageerror] ${e.message}\n`));
  page.on('response', (r) => {
    if (r.status() >= 400) appendFileSync(pageLog, `[http ${r.status()}] ${r.request().method()} ${r.url().replace(/token=[^&]+/, 'token=…')}\n`);
  });
  page.on('dialog', (d) => d.accept()); // Delete confirmations.

  const stamp = Date.now().toString(36);
  const names = {
    pool: `Terminals ${stamp}`,
    vncServer: `Xvnc ${stamp}`,
    sshServer: `Sshd ${stamp}`,
    rdpServer: `Xrdp ${stamp}`,
    rdpWorkspace: `Windows-like desktop ${stamp}`,
    vncWorkspace: `Fixed desktop ${stamp}`,
    sshWorkspace: `Shell ${stamp}`,
    linkWorkspace: `Health ${stamp}`,
  };
  const made = { pool: null, servers: [], workspaces: [], sessions: [] };

  try {
    await step(page, 'login', async () => {
      await page.goto(`${baseUrl}/`);
      await page.getByRole('heading', { name: 'Log in to Kasm' }).waitFor({ timeout: 20_000 });
      await page.getByLabel('Username').fill(username);
      await page.getByLabel('Password').fill(password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'Workspaces', exact: true }).waitFor({ timeout: 20_000 });
    });

    // Fills the new-server form on the servers page, waits for the server to be seen running and
    // answers its id and row.
    async function createServer({ name, type, addr, serverPassword, pool, username }) {
      await openAdminSection(page, 'Servers');
      await page.getByRole('button', { name: 'New server' }).click();
      const dialog = page.getByRole('dialog', { name: 'New server' });
      await dialog.getByLabel('Name', { exact: true }).fill(name);
      await dialog.getByLabel('Connection type').selectOption(type);
      await dialog.getByLabel('Host', { exact: true }).fill(addr.host);
      await dialog.getByLabel('Port', { exact: true }).fill(String(addr.port));
      if (pool) await dialog.getByLabel('Pool', { exact: true }).selectOption({ label: pool });
      if (username) await dialog.getByLabel('User name', { exact: true }).fill(username);
      const passwordField = dialog.getByLabel('Password', { exact: true });
      if ((await passwordField.inputValue()) !== '') throw new Error('the password field of a new server is not empty');
      if (serverPassword) await passwordField.fill(serverPassword);
      const keyShown = await dialog.getByLabel('Private key').isVisible();
      if (keyShown !== (type === 'ssh')) throw new Error(`a ${type} server's form ${keyShown ? 'shows' : 'has no'} private key field`);
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.waitFor({ state: 'detached' });
      const row = page.locator(`tr[aria-label="${name}"]`);
      await row.waitFor();
      const id = await row.getAttribute('data-server-id');
      made.servers.push(id);
      // The server checks new servers within seconds; the page refreshes every 10 s (and on Refresh).
      await waitFor(`server ${name} to be seen running`, async () => {
        if ((await page.locator(`tr[data-server-id="${id}"]`).getAttribute('data-status')) === 'running') return true;
        await page.getByRole('button', { name: 'Refresh' }).click();
        await page.waitForTimeout(1000);
        return false;
      }, STATUS_TIMEOUT_MS, 1000);
      return { id, row: page.locator(`tr[data-server-id="${id}"]`) };
    }

    // Fills the new-workspace form (`fill` sets the type's own fields) and checks its dashboard badge.
    async function createWorkspace(name, type, fill, badge) {
      await openAdminSection(page, 'Workspaces');
      await page.getByRole('button', { name: 'New workspace' }).click();
      const dialog = page.getByRole('dialog', { name: 'New workspace' });
      await dialog.getByLabel('Name', { exact: true }).fill(name);
      await dialog.getByLabel('Type', { exact: true }).selectOption(type);
      if (await dialog.getByLabel('Image', { exact: true }).isVisible()) throw new Error(`a ${type} workspace's form shows the image field`);
      await fill(dialog);
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.waitFor({ state: 'detached' });
      const row = page.locator(`tr[aria-label="${name}"]`);
      await row.waitFor();
      made.workspaces.push(await row.getAttribute('data-workspace-id'));
      const text = await row.innerText();
      await gotoDashboard(page);
      const card = page.locator('li.workspace-card', { has: page.getByRole('heading', { name, exact: true }) });
      const got = (await card.getByTestId('workspace-type').innerText()).trim();
      if (got !== badge) throw new Error(`the card of ${name} says "${got}", expected "${badge}"`);
      return text;
    }

    // ---- a link: a new tab, no session ----
    const linkUrl = `${baseUrl}/healthz`;
    await step(page, 'admin-creates-link-workspace', async () => {
      const text = await createWorkspace(names.linkWorkspace, 'link', (d) => d.getByLabel('Link URL').fill(linkUrl), 'Link');
      if (!text.includes(linkUrl)) throw new Error(`the workspaces page does not show the link: ${text}`);
    });

    await step(page, 'link-opens-in-new-tab', async () => {
      const before = (await rest(page, 'GET', '/sessions')).json.total;
      const opened = context.waitForEvent('page', { timeout: 15_000 });
      await page.getByRole('button', { name: `Launch ${names.linkWorkspace}`, exact: true }).click();
      const tab = await opened;
      await waitFor(`the new tab to open ${linkUrl}`, () => tab.url() === linkUrl, 15_000).catch((e) => {
        throw new Error(`${e.message}; it shows "${tab.url()}"`);
      });
      await tab.waitForLoadState('domcontentloaded');
      if (!(await tab.evaluate(() => window.opener === null))) throw new Error('the link\'s tab can reach this page through window.opener');
      console.log(`\n  new tab: ${tab.url()}`);
      await tab.close();
      await page.getByTestId('link-opened').waitFor();
      if (new URL(page.url()).pathname !== '/') throw new Error(`the dashboard navigated to ${page.url()}`);
      const after = (await rest(page, 'GET', '/sessions')).json.total;
      if (after !== before) throw new Error(`launching a link made a session (${before} before, ${after} after)`);
    });

    // ---- a VNC server with a stored password: the desktop is drawn; drained, it refuses ----
    if (!parts.vnc) {
      let vncServerId = null;
      await step(page, 'admin-creates-vnc-server', async () => {
        const { id, row } = await createServer({ name: names.vncServer, type: 'vnc', addr: vnc, serverPassword: vncPassword });
        vncServerId = id;
        const text = await row.innerText();
        if (text.includes(vncPassword)) throw new Error('the servers page shows the VNC password');
        if (!/password stored/.test(text)) throw new Error(`the row does not say a password is stored: ${text}`);
        if (!text.includes(`${vnc.host}:${vnc.port}`)) throw new Error(`the row does not show ${vnc.host}:${vnc.port}: ${text}`);
        if (!/^0 \/ 1$/.test((await row.getByTestId('server-sessions').innerText()).trim())) throw new Error('the row does not show 0 / 1 sessions');
        // Editing never shows the stored secret, and says blank keeps it.
        await row.getByRole('button', { name: `Edit ${names.vncServer}` }).click();
        const dialog = page.getByRole('dialog', { name: `Edit ${names.vncServer}` });
        const field = dialog.getByLabel('Password', { exact: true });
        if ((await field.inputValue()) !== '') throw new Error('the edit form fills in the stored password');
        const hint = await dialog.locator(`#${await field.getAttribute('aria-describedby')}`).innerText();
        if (!/leave blank to keep/i.test(hint)) throw new Error(`the password's hint does not say blank keeps it: ${hint}`);
        await dialog.getByLabel('Clear the stored password').waitFor();
        await dialog.getByRole('button', { name: 'Cancel' }).click();
        await dialog.waitFor({ state: 'detached' });
      });

      await step(page, 'admin-creates-vnc-workspace', async () => {
        const text = await createWorkspace(names.vncWorkspace, 'server',
          (d) => d.getByLabel('Server', { exact: true }).selectOption(vncServerId), 'Desktop server');
        if (!text.includes(names.vncServer)) throw new Error(`the workspaces page does not name the server: ${text}`);
      });

      await step(page, 'vnc-desktop-drawn', async () => {
        const id = await launchToSession(page, names.vncWorkspace);
        made.sessions.push(id);
        console.log(`\n  session ${id}`);
        await waitFor('the desktop connection (#screen[data-connection=connected])', async () => {
          const state = await page.locator('#screen').getAttribute('data-connection');
          if (state === 'ended') throw new Error(`the session ended: ${await visibleAlert(page)}`);
          return state === 'connected';
        }, DRAWN_TIMEOUT_MS);
        const lit = await waitFor('non-black pixels on the desktop canvas', async () => {
          const f = await canvasLit(page);
          return f > 0.01 ? f : 0;
        }, DRAWN_TIMEOUT_MS, 500);
        console.log(`\n  canvas ${(lit * 100).toFixed(1)}% lit`);
        await screenshot(page, 'vnc-desktop');
        await deleteSessionFromPage(page);
      });

      await step(page, 'drained-server-refuses', async () => {
        await openAdminSection(page, 'Servers');
        await page.locator(`tr[data-server-id="${vncServerId}"]`).getByRole('button', { name: `Disable ${names.vncServer}` }).click();
        await waitFor('the server shown as not accepting sessions', async () =>
          (await page.locator(`tr[data-server-id="${vncServerId}"]`).getAttribute('data-enabled')) === 'false', 10_000);
        await gotoDashboard(page);
        await page.getByRole('button', { name: `Launch ${names.vncWorkspace}`, exact: true }).click();
        const expected = `server ${names.vncServer}: the server is disabled`;
        const text = await waitFor('the launch to be refused', () => visibleAlert(page), 15_000);
        if (text !== expected) throw new Error(`expected the server's words "${expected}", got "${text}"`);
        await openAdminSection(page, 'Servers');
        await page.locator(`tr[data-server-id="${vncServerId}"]`).getByRole('button', { name: `Enable ${names.vncServer}` }).click();
        await waitFor('the server accepting sessions again', async () =>
          (await page.locator(`tr[data-server-id="${vncServerId}"]`).getAttribute('data-enabled')) === 'true', 10_000);
      });
    }

    // ---- an SSH server in a pool, without stored credentials: the user gives theirs ----
    if (!parts.ssh) {
      await step(page, 'admin-creates-pool', async () => {
        await openAdminSection(page, 'Server pools');
        await page.getByRole('button', { name: 'New server pool' }).click();
        const dialog = page.getByRole('dialog', { name: 'New server pool' });
        await dialog.getByLabel('Name', { exact: true }).fill(names.pool);
        await dialog.getByRole('button', { name: 'Save' }).click();
        const row = page.locator(`tr[aria-label="${names.pool}"]`);
        await row.waitFor();
        made.pool = await row.getAttribute('data-pool-id');
        if ((await row.getByTestId('pool-server-count').innerText()).trim() !== 'no servers') throw new Error('a new pool should have no servers');
      });

      await step(page, 'admin-creates-ssh-server', async () => {
        const { row } = await createServer({ name: names.sshServer, type: 'ssh', addr: sshd, pool: names.pool });
        const text = await row.innerText();
        if (!/asks the user at launch/.test(text)) throw new Error(`an SSH server without credentials should ask the user: ${text}`);
        if (!text.includes(names.pool)) throw new Error(`the row does not name its pool: ${text}`);
        await openAdminSection(page, 'Server pools');
        await waitFor('the pool to count its server', async () =>
          (await page.locator(`tr[data-pool-id="${made.pool}"]`).getByTestId('pool-server-count').innerText()).trim() === '1 server', 10_000);
      });

      await step(page, 'admin-creates-ssh-workspace', async () => {
        await createWorkspace(names.sshWorkspace, 'server_pool',
          (d) => d.getByLabel('Server pool', { exact: true }).selectOption({ label: names.pool }), 'Terminal');
      });

      await step(page, 'ssh-asks-for-credentials', async () => {
        const id = await launchToSession(page, names.sshWorkspace, async () => {
          const form = page.getByRole('form', { name: `Log in to ${names.sshWorkspace}` });
          await form.waitFor();
          await form.getByLabel('User name').fill(sshUser);
          await form.getByLabel('Password').fill(sshPassword);
          await screenshot(page, 'ssh-credentials-form');
          await form.getByRole('button', { name: 'Connect' }).click();
        });
        made.sessions.push(id);
        console.log(`\n  session ${id}`);
      });

      await step(page, 'ssh-terminal-runs-a-command', async () => {
        const frame = page.frameLocator('iframe.app-frame');
        await waitFor('the terminal to connect (data-connection=connected)', async () => {
          const state = await frame.locator('html').getAttribute('data-connection', { timeout: 2_000 });
          if (state === 'error' || state === 'ended') throw new Error(`the terminal says: ${await frame.locator('#status').innerText()}`);
          return state === 'connected';
        }, DRAWN_TIMEOUT_MS, 500);
        const rows = frame.locator('.xterm-rows');
        await waitFor('a shell prompt', async () => /[$#]\s*$/m.test(await rows.innerText()), 20_000);
        await frame.locator('.xterm-helper-textarea').focus();
        await page.keyboard.type('echo kasm-$((6*7))', { delay: 20 });
        await page.keyboard.press('Enter');
        await waitFor('kasm-42 in the terminal', async () => /(^|\n)kasm-42\s*(\n|$)/.test(await rows.innerText()), 20_000);
        await screenshot(page, 'ssh-terminal');
        await deleteSessionFromPage(page);
      });
    }

    // ---- an RDP server (xrdp) through kasm-gateway: its desktop is drawn and typed text appears ----
    if (!parts.rdp) {
      let rdpServerId = null;
      await step(page, 'admin-creates-rdp-server', async () => {
        const { id } = await createServer({ name: names.rdpServer, type: 'rdp', addr: xrdp, serverPassword: rdpPassword, username: rdpUser });
        rdpServerId = id;
      });

      await step(page, 'admin-creates-rdp-workspace', async () => {
        await createWorkspace(names.rdpWorkspace, 'server',
          (d) => d.getByLabel('Server', { exact: true }).selectOption(rdpServerId), 'Desktop server');
      });

      await step(page, 'rdp-desktop-drawn-and-typed-into', async () => {
        const id = await launchToSession(page, names.rdpWorkspace);
        made.sessions.push(id);
        await waitFor('the desktop connection (#screen[data-connection=connected])', async () => {
          const state = await page.locator('#screen').getAttribute('data-connection');
          if (state === 'ended') throw new Error(`the session ended: ${await visibleAlert(page)}`);
          return state === 'connected';
        }, DRAWN_TIMEOUT_MS);
        const lit = await waitFor('non-black pixels on the RDP desktop', async () => {
          const f = await canvasLit(page);
          return f > 0.01 ? f : 0;
        }, DRAWN_TIMEOUT_MS, 500);
        console.log(`\n  RDP canvas ${(lit * 100).toFixed(1)}% lit`);
        // The RDP desktop takes the size of its window (SetDesktopSize -> the Display Control channel).
        const size = await waitFor('the RDP desktop to fit its window', async () => {
          const f = await page.evaluate(() => {
            const screen = document.querySelector('#screen');
            const c = document.querySelector('#screen canvas');
            return c && screen ? { cw: c.width, ch: c.height, sw: screen.clientWidth, sh: screen.clientHeight } : null;
          });
          return f && Math.abs(f.cw - f.sw) <= 2 && Math.abs(f.ch - f.sh) <= 2 ? f : null;
        }, 20_000, 300);
        console.log(`\n  RDP desktop ${size.cw}x${size.ch}`);
        // The test xrdp's desktop is an xterm: typed text changes its pixels.
        const digest = () => page.evaluate(() => {
          const c = document.querySelector('#screen canvas');
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let h = 0;
          for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + d[i + 1] * 7 + d[i + 2] * 13) >>> 0;
          return h;
        });
        // Click into the xterm (top left of the desktop; the window manager focuses on click), let
        // the desktop settle, then take the reference picture: only the typing may change it.
        const canvas = page.locator('#screen canvas');
        const box = await canvas.boundingBox();
        await canvas.click({ position: { x: box.width * 0.12, y: box.height * 0.2 } });
        await page.waitForTimeout(1500);
        const before = await digest();
        await page.keyboard.type('echo kasm rdp', { delay: 30 });
        await waitFor('the typed text drawn on the RDP desktop', async () => (await digest()) !== before, 20_000, 300);
        await screenshot(page, 'rdp-desktop');
        await deleteSessionFromPage(page);
      });
    }

    const skipped = Object.entries(parts).filter(([, why]) => why).map(([part]) => part.toUpperCase());
    console.log(`fixed_servers: all steps passed${skipped.length ? ` (the ${skipped.join(' and ')} part${skipped.length > 1 ? 's' : ''} skipped)` : ''}; screenshots in ${artifacts}`);
  } finally {
    // Leave the server as we found it, pass or fail: sessions, workspaces, servers, the pool.
    await gotoDashboard(page).catch(() => {});
    for (const id of made.sessions) await rest(page, 'DELETE', `/sessions/${encodeURIComponent(id)}`).catch(() => {});
    for (const id of made.workspaces) await rest(page, 'DELETE', `/workspaces/${encodeURIComponent(id)}`).catch(() => {});
    for (const id of made.servers) {
      await waitFor(`server ${id} to be deleted`, async () =>
        [204, 404].includes((await rest(page, 'DELETE', `/servers/${encodeURIComponent(id)}`)).status), 20_000, 1000).catch((e) => console.error(e.message));
    }
    if (made.pool) await rest(page, 'DELETE', `/server-pools/${encodeURIComponent(made.pool)}`).catch(() => {});
    await browser.close();
  }
}

// A global deadline on top of the per-step ones, so nothing can hang ctest.
const overall = setTimeout(() => {
  console.error('fixed_servers: the whole test exceeded 9 minutes; giving up');
  process.exit(1);
}, 9 * 60_000);
overall.unref();

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`fixed_servers: ${e.message}\nscreenshots and fixed-servers-page.log in ${artifacts}`);
    process.exit(1);
  },
);
