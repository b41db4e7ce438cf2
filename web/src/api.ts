// Every call to kasm-server's REST API (/api/v1) lives here or in a *-api.ts module beside it (the
// autoscaler's in autoscale-api.ts). The rest of the application imports the typed functions.

export const API_BASE = '/api/v1';
const DEFAULT_TIMEOUT_MS = 15_000;
const CSRF_STORAGE_KEY = 'kasm.csrf';

// ---- types ---------------------------------------------------------------------------------------

export interface Resources {
  millicores: number;
  memory_bytes: number;
  gpus: number;
}

export interface User {
  id: string;
  username: string;
  first_name?: string;
  last_name?: string;
  email?: string;
  organization?: string;
  phone?: string;
  group_ids?: string[];
  disabled?: boolean;
  locked?: boolean;
  created_at?: number;
  last_login_at?: number | null;
}

export interface AuthInfo {
  user: User;
  permissions: string[];
  csrf_token: string;
  expires_at: number;
}

export interface ListPage<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface Workspace {
  id: string;
  type: string;
  enabled: boolean;
  friendly_name: string;
  description?: string;
  categories?: string[];
  thumbnail_url?: string;
  image?: string;
  resources?: Resources;
  port?: number;
  protocol?: string;
  path?: string;
  // Server, server pool and link workspaces: what they open instead of a container.
  server_id?: string | null;
  server_pool_id?: string | null;
  link_url?: string;
  // Where a user's home lives between sessions (host path or volume, with {username}, {user_id},
  // {image_id}); empty: none.
  persistent_profile_path?: string;
  [extra: string]: unknown;
}

export type WorkspaceType = 'container' | 'server' | 'server_pool' | 'link';

export type SessionState =
  | 'requested'
  | 'provisioning'
  | 'starting'
  | 'running'
  | 'pausing'
  | 'paused'
  | 'resuming'
  | 'stopping'
  | 'stopped'
  | 'deleting'
  | 'destroyed'
  | 'failed'
  | string;

export interface Session {
  id: string;
  user_id: string;
  workspace_id: string;
  zone_id?: string;
  agent_id?: string;
  state: SessionState;
  state_reason?: string;
  operational_message?: string;
  progress?: number;
  created_at?: number;
  started_at?: number | null;
  expires_at?: number | null;
  hard_expires_at?: number | null;
  url?: string;
  ws_url?: string;
  protocol?: string;
  // The share link's id while the session is shared, and who else may open it.
  share_id?: string | null;
  permissions?: SharePermission[];
}

// Who may open someone else's session: "r" watches, "rw" controls keyboard and mouse too.
export type ShareAccess = 'r' | 'rw';

export interface SharePermission {
  user_id: string;
  username: string;
  access: ShareAccess;
  granted_at: number;
}

export interface ShareInfo {
  session_id: string;
  share_id: string | null;
  expires_at: number | null;
  permissions: SharePermission[];
}

// What joining a shared session answers: `url` is the viewer page (with its token).
export interface JoinedShare {
  session_id: string;
  state: SessionState;
  access: ShareAccess;
  url: string;
  ws_url: string;
  chat_url: string;
}

export interface Agent {
  id: string;
  hostname: string;
  zone_id?: string;
  enabled: boolean;
  draining: boolean;
  status: 'pending' | 'ok' | 'missing' | 'dead' | string;
  reported?: Resources;
  reserved?: Resources;
  overrides?: Partial<Resources> | null;
  session_count?: number;
  images?: string[];
  labels?: Record<string, string>;
}

export interface GroupSettings {
  max_sessions_per_user?: number;
  keepalive_expiration?: number;
  // Members may share their sessions (needs the licence's "sharing" feature).
  allow_sharing?: boolean;
  // Members may give the people they share with control of keyboard and mouse.
  shared_session_full_control?: boolean;
  // Members keep their home between sessions on workspaces with a persistent profile.
  allow_persistent_profile?: boolean;
  // File transfer from the viewer's Files panel: into ~/Uploads, out of ~/Downloads, up to a size.
  allow_uploads?: boolean;
  allow_downloads?: boolean;
  file_transfer_limit_mb?: number;
  // The viewer's Sound and Mic buttons.
  allow_audio?: boolean;
  allow_microphone?: boolean;
  [extra: string]: unknown;
}

export interface Group {
  id: string;
  name: string;
  description?: string;
  priority?: number;
  permissions?: string[];
  settings?: GroupSettings;
}

export interface Zone {
  id: string;
  name: string;
  [extra: string]: unknown;
}

