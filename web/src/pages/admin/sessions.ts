// Admin: every user's sessions, filtered by state and user, with kill (delete).

import * as api from '../../api';
import type { PageContext } from '../../app';
import { field, h, replaceChildren } from '../../dom';
import { formatRemaining, formatTime } from '../../format';
import { act, adminLayout, button, row, table } from './common';

const STATES = ['requested', 'provisioning', 'running', 'paused', 'stopping', 'stopped', 'destroyed', 'failed'];

export async function sessionsAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Sessions');
  const stateFilter = h('select', { name: 'state' }, h('option', { value: '' }, 'Any state'), STATES.map((s) => h('option', { value: s }, s)));
  const userFilter = h('select', { name: 'user' }, h('option', { value: '' }, 'Any user'));
  page.toolbar.append(field('State', stateFilter), field('User', userFilter), h('button', { type: 'button', class: 'secondary', onclick: () => void load() }, 'Refresh'));

  const users = new Map<string, string>();
  const workspaces = new Map<string, string>();
  try {
    const [us, ws] = await Promise.all([api.listUsers().catch(() => []), api.listWorkspaces().catch(() => [])]);
    us.sort((a, b) => a.username.localeCompare(b.username)).forEach((u) => {
      users.set(u.id, u.username);
      userFilter.appendChild(h('option', { value: u.id }, u.username));
    });
    ws.forEach((w) => workspaces.set(w.id, w.friendly_name));
  } catch {
    // Names are a convenience; ids are shown instead.
  }

  async function load(): Promise<void> {
    let sessions: api.Session[];
    try {
      sessions = await api.listSessions({ all: true, state: stateFilter.value || undefined, user_id: userFilter.value || undefined });
    } catch (e) {
      page.message.error(`Sessions could not be loaded: ${(e as Error).message}`);
      return;
    }
    sessions.sort((a, b) => (b.created_at ?? 0) - (a.created_at ?? 0));
    replaceChildren(
      page.content,
      table('Sessions', ['Workspace', 'User', 'State', 'Agent', 'Created', 'Expires', 'Actions'],
        sessions.map((s) => {
          const name = workspaces.get(s.workspace_id) ?? s.workspace_id;
          return row(`${name} of ${users.get(s.user_id) ?? s.user_id}`, [
            name,
            users.get(s.user_id) ?? s.user_id,
            h('span', { class: `state state-${s.state}`, title: s.state_reason ?? '' }, s.state),
            s.agent_id ?? '–',
            formatTime(s.created_at),
            s.expires_at ? formatRemaining(s.expires_at - Date.now()) : '–',
            s.state === 'destroyed'
              ? ''
              : button('Kill', `Kill session ${s.id}`, async () => {
                  if (confirm(`Kill the ${name} session of ${users.get(s.user_id) ?? s.user_id}?`)) {
                    await act(page, 'Session killed.', () => api.deleteSession(s.id), load);
                  }
                }, 'danger'),
          ], { 'data-session-id': s.id });
        }),
        'No sessions match.'),
    );
  }
  stateFilter.addEventListener('change', () => void load());
  userFilter.addEventListener('change', () => void load());
  await load();
}
