// Admin: fixed servers (RDP, VNC, SSH and KasmVNC hosts that sessions connect to instead of a
// container): the list with their load and health, the create and edit form, the user a server is
// assigned to, enable and disable (drain), delete. Refreshes every 10 seconds while visible, as
// the health checks change the status.
//
// Secrets are write-only: the password and private key fields are never filled in, blank keeps
// what is stored, and only the "clear" boxes remove it.

import * as api from '../../api';
import type { PageContext } from '../../app';
import { h, replaceChildren } from '../../dom';
import { formatTime } from '../../format';
import { act, adminLayout, button, num, openForm, row, str, table, type FieldSpec, type FormValues } from './common';

export const CONNECTION_TYPES: { value: api.ServerConnectionType; label: string; port: number }[] = [
  { value: 'rdp', label: 'RDP', port: 3389 },
  { value: 'vnc', label: 'VNC', port: 5900 },
  { value: 'ssh', label: 'SSH', port: 22 },
  { value: 'kasmvnc', label: 'KasmVNC', port: 443 },
];

export function connectionTypeLabel(t: string): string {
  return CONNECTION_TYPES.find((c) => c.value === t)?.label ?? t;
}

// "host:port", with brackets around an IPv6 address.
export function hostPort(s: api.Server): string {
  const host = s.hostname.includes(':') && !s.hostname.startsWith('[') ? `[${s.hostname}]` : s.hostname;
  return `${host}:${s.port}`;
}

// What a server does about credentials, without showing any of them.
function credentialsText(s: api.Server): string {
  if (s.prompts_for_credentials) return 'asks the user at launch';
  const parts: string[] = [];
  if (s.connection_username) parts.push(`user ${s.connection_domain ? `${s.connection_domain}\\` : ''}${s.connection_username}`);
  if (s.has_password) parts.push('password stored');
  if (s.has_private_key) parts.push('key stored');
  return parts.join(', ');
}

function stateText(s: api.Server): string {
  if (s.enabled) return 'accepting sessions';
  return s.slots.length > 0 ? `draining (${s.slots.length} left)` : 'disabled';
}