export interface StagingConfig {
  id: string;
  zone_id: string;
  workspace_id: string;
  desired: number;
  expiration: number;
  enabled?: boolean;
  // False when the pool cannot fill (disabled, or the licence lacks the staging feature): the
  // server says why in inactive_reason.
  active?: boolean;
  inactive_reason?: string | null;
}

// How a fixed server is reached: KasmVNC (its own web client over HTTPS), RDP, VNC or SSH.
export type ServerConnectionType = 'kasmvnc' | 'rdp' | 'vnc' | 'ssh';
// unknown: never checked; running: answers; missing: stopped answering a moment ago; dead: long gone.
export type ServerStatus = 'unknown' | 'running' | 'missing' | 'dead';

// A fixed RDP, VNC, SSH or KasmVNC host. Its secrets never come back: only whether it has them.
export interface Server {
  id: string;
  friendly_name: string;
  hostname: string;
  port: number;
  connection_type: ServerConnectionType;
  zone_id: string;
  pool_id?: string | null;
  // False: the server drains (sessions on it go on, no new one starts).
  enabled: boolean;
  max_simultaneous_sessions: number;
  // May contain {sso_username}, the launching user's name.
  connection_username: string;
  connection_domain: string;
  rdp_security: 'any' | 'nla' | 'tls' | 'rdp';
  certificate_policy: 'pin' | 'ignore';
  keyboard_layout: string;
  assigned_user_id?: string | null;
  slots: { session_id: string; user_id: string }[];
  status: ServerStatus;
  status_reason: string;
  last_checked_at?: number | null;
  has_password: boolean;
  has_private_key: boolean;
  // No user name, password or key: the user is asked for them at launch.
  prompts_for_credentials: boolean;
  created_at?: number;
}

// What a write of a server may carry: its fields, and the secrets (a string sets, null or "" clears,
// absent keeps).
export type ServerWrite = Partial<
  Omit<Server, 'id' | 'slots' | 'status' | 'status_reason' | 'last_checked_at' | 'has_password' | 'has_private_key' | 'prompts_for_credentials' | 'created_at'>
> & {
  connection_password?: string | null;
  connection_private_key?: string | null;
};

export interface ServerPool {
  id: string;
  name: string;
  type?: string;
  created_at?: number;
}

export interface Installation {
  installation_id: string;
  version: string;
}

// ---- errors --------------------------------------------------------------------------------------

// A failed call. `status` is 0 when no HTTP answer arrived (unreachable server, timeout).
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get unreachable(): boolean {
    return this.status === 0;
  }
}

// Called when an authenticated call answers 401 (the login expired or the server forgot it).
let onUnauthenticated: (() => void) | null = null;
export function setUnauthenticatedHandler(handler: () => void): void {
  onUnauthenticated = handler;
}

// ---- CSRF token ------------------------------------------------------------------------------------

// The token lives in sessionStorage so a reload keeps working until /auth/me refreshes it.
let csrfToken: string | null = readStoredCsrf();

function readStoredCsrf(): string | null {
  try {
    return sessionStorage.getItem(CSRF_STORAGE_KEY);
  } catch {
    return null;
  }
}

function storeCsrf(token: string | null): void {
  csrfToken = token;
  try {
    if (token) sessionStorage.setItem(CSRF_STORAGE_KEY, token);
    else sessionStorage.removeItem(CSRF_STORAGE_KEY);
  } catch {
    // Storage may be disabled; the in-memory copy is enough for this page.
  }
}

// ---- transport -------------------------------------------------------------------------------------

interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined | null>;
  timeoutMs?: number;
  // Do not call the unauthenticated handler on 401 (login and the startup /auth/me probe).
  quiet401?: boolean;
}

export interface ApiResponse<T> {
  status: number;
  data: T;
}

// call, data, listAll and enc are exported for the *-api.ts modules beside this one (autoscale-api.ts).
export async function call<T>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
  let url = API_BASE + path;
  if (options.query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query)) {
      if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += '?' + qs;
  }
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;

  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: 'same-origin',
      body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
      signal: controller.signal,
    });
  } catch (e) {
    const timedOut = controller.signal.aborted;
    throw new ApiError(
      timedOut
        ? `The server did not answer within ${Math.round(timeoutMs / 1000)} seconds.`
        : 'The server cannot be reached. Check your connection or try again in a moment.',
      0,
      timedOut ? 'deadline_exceeded' : 'unavailable',
    );
  } finally {
    clearTimeout(timer);
  }

  const text = await response.text().catch(() => '');
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (!response.ok) {
    const body = (parsed ?? {}) as { error_message?: string; code?: string };
    const retry = response.headers.get('Retry-After');
    const retrySeconds = retry !== null && /^\d+$/.test(retry.trim()) ? Number(retry) : null;
    const error = new ApiError(
      body.error_message || defaultMessage(response.status),
      response.status,
      body.code || codeForStatus(response.status),
      retrySeconds,
    );
    if (response.status === 401 && !options.quiet401) {
      storeCsrf(null);
      onUnauthenticated?.();
    }
    throw error;
  }
  return { status: response.status, data: parsed as T };
}

