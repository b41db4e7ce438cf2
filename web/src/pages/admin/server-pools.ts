// Admin: server pools (named groups of fixed servers a "server pool" workspace places its sessions
// on). Servers join a pool from their own form on the servers page.

import * as api from '../../api';
import type { PageContext } from '../../app';
import { h, replaceChildren } from '../../dom';
import { act, adminLayout, button, openForm, row, str, table } from './common';

export async function serverPoolsAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Server pools');
  page.toolbar.appendChild(h('button', { type: 'button', onclick: () => edit(null) }, 'New server pool'));

  async function load(): Promise<void> {
    let pools: api.ServerPool[];
    let servers: api.Server[];
    try {
      [pools, servers] = await Promise.all([api.listServerPools(), api.listServers()]);
    } catch (e) {
      page.message.error(`Server pools could not be loaded: ${(e as Error).message}`);
      return;
    }
    pools.sort((a, b) => a.name.localeCompare(b.name));
    replaceChildren(page.content, table('Server pools', ['Name', 'Servers', 'Sessions', 'Actions'], pools.map((p) => {
      const members = servers.filter((s) => s.pool_id === p.id).sort((a, b) => a.friendly_name.localeCompare(b.friendly_name));
      const used = members.reduce((n, s) => n + s.slots.length, 0);
      const limit = members.filter((s) => s.enabled).reduce((n, s) => n + s.max_simultaneous_sessions, 0);
      return row(p.name, [
        h('strong', {}, p.name),
        members.length
          ? h('details', {},
            h('summary', { 'data-testid': 'pool-server-count' }, `${members.length} server${members.length === 1 ? '' : 's'}`),
            h('ul', {}, members.map((s) => h('li', {}, s.friendly_name, s.enabled ? '' : ' (draining)'))))
          : h('span', { 'data-testid': 'pool-server-count' }, 'no servers'),
        `${used} / ${limit}`,
        h('div', { class: 'actions' },
          button('Rename', `Rename ${p.name}`, () => edit(p)),
          button('Delete', `Delete ${p.name}`, async () => {
            if (confirm(`Delete server pool ${p.name}?`)) await act(page, `${p.name} deleted.`, () => api.deleteServerPool(p.id), load);
          }, 'danger')),
      ], { 'data-pool-id': p.id });
    }), 'No server pools yet.'));
  }

  function edit(p: api.ServerPool | null): void {
    openForm(p ? `Rename ${p.name}` : 'New server pool', [{ name: 'name', label: 'Name', type: 'text', value: p?.name, required: true }], async (v) => {
      const name = str(v.name);
      if (p) await api.patchServerPool(p.id, { name });
      else await api.createServerPool({ name });
      page.message.info(`${name} saved.`);
      await load();
    });
  }

  await load();
}
