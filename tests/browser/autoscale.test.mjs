// The autoscaling admin pages in headless Chromium against a real kasm-server. An administrator, in
// a zone of its own with no agent, makes an autoscale configuration through the form: the "command"
// provider running scripts/vm-providers/directory-vms.py ("machines" are files in a temporary
// directory), a standby of 1 core, a 1-minute provision timeout, a schedule window of every day.
// A wrong time zone first: the server's refusal shows beside the field. Then:
//   - the list shows the autoscaler's status summary once it has ticked (every 10 s);
//   - the configuration's page shows the decision "+1 agent" with its reason and actions, and the
//     machine it made, booting (no agent ever checks in);
//   - deleting it is refused while the machine exists, with the server's words;
//   - an edit (standby 0, maximum 5 machines) shows at once;
//   - a second, disabled configuration with "API_PASSWORD": "s3cret" in its provider settings'
//     environment (secrets are masked at any depth): the
//     page, its edit form and the REST API show "********" only, and saving the form unchanged
//     keeps the secret (still masked, not emptied); it is then deleted from the list;
//   - the first configuration's page, refreshing by itself, shows its machine go once the
//     provision timeout passed; it is then deleted, and the zone after it.
// What it made is removed at the end, pass or fail (a configuration with a machine left is wound
// down first, which takes up to the provision timeout).
//
// Environment (tests/browser/run.sh sets it): KASM_URL, KASM_PASSWORD, KASM_USERNAME (default
// admin@kasm.local), KASM_ARTIFACTS_DIR, KASM_WEB_DIR, KASM_CHROMIUM; KASM_TEST_PROVIDER_PYTHON
// (default /usr/bin/python3): the interpreter the provider runs the script with.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  launchChromium, logInToDashboard, logPage, newPageLog, restOfContext, runTest, stepsWithScreenshots, waitFor,
} from './support.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const baseUrl = (process.env.KASM_URL ?? '').replace(/\/$/, '');
const username = process.env.KASM_USERNAME ?? 'admin@kasm.local';
const password = process.env.KASM_PASSWORD ?? '';
const artifacts = resolve(process.env.KASM_ARTIFACTS_DIR ?? 'build/browser-artifacts');
if (!baseUrl || !password) {
  console.error('autoscale: set KASM_URL and KASM_PASSWORD (tests/browser/run.sh does)');
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

const script = resolve(here, '..', '..', 'scripts', 'vm-providers', 'directory-vms.py');
const python = process.env.KASM_TEST_PROVIDER_PYTHON ?? '/usr/bin/python3';
// The provider needs absolute paths; without the interpreter, the script runs by its #! line.
const argv = existsSync(python) ? [python, script] : [script];
const SECRET = 's3cret';
const suffix = Math.random().toString(36).slice(2, 8);
const zoneName = `autoscale-test-${suffix}`;
const configName = `autoscale-test-${suffix}`;
const secretName = `autoscale-secret-${suffix}`;
// The autoscaler runs every other tick of 5 s: a status is there within about 10 s, 25 s at worst.
const TICK_WAIT_MS = 45_000;
// The machine goes 1 min (the provision timeout) after it was made, at the next tick after that.
const WIND_DOWN_MS = 150_000;

const { step } = stepsWithScreenshots(artifacts, 'autoscale');
const pageLog = newPageLog(artifacts, 'autoscale-page.log');

const providerSettings = (vmsDir, extra = {}) =>
  JSON.stringify({ create: argv, destroy: argv, list: argv, environment: { KASM_VMS_DIR: vmsDir }, ...extra }, null, 2);

// The visible text of the page's error message line that contains `text` ('' when none).
async function errorMessage(page, text) {
  const box = page.locator('main .message.error').filter({ hasText: text });
  return (await box.count()) ? box.first().innerText() : '';
}

async function main() {
  const vmsDir = mkdtempSync(join(tmpdir(), 'kasm-autoscale-vms-'));
  const browser = await launchChromium();
  let rest = null;
  let zoneId = null;
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    const page = await context.newPage();
    logPage(pageLog, page);
    page.on('dialog', (d) => d.accept()); // Delete confirmations.
    page.setDefaultTimeout(20_000);
    const row = (name) => page.getByRole('row', { name, exact: true });

    await step(page, 'login-and-zone', async () => {
      await logInToDashboard(page, baseUrl, username, password);
      rest = restOfContext(context, baseUrl);
      const z = await rest('POST', '/zones', { name: zoneName });
      if (z.status !== 201 && z.status !== 200) throw new Error(`POST /zones answered ${z.status}: ${z.text}`);
      zoneId = z.json.id;
    });

    await step(page, 'open-autoscaling', async () => {
      await page.getByRole('link', { name: 'Admin', exact: true }).click();
      await page.getByRole('heading', { name: 'Administration' }).waitFor();
      await page.locator('main').getByRole('link', { name: 'Autoscaling', exact: true }).click();
      await page.getByRole('heading', { name: 'Autoscaling', exact: true }).waitFor();
      const current = await page.locator('.admin-tabs a[aria-current="page"]').innerText();
      if (current !== 'Autoscaling') throw new Error(`the current tab is "${current}", not Autoscaling`);
    });

    await step(page, 'form-refusal-beside-field', async () => {
      await page.getByRole('button', { name: 'New autoscale configuration' }).click();
      const dialog = page.getByRole('dialog', { name: 'New autoscale configuration' });
      await dialog.getByLabel('Name', { exact: true }).fill(configName);
      await dialog.getByLabel('Zone', { exact: true }).selectOption({ label: zoneName });
      await dialog.getByLabel('Provider', { exact: true }).fill('command');
      await dialog.getByLabel('Provider settings (JSON)').fill(providerSettings(vmsDir));
      await dialog.getByLabel('Standby cores').fill('1');
      await dialog.getByLabel('Maximum machines').fill('3');
      await dialog.getByLabel('Provision timeout (minutes)').fill('1');
      // A window of every day, all day (the standby is then always kept).
      await dialog.getByRole('button', { name: 'Add a window' }).click();
      const window1 = dialog.getByRole('group', { name: 'Window 1' });
      for (const day of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri']) await window1.getByLabel(day, { exact: true }).uncheck();
      await dialog.getByLabel('Window 1 start').fill('00:00');
      await dialog.getByLabel('Window 1 end').fill('24:00');
      await dialog.getByLabel('Time zone').fill('Mars/Olympus_Mons');
      await dialog.getByRole('button', { name: 'Save' }).click();
      const beside = dialog.locator('[data-error-for="time_zone"]');
      await beside.waitFor({ state: 'visible' });
      const text = await beside.innerText();
      if (!text.includes('Mars/Olympus_Mons')) throw new Error(`the error beside the time zone is "${text}"`);
      if ((await dialog.getByLabel('Time zone').getAttribute('aria-invalid')) !== 'true') throw new Error('the time zone is not marked invalid');
    });

    await step(page, 'create', async () => {
      const dialog = page.getByRole('dialog', { name: 'New autoscale configuration' });
      await dialog.getByLabel('Time zone').fill('Europe/Paris');
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.waitFor({ state: 'detached' });
      await row(configName).waitFor();
    });

    const list = (await rest('GET', '/autoscale?limit=1000')).json?.items ?? [];
    const config = list.find((c) => c.name === configName);
    if (!config) throw new Error(`GET /autoscale does not list ${configName}`);
    const id = config.id;
    // What the form's units became in the API's.
    const expect = {
      provider: 'command', max_instances: 3, provision_timeout: 60_000, downscale_backoff: 600_000, time_zone: 'Europe/Paris',
      standby: { millicores: 1000, memory_bytes: 0, gpus: 0 }, schedules: [{ days: [], start: '00:00', end: '24:00' }],
    };
    for (const [k, v] of Object.entries(expect)) {
      if (JSON.stringify(config[k]) !== JSON.stringify(v)) throw new Error(`the configuration saved ${k} = ${JSON.stringify(config[k])}, not ${JSON.stringify(v)}`);
    }

    await step(page, 'status-in-list', async () => {
      const summary = row(configName).getByTestId('autoscale-summary');
      await summary.waitFor({ state: 'visible', timeout: TICK_WAIT_MS });
      const text = await summary.innerText();
      if (!text.startsWith(`zone ${zoneName}:`)) throw new Error(`the status summary is "${text}"`);
      console.log(`\n  status: ${text}`);
    });

    await step(page, 'detail-decision-and-machine', async () => {
      await row(configName).getByRole('link', { name: `Details of ${configName}` }).click();
      await page.getByRole('heading', { name: configName, exact: true }).waitFor();
      const decision = page.getByRole('row').filter({ has: page.getByTestId('decision-summary').filter({ hasText: `zone ${zoneName}: +1 agent` }) });
      await decision.first().waitFor({ timeout: TICK_WAIT_MS });
      const text = await decision.first().innerText();
      if (!/standby cores 0 < 1/.test(text)) throw new Error(`the decision does not say why: "${text}"`);
      if (!/made [0-9a-f]+ \(vm-/.test(text)) throw new Error(`the decision does not list the machine made: "${text}"`);
      const machine = page.locator('tr[data-phase="booting"]');
      await machine.first().waitFor({ timeout: TICK_WAIT_MS });
      const m = await machine.first().innerText();
      if (!/vm-[0-9a-f]+/.test(m) || !/check in/.test(m)) throw new Error(`the machine row is "${m}"`);
    });

    await step(page, 'delete-refused', async () => {
      await page.getByRole('button', { name: 'Delete this configuration' }).click();
      const text = await waitFor('the refusal', () => errorMessage(page, 'still has'), 15_000);
      if (!/still has 1 machine/.test(text)) throw new Error(`the refusal is "${text}"`);
      await page.getByRole('heading', { name: configName, exact: true }).waitFor();
    });

    await step(page, 'edit', async () => {
      await page.getByRole('button', { name: 'Edit this configuration' }).click();
      const dialog = page.getByRole('dialog', { name: `Edit ${configName}` });
      // The units of the form: cores and minutes, from millicores and milliseconds.
      for (const [label, want] of [['Standby cores', '1'], ['Provision timeout (minutes)', '1'], ['Scale-down backoff (minutes)', '10'], ['Time zone', 'Europe/Paris']]) {
        const got = await dialog.getByLabel(label).inputValue();
        if (got !== want) throw new Error(`the form shows ${label} "${got}", not "${want}"`);
      }
      if ((await dialog.getByLabel('Window 1 end').inputValue()) !== '24:00') throw new Error('the form lost the schedule window');
      await dialog.getByLabel('Maximum machines').fill('5');
      await dialog.getByLabel('Standby cores').fill('0');
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.waitFor({ state: 'detached' });
      await waitFor('the new limits', async () => (await page.getByTestId('autoscale-limits').innerText()) === '0 to 5', 10_000);
      await waitFor('the new standby', async () => (await page.getByTestId('autoscale-standby').innerText()) === '0 CPU', 10_000);
      const c = (await rest('GET', `/autoscale/${id}`)).json;
      if (c.max_instances !== 5 || c.standby.millicores !== 0 || c.schedules.length !== 1) throw new Error(`GET answers ${JSON.stringify(c)}`);
    });

    await step(page, 'secret-masked', async () => {
      await page.getByRole('link', { name: '← All autoscale configurations' }).click();
      await row(configName).waitFor();
      await page.getByRole('button', { name: 'New autoscale configuration' }).click();
      const dialog = page.getByRole('dialog', { name: 'New autoscale configuration' });
      await dialog.getByLabel('Name', { exact: true }).fill(secretName);
      await dialog.getByLabel('Zone', { exact: true }).selectOption({ label: zoneName });
      await dialog.getByLabel('Enabled: the autoscaler acts on it').uncheck();
      await dialog.getByLabel('Provider settings (JSON)').fill(providerSettings(vmsDir, { environment: { KASM_VMS_DIR: vmsDir, API_PASSWORD: SECRET } }));
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.waitFor({ state: 'detached' });
      await row(secretName).getByText('Disabled: the autoscaler leaves it alone.').waitFor();
      const all = (await rest('GET', '/autoscale?limit=1000')).json.items;
      const s = all.find((c) => c.name === secretName);
      if (!s || !s.provider_config_json.includes('"API_PASSWORD":"********"')) throw new Error(`GET shows ${s?.provider_config_json}`);
      if (JSON.stringify(all).includes(SECRET)) throw new Error('GET /autoscale shows the secret');
      if ((await page.content()).includes(SECRET)) throw new Error('the page shows the secret');

      // Saved unchanged, the mask keeps the stored secret: still masked (an emptied one is not).
      await row(secretName).getByRole('button', { name: `Edit ${secretName}` }).click();
      const edit = page.getByRole('dialog', { name: `Edit ${secretName}` });
      const shown = await edit.getByLabel('Provider settings (JSON)').inputValue();
      if (!shown.includes('"API_PASSWORD": "********"') || shown.includes(SECRET)) throw new Error(`the form shows ${shown}`);
      await edit.getByRole('button', { name: 'Save' }).click();
      await edit.waitFor({ state: 'detached' });
      const again = (await rest('GET', `/autoscale/${s.id}`)).json;
      if (!again.provider_config_json.includes('"API_PASSWORD":"********"')) throw new Error(`after an unchanged save GET shows ${again.provider_config_json}`);
      if ((await page.content()).includes(SECRET)) throw new Error('the page shows the secret');

      await row(secretName).getByRole('button', { name: `Delete ${secretName}` }).click();
      await row(secretName).waitFor({ state: 'detached' });
    });

    await step(page, 'machine-goes-then-delete', async () => {
      await row(configName).getByRole('link', { name: `Details of ${configName}` }).click();
      await page.getByRole('heading', { name: configName, exact: true }).waitFor();
      // No click on Refresh: the page refreshes by itself.
      await page.getByRole('cell', { name: 'No machines.' }).waitFor({ timeout: WIND_DOWN_MS });
      const destroyed = page.getByRole('row').filter({ hasText: 'provision timeout' });
      await destroyed.first().waitFor({ timeout: 15_000 });
      await page.getByRole('button', { name: 'Delete this configuration' }).click();
      await page.getByRole('heading', { name: 'Autoscaling', exact: true }).waitFor();
      await page.getByRole('table', { name: 'Autoscale configurations' }).waitFor();
      await page.locator('main .message.info').filter({ hasText: `${configName} deleted.` }).waitFor({ timeout: 5_000 });
      if ((await row(configName).count()) !== 0) throw new Error(`${configName} is still listed`);
      const gone = await rest('GET', `/autoscale/${id}`);
      if (gone.status !== 404) throw new Error(`GET /autoscale/${id} answered ${gone.status} after the delete`);
      const z = await rest('DELETE', `/zones/${zoneId}`);
      if (z.status >= 300) throw new Error(`DELETE /zones answered ${z.status}: ${z.text}`);
      zoneId = null;
    });
  } finally {
    if (rest) await cleanUp(rest, zoneId).catch((e) => console.error(`autoscale: clean-up: ${e.message}`));
    await browser.close().catch(() => {});
    rmSync(vmsDir, { recursive: true, force: true });
  }
}

// Removes the configurations this run made (winding down their machines first) and its zone.
async function cleanUp(rest, zoneId) {
  const mine = ((await rest('GET', '/autoscale?limit=1000')).json?.items ?? []).filter((c) => c.name.endsWith(suffix));
  for (const c of mine) {
    await rest('PATCH', `/autoscale/${c.id}`, { enabled: true, standby: { millicores: 0, memory_bytes: 0, gpus: 0 }, min_instances: 0, min_standby_sessions: 0 });
    await waitFor(`the machines of ${c.name} to go`, async () => (await rest('GET', `/autoscale/${c.id}/machines`)).json?.total === 0, WIND_DOWN_MS, 2_000)
      .catch((e) => console.error(`autoscale: clean-up: ${e.message}`));
    const d = await rest('DELETE', `/autoscale/${c.id}`);
    if (d.status >= 300) console.error(`autoscale: clean-up: DELETE /autoscale/${c.id} answered ${d.status}: ${d.text}`);
  }
  if (zoneId) {
    const z = await rest('DELETE', `/zones/${zoneId}`);
    if (z.status >= 300) console.error(`autoscale: clean-up: DELETE /zones/${zoneId} answered ${z.status}: ${z.text}`);
  }
}

runTest('autoscale', main, { minutes: 8, whereToLook: `Screenshots autoscale-*.png and autoscale-page.log are in ${artifacts}.` });