function codeForStatus(status: number): string {
  switch (status) {
    case 400: return 'invalid_argument';
    case 401: return 'unauthenticated';
    case 403: return 'permission_denied';
    case 404: return 'not_found';
    case 409: return 'already_exists';
    case 429: return 'resource_exhausted';
    case 503: return 'unavailable';
    default: return status >= 500 ? 'internal' : 'unknown';
  }
}

function defaultMessage(status: number): string {
  switch (status) {
    case 401: return 'You are not logged in.';
    case 403: return 'You do not have permission to do that.';
    case 404: return 'Not found.';
    case 429: return 'Too many requests; try again shortly.';
    case 502:
    case 503:
    case 504: return 'The server is unavailable right now.';
    default: return `The server answered with status ${status}.`;
  }
}

export async function data<T>(p: Promise<ApiResponse<T>>): Promise<T> {
  return (await p).data;
}

export interface Paging {
  limit?: number;
  offset?: number;
}

// Fetches every page of a list (the server caps `limit`); stops at `max` items as a safety net.
export async function listAll<T>(path: string, query: RequestOptions['query'] = {}, max = 5000): Promise<T[]> {
  const items: T[] = [];
  let offset = 0;
  const limit = 100;
  for (;;) {
    const page = await data(call<ListPage<T>>('GET', path, { query: { ...query, limit, offset } }));
    items.push(...page.items);
    offset += page.items.length;
    if (page.items.length === 0 || offset >= page.total || items.length >= max) return items;
  }
}

// ---- auth ------------------------------------------------------------------------------------------

export async function login(username: string, password: string): Promise<AuthInfo> {
  const info = await data(
    call<AuthInfo>('POST', '/auth/login', { body: { username, password }, quiet401: true }),
  );
  storeCsrf(info.csrf_token);
  return info;
}

// The current login, or null when there is none (401).
export async function currentUser(): Promise<AuthInfo | null> {
  try {
    const info = await data(call<AuthInfo>('GET', '/auth/me', { quiet401: true }));
    storeCsrf(info.csrf_token);
    return info;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      storeCsrf(null);
      return null;
    }
    throw e;
  }
}

export async function logout(): Promise<void> {
  try {
    await call<void>('POST', '/auth/logout', { quiet401: true });
  } finally {
    storeCsrf(null);
  }
}

// ---- workspaces ------------------------------------------------------------------------------------

export const listWorkspaces = () => listAll<Workspace>('/workspaces');
export const getWorkspace = (id: string) => data(call<Workspace>('GET', `/workspaces/${enc(id)}`));
export const createWorkspace = (w: Partial<Workspace>) => data(call<Workspace>('POST', '/workspaces', { body: w }));
export const updateWorkspace = (id: string, w: Partial<Workspace>) =>
  data(call<Workspace>('PUT', `/workspaces/${enc(id)}`, { body: w }));
export const deleteWorkspace = (id: string) => data(call<void>('DELETE', `/workspaces/${enc(id)}`));

// ---- sessions --------------------------------------------------------------------------------------

export interface SessionFilter {
  all?: boolean;
  state?: string;
  user_id?: string;
  workspace_id?: string;
}

export const listSessions = (filter: SessionFilter = {}) =>
  listAll<Session>('/sessions', {
    all: filter.all ? 'true' : undefined,
    state: filter.state,
    user_id: filter.user_id,
    workspace_id: filter.workspace_id,
  });
export const getSession = (id: string) => data(call<Session>('GET', `/sessions/${enc(id)}`));

// 201: the session is running; 202: it is still starting (poll getSession).
export async function createSession(workspaceId: string, zoneId?: string): Promise<{ started: boolean; session: Session }> {
  const body: Record<string, string> = { workspace_id: workspaceId };
  if (zoneId) body.zone_id = zoneId;
  // Launching can pull an image; give the first answer more time than an ordinary call.
  const r = await call<Session>('POST', '/sessions', { body, timeoutMs: 60_000 });
  return { started: r.status === 201, session: r.data };
}
// What launching a workspace answers: a link to open (no session is made) or a session.
export type LaunchAnswer =
  | { link: true; url: string; workspace_id: string }
  | { link: false; started: boolean; session: Session };

