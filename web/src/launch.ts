// Launching a session: POST /sessions, then poll until it runs, fails, or a bounded time passes.
// Nothing here waits forever: every wait has a deadline and a message that says what happened.
// A link workspace answers its URL instead of a session; a server without stored credentials
// answers that it needs the user's, and the launch is tried again with them.

import * as api from './api';

export const LAUNCH_TIMEOUT_MS = 180_000;
// A desktop usually starts within a second: polls come every 100 ms at first (a 1 s period alone
// added up to a second to the first pixels), then less often for a slow start (a pull, a busy host).
function pollIntervalMs(waitedMs: number): number {
  if (waitedMs < 5_000) return 100;
  if (waitedMs < 15_000) return 250;
  return 1_000;
}
// Consecutive failed polls (network blips, a restarting server) tolerated before giving up.
const MAX_POLL_ERRORS = 5;

export interface LaunchProgress {
  state: string;
  message: string;
  progress: number | null;
}

// How waiting for a session ended.
export type SessionLaunchResult =
  | { ok: true; session: api.Session; link?: undefined }
  // credentialsRequired: the server asks the user for a user name and password; launch again with them.
  | { ok: false; reason: string; session?: api.Session; cancelled?: boolean; credentialsRequired?: boolean };

// How a launch ended: a session as above, or a link workspace's URL to open in a new tab (no
// session was made).
export type LaunchResult = SessionLaunchResult | { ok: true; link: string; session?: undefined };

const STARTING_MESSAGES: Record<string, string> = {
  requested: 'Waiting for a place to run…',
  provisioning: 'Preparing the container…',
  starting: 'Starting the desktop…',
  resuming: 'Resuming…',
};

export function describe(session: api.Session): LaunchProgress {
  return {
    state: session.state,
    message: session.operational_message || STARTING_MESSAGES[session.state] || `Session is ${session.state}…`,
    progress: typeof session.progress === 'number' ? Math.max(0, Math.min(100, session.progress)) : null,
  };
}

export function isGone(state: string): boolean {
  return state === 'failed' || state === 'destroyed' || state === 'deleting' || state === 'stopped';
}

// Polls a session until it is running. `signal` cancels the wait (the session is left alone).
export async function waitUntilRunning(
  session: api.Session,
  onProgress: (p: LaunchProgress) => void,
  signal: AbortSignal,
  timeoutMs = LAUNCH_TIMEOUT_MS,
): Promise<SessionLaunchResult> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let current = session;
  let errors = 0;
  for (;;) {
    if (current.state === 'running') return { ok: true, session: current };
    if (isGone(current.state)) {
      return {
        ok: false,
        session: current,
        reason: current.state_reason
          ? `The session could not start: ${current.state_reason}`
          : `The session could not start (it is ${current.state}).`,
      };
    }
    onProgress(describe(current));
    if (Date.now() >= deadline) {
      return {
        ok: false,
        session: current,
        reason: `The session did not start within ${Math.round(timeoutMs / 1000)} seconds (last state: ${current.state}). ` +
          'It may still start: check "Your sessions", or delete it and try again.',
      };
    }
    await sleep(pollIntervalMs(Date.now() - started), signal);
    if (signal.aborted) return { ok: false, reason: 'Launch cancelled.', session: current, cancelled: true };
    try {
      current = await api.getSession(current.id);
      errors = 0;
    } catch (e) {
      if (e instanceof api.ApiError && e.status === 404) {
        return { ok: false, reason: 'The session was deleted before it started.' };
      }
      if (++errors >= MAX_POLL_ERRORS) {
        return {
          ok: false,
          session: current,
          reason: `Lost contact with the server while the session was starting: ${e instanceof Error ? e.message : String(e)}`,
        };
      }
    }
  }
}

// Only absolute http and https links are opened: anything else (javascript:, data:, file:) is
// refused.
export function isOpenableLink(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:';
  } catch {
    return false;
  }
}

export async function launch(
  workspaceId: string,
  onProgress: (p: LaunchProgress) => void,
  signal: AbortSignal,
  credentials?: api.ConnectionCredentials,
): Promise<LaunchResult> {
  onProgress({ state: 'requested', message: 'Requesting a session…', progress: 0 });
  let created: { started: boolean; session: api.Session };
  try {
    const answer = await api.launchWorkspace(workspaceId, { credentials });
    if (answer.link) {
      if (!isOpenableLink(answer.url)) return { ok: false, reason: 'This link workspace has an address that cannot be opened (only http and https links are).' };
      return { ok: true, link: new URL(answer.url).href };
    }
    created = answer;
  } catch (e) {
    if (api.asksForCredentials(e)) {
      // "server X asks for your credentials: give connection_username and ..." speaks to API callers.
      const who = (e as api.ApiError).message.replace(/\s*asks for your credentials.*$/is, '');
      return { ok: false, credentialsRequired: true, reason: `${who.charAt(0).toUpperCase()}${who.slice(1)} asks for your user name and password.` };
    }
    if (e instanceof api.ApiError) {
      // Nothing fits ("pool Finance: 3 servers, all at their limit of 2"): the server's own words
      // say which servers and why, so they are shown as they are.
      return { ok: false, reason: e.message };
    }
    return { ok: false, reason: String(e) };
  }
  if (created.started && created.session.state === 'running') return { ok: true, session: created.session };
  return waitUntilRunning(created.session, onProgress, signal);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