export async function serversAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Servers');
  page.toolbar.append(
    h('button', { type: 'button', onclick: () => edit(null) }, 'New server'),
    h('button', { type: 'button', class: 'secondary', onclick: () => void load() }, 'Refresh'),
  );
  let zones: api.Zone[] = [];
  let pools: api.ServerPool[] = [];
  // Empty without users:manage: the assign form then takes a user id.
  let users: api.User[] = [];

  async function load(): Promise<void> {
    let servers: api.Server[];
    try {
      [servers, zones, pools, users] = await Promise.all([
        api.listServers(),
        api.listZones(),
        api.listServerPools(),
        api.listUsers().catch(() => [] as api.User[]),
      ]);
    } catch (e) {
      page.message.error(`Servers could not be loaded: ${(e as Error).message}`);
      return;
    }
    servers.sort((a, b) => a.friendly_name.localeCompare(b.friendly_name));
    const zoneName = (id: string) => zones.find((z) => z.id === id)?.name ?? id;
    const poolName = (id: string | null | undefined) => (id ? pools.find((p) => p.id === id)?.name ?? id : '–');
    const userName = (id: string) => users.find((u) => u.id === id)?.username ?? id;
    replaceChildren(
      page.content,
      table('Servers', ['Name', 'Type', 'Host', 'Zone', 'Pool', 'Sessions', 'Status', 'State', 'Credentials', 'Assigned to', 'Actions'],
        servers.map((s) => {
          const name = s.friendly_name;
          return row(name, [
            h('strong', {}, name),
            connectionTypeLabel(s.connection_type),
            h('code', {}, hostPort(s)),
            zoneName(s.zone_id),
            poolName(s.pool_id),
            h('span', { 'data-testid': 'server-sessions' }, `${s.slots.length} / ${s.max_simultaneous_sessions}`),
            h('div', { class: 'server-status' },
              h('span', { class: `status status-${s.status}`, 'data-testid': 'server-status' }, s.status),
              s.status_reason ? h('small', { class: 'hint' }, s.status_reason) : null,
              s.last_checked_at ? h('small', { class: 'hint' }, `checked ${formatTime(s.last_checked_at)}`) : null),
            h('span', { 'data-testid': 'server-state' }, stateText(s)),
            credentialsText(s),
            s.assigned_user_id ? userName(s.assigned_user_id) : 'anyone',
            h('div', { class: 'actions' },
              button('Edit', `Edit ${name}`, () => edit(s)),
              button(s.enabled ? 'Disable (drain)' : 'Enable', `${s.enabled ? 'Disable' : 'Enable'} ${name}`, () =>
                act(page, s.enabled ? `${name} is draining: sessions on it go on, no new ones start.` : `${name} accepts sessions again.`,
                  () => api.patchServer(s.id, { enabled: !s.enabled }), load)),
              s.assigned_user_id
                ? button('Unassign', `Unassign ${userName(s.assigned_user_id)} from ${name}`, () =>
                  act(page, `${name} is open to anyone again.`, () => api.unassignServerUser(s.id, s.assigned_user_id as string), load))
                : button('Assign user', `Assign a user to ${name}`, () => assign(s)),
              button('Delete', `Delete ${name}`, async () => {
                const sessions = s.slots.length ? ` Its ${s.slots.length} session(s) end.` : '';
                if (confirm(`Delete server ${name}?${sessions}`)) await act(page, `${name} deleted.`, () => api.deleteServer(s.id), load);
              }, 'danger')),
          ], { 'data-server-id': s.id, 'data-status': s.status, 'data-enabled': String(s.enabled) });
        }),
        'No servers yet.'),
    );
  }

  function assign(s: api.Server): void {
    const field: FieldSpec = users.length
      ? { name: 'user_id', label: 'User', type: 'select', required: true, options: users.map((u) => ({ value: u.id, label: u.username })) }
      : { name: 'user_id', label: 'User ID', type: 'text', required: true, hint: 'The id of the user (their username is not known here).' };
    openForm(`Assign a user to ${s.friendly_name}`, [field], async (v) => {
      await api.assignServerUser(s.id, str(v.user_id));
      page.message.info(`${s.friendly_name} now takes only that user's sessions.`);
      await load();
    });
  }

  function edit(s: api.Server | null): void {
    const type = s?.connection_type ?? 'rdp';
    const fields: FieldSpec[] = [
      { name: 'friendly_name', label: 'Name', type: 'text', value: s?.friendly_name, required: true },
      { name: 'connection_type', label: 'Connection type', type: 'select', value: type, options: CONNECTION_TYPES.map((c) => ({ value: c.value, label: c.label })) },
      { name: 'hostname', label: 'Host', type: 'text', value: s?.hostname, required: true, hint: 'A host name or an address, without scheme or port.' },
      { name: 'port', label: 'Port', type: 'number', value: s?.port ?? CONNECTION_TYPES.find((c) => c.value === type)?.port, required: true, min: 1, max: 65535 },
      { name: 'zone_id', label: 'Zone', type: 'select', value: s?.zone_id, required: true, options: zones.map((z) => ({ value: z.id, label: z.name })) },
      { name: 'pool_id', label: 'Pool', type: 'select', value: s?.pool_id ?? '', options: [{ value: '', label: 'No pool' }, ...pools.map((p) => ({ value: p.id, label: p.name }))] },
      { name: 'max_simultaneous_sessions', label: 'Sessions at once', type: 'number', value: s?.max_simultaneous_sessions ?? 1, required: true, min: 1, max: 10000 },
      { name: 'enabled', label: 'Accepts new sessions', type: 'checkbox', value: s?.enabled ?? true, hint: 'Unticked, the server drains: sessions on it go on, no new ones start.' },
      { name: 'connection_username', label: 'User name', type: 'text', value: s?.connection_username,
        hint: '{sso_username} stands for the launching user\'s name. Leave the user name, password and key blank to ask the user at launch.' },
      { name: 'connection_domain', label: 'Domain', type: 'text', value: s?.connection_domain, showWhen: { field: 'connection_type', values: ['rdp'] } },
      { name: 'connection_password', label: 'Password', type: 'password',
        hint: s?.has_password ? 'A password is stored: leave blank to keep it.' : 'None stored: leave blank to keep it that way.' },
    ];
    if (s?.has_password) fields.push({ name: 'clear_password', label: 'Clear the stored password', type: 'checkbox', value: false });
    fields.push({ name: 'connection_private_key', label: 'Private key', type: 'textarea', secret: true, showWhen: { field: 'connection_type', values: ['ssh'] },
      hint: s?.has_private_key ? 'A key is stored: leave blank to keep it. OpenSSH or PEM format.' : 'None stored: leave blank to keep it that way. OpenSSH or PEM format.' });
    if (s?.has_private_key) {
      fields.push({ name: 'clear_private_key', label: 'Clear the stored private key', type: 'checkbox', value: false, showWhen: { field: 'connection_type', values: ['ssh'] } });
    }
    fields.push(
      { name: 'rdp_security', label: 'RDP security', type: 'select', value: s?.rdp_security ?? 'any', showWhen: { field: 'connection_type', values: ['rdp'] },
        options: [
          { value: 'any', label: 'Any (the server chooses)' },
          { value: 'nla', label: 'NLA' },
          { value: 'tls', label: 'TLS' },
          { value: 'rdp', label: 'RDP (legacy)' },
        ] },
      { name: 'certificate_policy', label: 'Server certificate', type: 'select', value: s?.certificate_policy ?? 'pin', showWhen: { field: 'connection_type', values: ['rdp', 'kasmvnc'] },
        hint: 'SSH host keys are always pinned.',
        options: [
          { value: 'pin', label: 'Pin on first use, refuse a changed one' },
          { value: 'ignore', label: 'Do not check' },
        ] },
      { name: 'keyboard_layout', label: 'Keyboard layout', type: 'text', value: s?.keyboard_layout ?? 'en-us', showWhen: { field: 'connection_type', values: ['rdp'] } },
    );

    const form = openForm(s ? `Edit ${s.friendly_name}` : 'New server', fields, async (v: FormValues) => {
      const connectionType = str(v.connection_type) as api.ServerConnectionType;
      const body: api.ServerWrite = {
        friendly_name: str(v.friendly_name),
        connection_type: connectionType,
        hostname: str(v.hostname),
        port: num(v.port),
        zone_id: str(v.zone_id),
        pool_id: str(v.pool_id) || null,
        max_simultaneous_sessions: num(v.max_simultaneous_sessions, 1),
        enabled: Boolean(v.enabled),
        connection_username: str(v.connection_username),
        connection_domain: connectionType === 'rdp' ? str(v.connection_domain) : '',
        rdp_security: (str(v.rdp_security) || 'any') as api.Server['rdp_security'],
        certificate_policy: connectionType === 'ssh' ? 'pin' : (str(v.certificate_policy) as api.Server['certificate_policy']),
        keyboard_layout: str(v.keyboard_layout) || 'en-us',
      };
      // Blank keeps a stored secret; only the boxes clear one. Passwords are sent as typed.
      const password = typeof v.connection_password === 'string' ? v.connection_password : '';
      if (v.clear_password === true) body.connection_password = null;
      else if (password) body.connection_password = password;
      const key = typeof v.connection_private_key === 'string' ? v.connection_private_key.trim() : '';
      if (connectionType !== 'ssh') {
        // Only SSH servers may hold a key: one left from an SSH server goes with the change.
        if (s?.has_private_key) body.connection_private_key = null;
      } else if (v.clear_private_key === true) {
        body.connection_private_key = null;
      } else if (key) {
        body.connection_private_key = `${key}\n`;
      }
      const saved = s ? await api.patchServer(s.id, body) : await api.createServer(body);
      page.message.info(`${saved.friendly_name} saved.`);
      await load();
    });

    // The port follows the connection type while it is that type's usual one.
    const typeSelect = form.elements.namedItem('connection_type') as HTMLSelectElement;
    const portInput = form.elements.namedItem('port') as HTMLInputElement;
    let lastType = typeSelect.value;
    typeSelect.addEventListener('change', () => {
      const before = CONNECTION_TYPES.find((c) => c.value === lastType)?.port;
      const after = CONNECTION_TYPES.find((c) => c.value === typeSelect.value)?.port;
      if (after !== undefined && (portInput.value === '' || Number(portInput.value) === before)) portInput.value = String(after);
      lastType = typeSelect.value;
    });
  }

  await load();
  const timer = window.setInterval(() => {
    if (document.visibilityState === 'visible' && !document.querySelector('dialog[open]')) void load();
  }, 10_000);
  ctx.onLeave(() => window.clearInterval(timer));
}