// Credentials the user typed for a server that asks for them; sent with this launch only.
export interface ConnectionCredentials {
  username: string;
  password: string;
}

// Like createSession, for any type of workspace: a link workspace answers its URL.
export async function launchWorkspace(
  workspaceId: string,
  options: { zoneId?: string; credentials?: ConnectionCredentials } = {},
): Promise<LaunchAnswer> {
  const body: Record<string, string> = { workspace_id: workspaceId };
  if (options.zoneId) body.zone_id = options.zoneId;
  if (options.credentials) {
    body.connection_username = options.credentials.username;
    body.connection_password = options.credentials.password;
  }
  const r = await call<Session | { link: true; url: string; workspace_id: string }>('POST', '/sessions', { body, timeoutMs: 60_000 });
  if ('link' in r.data && r.data.link === true) return r.data;
  return { link: false, started: r.status === 201, session: r.data as Session };
}

// True for the answer of a launch on a server that has no stored credentials and wants the user's.
export function asksForCredentials(e: unknown): boolean {
  return e instanceof ApiError && e.status === 400 && /asks for your credentials/i.test(e.message);
}
export const deleteSession = (id: string) => data(call<void>('DELETE', `/sessions/${enc(id)}`));
const sessionAction = (id: string, action: 'keepalive' | 'pause' | 'resume' | 'stop') =>
  data(call<Session | undefined>('POST', `/sessions/${enc(id)}/${action}`));
export const keepaliveSession = (id: string) => sessionAction(id, 'keepalive');
export const pauseSession = (id: string) => sessionAction(id, 'pause');
export const resumeSession = (id: string) => sessionAction(id, 'resume');
export const stopSession = (id: string) => sessionAction(id, 'stop');

// ---- sharing ---------------------------------------------------------------------------------------

export const getShare = (id: string) => data(call<ShareInfo>('GET', `/sessions/${enc(id)}/share`));
// Makes the share link, or answers the one that exists.
export const createShare = (id: string) => data(call<ShareInfo>('POST', `/sessions/${enc(id)}/share`, { body: {} }));
// Ends the link and every joiner's access (their views close at once).
export const deleteShare = (id: string) => data(call<void>('DELETE', `/sessions/${enc(id)}/share`));
export const setSharePermission = (id: string, userId: string, access: ShareAccess) =>
  data(call<SharePermission>('PUT', `/sessions/${enc(id)}/permissions/${enc(userId)}`, { body: { access } }));
export const removeSharePermission = (id: string, userId: string) =>
  data(call<void>('DELETE', `/sessions/${enc(id)}/permissions/${enc(userId)}`));
export const joinShare = (shareId: string) => data(call<JoinedShare>('POST', `/shares/${enc(shareId)}/join`, { body: {} }));

// The WebSocket URL noVNC connects to: same host as the page, ws: or wss: to match it.
export function desktopWebSocketUrl(session: Session): string | null {
  if (!session.ws_url) return null;
  if (/^wss?:\/\//.test(session.ws_url)) return session.ws_url;
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}${session.ws_url.startsWith('/') ? '' : '/'}${session.ws_url}`;
}

// The chat socket of a session, beside its viewer page: `<viewer page directory>kasm/chat`, with the
// viewer page's token. Null when the session has no viewer URL (not the caller's own session).
export function chatWebSocketUrl(session: Session): string | null {
  if (!session.url) return null;
  const page = new URL(session.url, location.href);
  const dir = page.pathname.endsWith('/') ? page.pathname : page.pathname.replace(/[^/]*$/, '');
  const scheme = page.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${page.host}${dir}kasm/chat${page.search}`;
}

// ---- agents ----------------------------------------------------------------------------------------

export const listAgents = () => listAll<Agent>('/agents');
export const getAgent = (id: string) => data(call<Agent>('GET', `/agents/${enc(id)}`));
export const patchAgent = (id: string, patch: { enabled?: boolean; draining?: boolean; overrides?: unknown }) =>
  data(call<Agent>('PATCH', `/agents/${enc(id)}`, { body: patch }));

// ---- fixed servers and server pools ---------------------------------------------------------------

export const listServers = () => listAll<Server>('/servers');
export const getServer = (id: string) => data(call<Server>('GET', `/servers/${enc(id)}`));
export const createServer = (s: ServerWrite) => data(call<Server>('POST', '/servers', { body: s }));
// Changes only the fields given (secrets too: see ServerWrite).
export const patchServer = (id: string, s: ServerWrite) => data(call<Server>('PATCH', `/servers/${enc(id)}`, { body: s }));
export const deleteServer = (id: string) => data(call<void>('DELETE', `/servers/${enc(id)}`));
// Only this user is placed on the server from now on.
export const assignServerUser = (id: string, userId: string) =>
  data(call<Server>('POST', `/servers/${enc(id)}/assigned-users`, { body: { user_id: userId } }));
