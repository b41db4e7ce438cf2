// Admin: groups with their permissions, settings (session limit, keepalive expiration, session
// sharing) and members.

import * as api from '../../api';
import type { PageContext } from '../../app';
import { field, h, replaceChildren } from '../../dom';
import { formatDurationMs } from '../../format';
import { act, adminLayout, button, num, openForm, row, str, table, type FormValues } from './common';

const PERMISSIONS = ['admin', 'users:manage', 'workspaces:manage', 'agents:manage', 'sessions:manage', 'sessions:launch', 'settings:manage', 'licenses:manage'];

export async function groupsAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Groups');
  page.toolbar.appendChild(h('button', { type: 'button', onclick: () => edit(null) }, 'New group'));
  let users: api.User[] = [];

  async function load(): Promise<void> {
    let groups: api.Group[];
    try {
      [groups, users] = await Promise.all([api.listGroups(), api.listUsers().catch(() => [] as api.User[])]);
    } catch (e) {
      page.message.error(`Groups could not be loaded: ${(e as Error).message}`);
      return;
    }
    groups.sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0) || a.name.localeCompare(b.name));
    replaceChildren(
      page.content,
      table('Groups', ['Name', 'Priority', 'Permissions', 'Sessions per user', 'Keepalive expiration', 'Sharing', 'Members', 'Actions'],
        groups.map((g) => {
          const members = users.filter((u) => (u.group_ids ?? []).includes(g.id));
          return row(g.name, [
            h('strong', {}, g.name),
            String(g.priority ?? '–'),
            (g.permissions ?? []).join(', ') || '–',
            g.settings?.max_sessions_per_user === 0 ? 'unlimited' : String(g.settings?.max_sessions_per_user ?? '–'),
            formatDurationMs(g.settings?.keepalive_expiration),
            sharingText(g.settings),
            members.map((m) => m.username).join(', ') || '–',
            h('div', { class: 'actions' },
              button('Edit', `Edit ${g.name}`, () => edit(g)),
              button('Members', `Members of ${g.name}`, () => editMembers(g, members)),
              button('Delete', `Delete ${g.name}`, async () => {
                if (confirm(`Delete group ${g.name}?`)) await act(page, `${g.name} deleted.`, () => api.deleteGroup(g.id), load);
              }, 'danger')),
          ], { 'data-group-id': g.id });
        })),
    );
  }

  function edit(g: api.Group | null): void {
    openForm(g ? `Edit ${g.name}` : 'New group', [
      { name: 'name', label: 'Name', type: 'text', value: g?.name, required: true },
      { name: 'description', label: 'Description', type: 'textarea', value: g?.description },
      { name: 'priority', label: 'Priority', type: 'number', value: g?.priority ?? 100, hint: 'Lower numbers win when a user is in several groups.' },
      { name: 'permissions', label: 'Permissions', type: 'checkboxes', value: g?.permissions ?? ['sessions:launch'], options: PERMISSIONS.map((p) => ({ value: p, label: p })) },
      { name: 'max_sessions_per_user', label: 'Sessions per user', type: 'number', value: g?.settings?.max_sessions_per_user ?? 1, min: 0, hint: '0 = unlimited.' },
      { name: 'keepalive_minutes', label: 'Keepalive expiration (minutes)', type: 'number', value: Math.round((g?.settings?.keepalive_expiration ?? 3_600_000) / 60_000), min: 1 },
      { name: 'allow_sharing', label: 'Members may share their sessions', type: 'checkbox', value: Boolean(g?.settings?.allow_sharing), hint: 'Needs a licence with the sharing feature.' },
      { name: 'shared_session_full_control', label: 'Members may give the people they share with control', type: 'checkbox', value: Boolean(g?.settings?.shared_session_full_control), hint: 'Without it, people a session is shared with only watch.' },
      { name: 'allow_persistent_profile', label: 'Members keep their home between sessions', type: 'checkbox', value: Boolean(g?.settings?.allow_persistent_profile), hint: 'On workspaces that have a persistent profile.' },
      { name: 'allow_uploads', label: 'Members may upload files into their sessions', type: 'checkbox', value: Boolean(g?.settings?.allow_uploads), hint: 'Into ~/Uploads, from the viewer\'s Files panel.' },
      { name: 'allow_downloads', label: 'Members may download files from their sessions', type: 'checkbox', value: Boolean(g?.settings?.allow_downloads), hint: 'From ~/Downloads.' },
      { name: 'allow_audio', label: 'Members hear their desktops', type: 'checkbox', value: g?.settings?.allow_audio !== false, hint: 'The viewer\'s Sound button.' },
      { name: 'allow_microphone', label: 'Members may use their microphone in their desktops', type: 'checkbox', value: Boolean(g?.settings?.allow_microphone), hint: 'The viewer\'s Mic button.' },
      { name: 'file_transfer_limit_mb', label: 'Largest file moved (MB)', type: 'number', value: g?.settings?.file_transfer_limit_mb ?? 100, min: 1, hint: '1 to 1024.' },
    ], async (v: FormValues) => {
      const body: Partial<api.Group> = {
        ...(g ?? {}),
        name: str(v.name),
        description: str(v.description),
        priority: num(v.priority, 100),
        permissions: v.permissions as string[],
        settings: {
          ...(g?.settings ?? {}),
          max_sessions_per_user: num(v.max_sessions_per_user, 1),
          keepalive_expiration: num(v.keepalive_minutes, 60) * 60_000,
          allow_sharing: v.allow_sharing === true,
          shared_session_full_control: v.shared_session_full_control === true,
          allow_persistent_profile: v.allow_persistent_profile === true,
          allow_uploads: v.allow_uploads === true,
          allow_downloads: v.allow_downloads === true,
          file_transfer_limit_mb: num(v.file_transfer_limit_mb, 100),
          allow_audio: v.allow_audio === true,
          allow_microphone: v.allow_microphone === true,
        },
      };
      if (g) await api.updateGroup(g.id, body);
      else await api.createGroup(body);
      page.message.info(`${body.name} saved.`);
      await load();
    });
  }

  function editMembers(g: api.Group, members: api.User[]): void {
    const others = users.filter((u) => !members.includes(u));
    const select = h('select', { name: 'user' }, others.map((u) => h('option', { value: u.id }, u.username)));
    const list = h('ul', { class: 'members' }, members.map((m) =>
      h('li', {}, m.username, ' ', button('Remove', `Remove ${m.username} from ${g.name}`, async () => {
        await act(page, `${m.username} removed from ${g.name}.`, () => api.removeUserFromGroup(g.id, m.id), load);
        dialog.close();
      }, 'danger'))));
    const add = button('Add', `Add user to ${g.name}`, async () => {
      if (!select.value) return;
      await act(page, `User added to ${g.name}.`, () => api.addUserToGroup(g.id, select.value), load);
      dialog.close();
    }, 'primary');
    const close = h('button', { type: 'button', class: 'secondary' }, 'Close');
    const dialog = h('dialog', { 'aria-label': `Members of ${g.name}` },
      h('h2', {}, `Members of ${g.name}`), list.childElementCount ? list : h('p', {}, 'No members.'),
      others.length ? h('div', { class: 'inline' }, field('Add user', select), add) : null,
      h('div', { class: 'actions' }, close));
    close.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => dialog.remove());
    document.body.appendChild(dialog);
    dialog.showModal();
  }

  await load();
}

function sharingText(settings: api.GroupSettings | undefined): string {
  if (!settings?.allow_sharing) return 'off';
  return settings.shared_session_full_control ? 'watch or control' : 'watch only';
}
