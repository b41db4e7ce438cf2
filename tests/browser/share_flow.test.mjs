// Session sharing end to end in headless Chromium against the real kasm-server and desktop image:
// an administrator allows sharing on the "All Users" group and makes two users; the owner launches
// the desktop and shares it from the session page; the second user opens the join link in another
// browser (logging in on the way), sees the desktop marked "View only", and what they type does not
// reach it; the owner gives them control and then what they type does (so the first check can
// fail); both chat and see each other's messages; the owner removes them and their viewer says the
// access ended; the owner stops sharing and the old link explains that it no longer works.
//
// What typed text did is read back from the container with the developer API's exec_command_kasm.
//
// Environment (tests/browser/run.sh sets it): KASM_URL, KASM_PASSWORD (the admin's), KASM_USERNAME
// (default admin@kasm.local), KASM_API_KEY and KASM_API_SECRET (a key with sessions:manage),
// KASM_WORKSPACE_NAME (default Desktop), KASM_ARTIFACTS_DIR, KASM_WEB_DIR, KASM_CHROMIUM. The server
// needs a licence with the "sharing" feature (run.sh adds one).

import {
  adminTestSettings, canvasLit, deleteSession, developerApiClient, DRAWN_TIMEOUT_MS, LAUNCH_TIMEOUT_MS, launchChromium,
  logPage, newPageLog, restOfContext, runTest, stepsWithScreenshots, submitLogin, waitFor,
} from './support.mjs';

const { baseUrl, adminUser, adminPassword, apiKey, apiSecret, workspaceName, artifacts } = adminTestSettings('share_flow');
const pageLog = newPageLog(artifacts, 'share-page.log');
// Each step saves both browsers' screens: share-NN-<step>-owner.png and share-NN-<step>-joiner.png.
const { step } = stepsWithScreenshots(artifacts, 'share');
const developerApi = developerApiClient(baseUrl, apiKey, apiSecret);

// The viewer must say the access ended within this long of the owner removing them.
const ACCESS_ENDED_WITHIN_MS = 8_000;
const VIEWPORT = { width: 1280, height: 800 };

// The REST API as a logged-in user, through a browser context's request (which keeps the cookie).
async function restLogin(context, username, password) {
  const r = await context.request.post(`${baseUrl}/api/v1/auth/login`, { data: { username, password } });
  if (r.status() !== 200) throw new Error(`login of ${username} answered ${r.status()}: ${await r.text()}`);
  return restOfContext(context, baseUrl, (await r.json()).csrf_token);
}

async function fileInDesktop(sessionId, path) {
  return /present/.test(await developerApi.exec(sessionId, `test -e ${path} && echo present || echo absent`));
}

// Checks of the contract whose failure should not hide the steps after them: reported (and failing
// the test) at the end.
const shortfalls = [];
function expect(ok, what) {
  if (!ok) {
    shortfalls.push(what);
    console.log(`\n  EXPECTATION FAILED: ${what}`);
  }
}

