// Admin: users (list, create, edit, unlock/disable, delete, optionally with their persistent profiles).

import * as api from '../../api';
import type { PageContext } from '../../app';
import { h, replaceChildren } from '../../dom';
import { formatTime } from '../../format';
import { adminLayout, button, openForm, row, str, table, type FormValues } from './common';

export async function usersAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Users');
  page.toolbar.appendChild(h('button', { type: 'button', onclick: () => edit(null) }, 'New user'));
  const groupNames = new Map<string, string>();
  // What the last deletion with profiles removed and left; shown above the list until the next one.
  let report: HTMLElement | null = null;

  async function load(): Promise<void> {
    let users: api.User[];
    try {
      const [us, gs] = await Promise.all([api.listUsers(), api.listGroups().catch(() => [])]);
      users = us;
      gs.forEach((g) => groupNames.set(g.id, g.name));
    } catch (e) {
      page.message.error(`Users could not be loaded: ${(e as Error).message}`);
      return;
    }
    users.sort((a, b) => a.username.localeCompare(b.username));
    replaceChildren(
      page.content,
      table('Users', ['Username', 'Name', 'Groups', 'Status', 'Last login', 'Actions'],
        users.map((u) =>
          row(u.username, [
            h('strong', {}, u.username),
            [u.first_name, u.last_name].filter(Boolean).join(' ') || '–',
            (u.group_ids ?? []).map((g) => groupNames.get(g) ?? g).join(', ') || '–',
            u.disabled ? 'disabled' : u.locked ? 'locked' : 'active',
            formatTime(u.last_login_at ?? null),
            h('div', { class: 'actions' },
              button('Edit', `Edit ${u.username}`, () => edit(u)),
              u.id === ctx.auth.user.id ? null : button('Delete', `Delete ${u.username}`, () => remove(u), 'danger')),
          ], { 'data-user-id': u.id })),
        'No users.'),
    );
    if (report) page.content.prepend(report);
  }

  function remove(u: api.User): void {
    const form = openForm(`Delete user ${u.username}?`, [
      {
        name: 'delete_profiles', label: 'Also delete their persistent profiles', type: 'checkbox', value: false,
        hint: 'Their sessions are deleted too. Profiles are the home directories and volumes of the workspaces whose persistent profile path names the user, removed on every agent; this cannot be undone.',
      },
    ], async (v: FormValues) => {
      if (v.delete_profiles) {
        const r = await api.deleteUserWithProfiles(u.id);
        report = removalReport(u.username, r);
        const what = `${u.username} deleted; ${r.removed.length} profile removal(s) done`;
        if (r.failed.length > 0) page.message.error(`${what}, ${r.failed.length} failed: see below.`);
        else page.message.info(`${what}.`);
      } else {
        await api.deleteUser(u.id);
        report = null;
        page.message.info(`${u.username} deleted.`);
      }
      await load();
    });
    const submit = form.querySelector<HTMLButtonElement>('button[type="submit"]');
    if (submit) {
      submit.textContent = 'Delete';
      submit.className = 'danger';
    }
  }

  function removalReport(username: string, r: api.ProfileRemoval): HTMLElement {
    const rows = [
      ...r.failed.map((e) => ({ e, result: `not removed: ${e.error ?? 'unknown error'}` })),
      ...r.removed.map((e) => ({ e, result: 'removed' })),
    ].map(({ e, result }) =>
      row(`${e.profile} on ${e.agent_id ?? 'no agent'}`, [e.workspace, h('code', {}, e.profile), e.agent_id ?? '–', result]));
    return h('section', { 'aria-label': `Persistent profiles of ${username}` },
      h('h2', {}, `Persistent profiles of ${username}`),
      table(`Persistent profiles of ${username}`, ['Workspace', 'Profile', 'Agent', 'Result'], rows, 'Nothing to remove: no workspace has a per-user persistent profile.'));
  }

  function edit(u: api.User | null): void {
    openForm(u ? `Edit ${u.username}` : 'New user', [
      { name: 'username', label: 'Username', type: 'text', value: u?.username, required: true },
      { name: 'password', label: u ? 'New password' : 'Password', type: 'password', required: !u, hint: u ? 'Leave empty to keep the current password.' : undefined },
      { name: 'first_name', label: 'First name', type: 'text', value: u?.first_name },
      { name: 'last_name', label: 'Last name', type: 'text', value: u?.last_name },
      { name: 'email', label: 'Email', type: 'text', value: u?.email },
      { name: 'organization', label: 'Organization', type: 'text', value: u?.organization },
      { name: 'disabled', label: 'Disabled', type: 'checkbox', value: u?.disabled ?? false },
      { name: 'locked', label: 'Locked (after failed logins)', type: 'checkbox', value: u?.locked ?? false },
    ], async (v: FormValues) => {
      const body: Partial<api.User> & { password?: string } = {
        username: str(v.username),
        first_name: str(v.first_name),
        last_name: str(v.last_name),
        email: str(v.email),
        organization: str(v.organization),
        disabled: Boolean(v.disabled),
        locked: Boolean(v.locked),
      };
      if (str(v.password)) body.password = String(v.password);
      if (u) await api.patchUser(u.id, body);
      else await api.createUser({ ...body, password: String(v.password) });
      page.message.info(`${body.username} saved.`);
      await load();
    });
  }

  await load();
}