export const unassignServerUser = (id: string, userId: string) =>
  data(call<void>('DELETE', `/servers/${enc(id)}/assigned-users/${enc(userId)}`));

export const listServerPools = () => listAll<ServerPool>('/server-pools');
export const getServerPool = (id: string) => data(call<ServerPool>('GET', `/server-pools/${enc(id)}`));
export const createServerPool = (p: Partial<ServerPool>) => data(call<ServerPool>('POST', '/server-pools', { body: p }));
export const patchServerPool = (id: string, p: Partial<ServerPool>) =>
  data(call<ServerPool>('PATCH', `/server-pools/${enc(id)}`, { body: p }));
export const deleteServerPool = (id: string) => data(call<void>('DELETE', `/server-pools/${enc(id)}`));

// ---- users and groups ------------------------------------------------------------------------------

export const listUsers = () => listAll<User>('/users');
export const getUser = (id: string) => data(call<User>('GET', `/users/${enc(id)}`));
export const createUser = (u: Partial<User> & { password: string }) => data(call<User>('POST', '/users', { body: u }));
export const patchUser = (id: string, patch: Partial<User> & { password?: string }) =>
  data(call<User>('PATCH', `/users/${enc(id)}`, { body: patch }));
export const deleteUser = (id: string) => data(call<void>('DELETE', `/users/${enc(id)}`));

// What DELETE /users/{id}?delete_profiles=true removed (per profile and agent), and what it left.
export interface ProfileRemovalEntry {
  workspace_id: string;
  workspace: string;
  profile: string;
  agent_id: string | null; // null: left before any agent was asked (in use, or shared with another user).
  error?: string;
}
export interface ProfileRemoval {
  user_id: string;
  removed: ProfileRemovalEntry[];
  failed: ProfileRemovalEntry[];
}
// Deletes the user and their per-user persistent profiles on every agent.
export const deleteUserWithProfiles = (id: string) =>
  data(call<ProfileRemoval>('DELETE', `/users/${enc(id)}`, { query: { delete_profiles: true } }));

export const listGroups = () => listAll<Group>('/groups');
export const getGroup = (id: string) => data(call<Group>('GET', `/groups/${enc(id)}`));
export const createGroup = (g: Partial<Group>) => data(call<Group>('POST', '/groups', { body: g }));
export const updateGroup = (id: string, g: Partial<Group>) => data(call<Group>('PUT', `/groups/${enc(id)}`, { body: g }));
export const deleteGroup = (id: string) => data(call<void>('DELETE', `/groups/${enc(id)}`));
export const addUserToGroup = (groupId: string, userId: string) =>
  data(call<void>('POST', `/groups/${enc(groupId)}/users/${enc(userId)}`));
export const removeUserFromGroup = (groupId: string, userId: string) =>
  data(call<void>('DELETE', `/groups/${enc(groupId)}/users/${enc(userId)}`));

// ---- zones, staging, licences, installation --------------------------------------------------------

export const listZones = () => listAll<Zone>('/zones');
export const createZone = (z: Partial<Zone>) => data(call<Zone>('POST', '/zones', { body: z }));
export const updateZone = (id: string, z: Partial<Zone>) => data(call<Zone>('PUT', `/zones/${enc(id)}`, { body: z }));
export const deleteZone = (id: string) => data(call<void>('DELETE', `/zones/${enc(id)}`));

export const listStaging = () => listAll<StagingConfig>('/staging');
export const createStaging = (s: Partial<StagingConfig>) => data(call<StagingConfig>('POST', '/staging', { body: s }));
export const updateStaging = (id: string, s: Partial<StagingConfig>) =>
  data(call<StagingConfig>('PUT', `/staging/${enc(id)}`, { body: s }));
export const deleteStaging = (id: string) => data(call<void>('DELETE', `/staging/${enc(id)}`));

export const getLicenses = () =>
  data(call<{ status: Record<string, unknown>; items: Record<string, unknown>[] }>('GET', '/licenses'));
export const addLicense = (license: string) => data(call<unknown>('POST', '/licenses', { body: { license } }));
export const removeLicense = (id: string) => data(call<void>('DELETE', `/licenses/${enc(id)}`));
export const getInstallation = () => data(call<Installation>('GET', '/installation'));

export function enc(id: string): string {
  return encodeURIComponent(id);
}