async function main() {
  const browser = await launchChromium();
  const stamp = Date.now().toString(36);
  const owner = { username: `owner-${stamp}@test.local`, password: `pw-owner-${stamp}-x1` };
  const joiner = { username: `joiner-${stamp}@test.local`, password: `pw-joiner-${stamp}-x1` };
  const pages = { owner: null, joiner: null };
  let adminRest = null;
  let sessionId = null;
  // The administrator's REST calls: the answer's JSON, or an error naming the status.
  const admin = async (method, path, body) => {
    const r = await adminRest(method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path} answered ${r.status}: ${r.text}`);
    return r.json;
  };
  try {
    const adminContext = await browser.newContext();
    adminRest = await restLogin(adminContext, adminUser, adminPassword);

    await step(pages, 'admin-setup', async () => {
      const groups = (await admin('GET', '/groups?limit=100')).items;
      const all = groups.find((g) => g.name === 'All Users');
      if (!all) throw new Error(`no "All Users" group among ${groups.map((g) => g.name).join(', ')}`);
      const patched = await admin('PATCH', `/groups/${all.id}`, { settings: { allow_sharing: true, shared_session_full_control: true } });
      if (!patched.settings?.allow_sharing || !patched.settings?.shared_session_full_control) {
        throw new Error(`the group's settings did not change: ${JSON.stringify(patched.settings)}`);
      }
      for (const u of [owner, joiner]) u.id = (await admin('POST', '/users', { username: u.username, password: u.password })).id;
      const lic = await admin('GET', '/licenses');
      console.log(`\n  licence: ${JSON.stringify(lic.status)}`);
    });

    const ownerContext = await browser.newContext({ viewport: VIEWPORT });
    ownerContext.setDefaultTimeout(15_000);
    const ownerPage = (pages.owner = await ownerContext.newPage());
    logPage(pageLog, ownerPage, { who: 'owner' });
    ownerPage.on('dialog', (d) => d.accept()); // "Stop sharing?"

    await step(pages, 'owner-launches', async () => {
      await ownerPage.goto(`${baseUrl}/`);
      await submitLogin(ownerPage, owner.username, owner.password);
      const launch = ownerPage.getByRole('button', { name: new RegExp(`^Launch ${workspaceName}$`, 'i') }).first();
      await launch.waitFor({ timeout: 20_000 });
      await launch.click();
      await waitFor('the session page', async () => /\/session\/[^/]+/.test(new URL(ownerPage.url()).pathname), LAUNCH_TIMEOUT_MS, 500);
      sessionId = decodeURIComponent(new URL(ownerPage.url()).pathname.split('/')[2]);
      await waitFor('the owner\'s desktop connection', async () => {
        const state = await ownerPage.locator('#screen').getAttribute('data-connection');
        if (state === 'ended') throw new Error(`the session ended: ${await ownerPage.locator('.overlay').innerText()}`);
        return state === 'connected';
      }, DRAWN_TIMEOUT_MS);
      await waitFor('a drawn desktop on the owner\'s page', () => canvasLit(ownerPage), DRAWN_TIMEOUT_MS, 500);
      console.log(`\n  session ${sessionId}`);
    });

    let link;
    await step(pages, 'owner-shares', async () => {
      const panel = ownerPage.getByTestId('share-panel');
      await panel.getByRole('button', { name: 'Share', exact: true }).click();
      const input = ownerPage.getByTestId('share-link');
      await input.waitFor();
      link = await input.inputValue();
      if (!link.startsWith(`${baseUrl}/join/`)) throw new Error(`unexpected join link ${link}`);
      await waitFor('the owner\'s chat to connect', async () =>
        (await panel.locator('.chat').getAttribute('data-chat-state')) === 'connected', 15_000);
      console.log(`\n  link ${link}`);
    });

    const joinerContext = await browser.newContext({ viewport: VIEWPORT });
    joinerContext.setDefaultTimeout(15_000);
    const joinerPage = (pages.joiner = await joinerContext.newPage());
    logPage(pageLog, joinerPage, { who: 'joiner' });
    joinerPage.on('dialog', (d) => d.accept()); // "Stop sharing?"

    await step(pages, 'joiner-joins-view-only', async () => {
      await joinerPage.goto(link);
      // Not logged in: the login page first, then back to the join link.
      await waitFor('the login page with the join link as next', async () => /^\/login/.test(new URL(joinerPage.url()).pathname) &&
        new URL(joinerPage.url()).searchParams.get('next')?.startsWith('/join/'), 15_000);
      await submitLogin(joinerPage, joiner.username, joiner.password);
      await waitFor('the viewer page', async () => new URL(joinerPage.url()).pathname === `/desktop/${sessionId}/`, 20_000);
      await waitFor('the joiner\'s desktop connection', async () =>
        (await joinerPage.evaluate(() => document.documentElement.dataset.connection)) === 'connected', DRAWN_TIMEOUT_MS);
      await waitFor('a drawn desktop on the joiner\'s page', () => canvasLit(joinerPage), DRAWN_TIMEOUT_MS, 500);
      const badge = joinerPage.locator('#badge');
      if (!(await badge.isVisible()) || (await badge.innerText()).trim() !== 'View only') throw new Error('no "View only" badge on the joiner\'s viewer');
      if ((await joinerPage.evaluate(() => document.documentElement.dataset.viewOnly)) !== 'true') throw new Error('the viewer is not in view-only mode');
      const row = ownerPage.locator(`.share-people li[data-user-id="${joiner.id}"]`);
      await waitFor('the joiner in the owner\'s list, watching', async () =>
        (await row.count()) === 1 && (await row.getAttribute('data-access')) === 'r' && /Watching/.test(await row.innerText()), 10_000);
    });

    await step(pages, 'view-only-typing-ignored', async () => {
      await joinerPage.locator('#screen canvas').focus();
      await joinerPage.keyboard.type('touch /tmp/kasm-typed-while-watching', { delay: 25 });
      await joinerPage.keyboard.press('Enter');
      await new Promise((r) => setTimeout(r, 3_000));
      if (await fileInDesktop(sessionId, '/tmp/kasm-typed-while-watching')) throw new Error('a view-only joiner\'s typing reached the desktop');
    });

    await step(pages, 'joiner-given-control', async () => {
      await ownerPage.getByRole('button', { name: `Give control to ${joiner.username}` }).click();
      const row = ownerPage.locator(`.share-people li[data-user-id="${joiner.id}"]`);
      await waitFor('the joiner shown as having control', async () => (await row.getAttribute('data-access')) === 'rw', 10_000);
      await waitFor('the joiner\'s viewer to leave view-only mode', async () =>
        (await joinerPage.evaluate(() => document.documentElement.dataset.viewOnly)) === 'false', 25_000);
      if (await joinerPage.locator('#badge').isVisible()) throw new Error('the "View only" badge stayed');
      await joinerPage.locator('#screen canvas').focus();
      await joinerPage.keyboard.type('touch /tmp/kasm-typed-with-control', { delay: 25 });
      await joinerPage.keyboard.press('Enter');
      await waitFor('the joiner\'s command to run in the desktop', () => fileInDesktop(sessionId, '/tmp/kasm-typed-with-control'), 30_000, 1000);
      if (await fileInDesktop(sessionId, '/tmp/kasm-typed-while-watching')) throw new Error('the typing from before control arrived late');
    });

    await step(pages, 'chat', async () => {
      await joinerPage.getByRole('button', { name: /^Chat/ }).click();
      const joinerChat = joinerPage.locator('#chat-box .chat');
      await waitFor('the joiner\'s chat to connect', async () => (await joinerChat.getAttribute('data-chat-state')) === 'connected', 15_000);
      await joinerChat.locator('summary').click();
      const members = joinerChat.locator('.chat-members li');
      await waitFor('two people in the joiner\'s chat', async () => (await members.count()) === 2, 10_000);
      const people = await members.evaluateAll((els) => els.map((e) => ({ text: e.textContent, access: e.dataset.access })));
      expect(people.some((p) => p.access === 'owner' && p.text.includes(owner.username)),
        `the owner is listed by name as "owner" in the chat's members: ${JSON.stringify(people)}`);
      expect(people.some((p) => p.text.includes(joiner.username)), `the joiner is listed by name in the chat's members: ${JSON.stringify(people)}`);
      await joinerChat.getByRole('textbox', { name: 'Chat message' }).fill('hello from the joiner <b>not bold</b>');
      await joinerChat.getByRole('button', { name: 'Send' }).click();
      const ownerChat = ownerPage.getByTestId('share-panel').locator('.chat');
      await waitFor('the joiner\'s message on the owner\'s page', async () =>
        /hello from the joiner <b>not bold<\/b>/.test(await ownerChat.locator('.chat-log').innerText()), 10_000);
      if ((await ownerChat.locator('.chat-log b').count()) !== 0) throw new Error('chat text was rendered as markup');
      const systemLines = await ownerChat.locator('.chat-log .chat-system').allInnerTexts();
      if (systemLines.length === 0) throw new Error('no system message (someone joined) in the owner\'s chat');
      expect(systemLines.some((t) => t.includes(`${joiner.username} joined`)), `a system message "${joiner.username} joined": ${JSON.stringify(systemLines)}`);
      const authors = await ownerChat.locator('.chat-log .chat-message .chat-author').allInnerTexts();
      expect(authors.includes(joiner.username), `the joiner's message is signed with their name: ${JSON.stringify(authors)}`);
      await ownerChat.getByRole('textbox', { name: 'Chat message' }).fill('hello from the owner');
      await ownerChat.getByRole('button', { name: 'Send' }).click();
      await waitFor('the owner\'s message on the joiner\'s page', async () =>
        /hello from the owner/.test(await joinerChat.locator('.chat-log').innerText()), 10_000);
    });

    await step(pages, 'joiner-removed', async () => {
      const removedAt = Date.now();
      await ownerPage.getByRole('button', { name: `Remove ${joiner.username}` }).click();
      await waitFor('"Your access to this session ended" on the joiner\'s viewer', async () =>
        /your access to this session ended/i.test(await joinerPage.locator('#status').innerText()) &&
        (await joinerPage.evaluate(() => document.documentElement.dataset.connection)) === 'ended', ACCESS_ENDED_WITHIN_MS, 200);
      console.log(`\n  access ended shown after ${Date.now() - removedAt} ms`);
      await waitFor('the joiner gone from the owner\'s list', async () =>
        (await ownerPage.locator(`.share-people li[data-user-id="${joiner.id}"]`).count()) === 0, 10_000);
      // It stays ended: no reconnect loop brings the desktop back.
      await new Promise((r) => setTimeout(r, 4_000));
      if ((await joinerPage.evaluate(() => document.documentElement.dataset.connection)) !== 'ended') throw new Error('the viewer reconnected after its access ended');
    });

    await step(pages, 'sharing-stopped', async () => {
      await ownerPage.getByRole('button', { name: 'Stop sharing' }).click();
      await ownerPage.getByTestId('share-panel').getByRole('button', { name: 'Share', exact: true }).waitFor({ timeout: 10_000 });
      const share = await admin('GET', `/sessions/${sessionId}/share`);
      if (share.share_id !== null) throw new Error(`the share link is still there: ${JSON.stringify(share)}`);
      await joinerPage.goto(link);
      await waitFor('the message for a link that no longer works', async () =>
        /does not work any more/i.test(await joinerPage.locator('[role=alert]:visible').first().innerText()), 15_000);
    });

    if (shortfalls.length) throw new Error(`every step ran, but ${shortfalls.length} expectation(s) failed:\n  - ${shortfalls.join('\n  - ')}`);
    console.log(`share_flow: all steps passed; screenshots in ${artifacts}`);
  } finally {
    // A failed run must not leave a desktop running.
    await deleteSession(adminRest, sessionId);
    await browser.close();
  }
}

runTest('share_flow', main, { minutes: 8, whereToLook: `screenshots and share-page.log in ${artifacts}` });
