// Admin: staging pools (sessions started ahead of demand per zone and workspace).

import * as api from '../../api';
import type { PageContext } from '../../app';
import { h, replaceChildren } from '../../dom';
import { formatDurationMs } from '../../format';
import { act, adminLayout, button, num, openForm, row, str, table } from './common';

export async function stagingAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Staging pools');
  page.toolbar.appendChild(h('button', { type: 'button', onclick: () => edit(null) }, 'New staging pool'));
  let zones: api.Zone[] = [];
  let workspaces: api.Workspace[] = [];

  async function load(): Promise<void> {
    let configs: api.StagingConfig[];
    try {
      [configs, zones, workspaces] = await Promise.all([api.listStaging(), api.listZones(), api.listWorkspaces()]);
    } catch (e) {
      page.message.error(`Staging pools could not be loaded: ${(e as Error).message}`);
      return;
    }
    const zoneName = (id: string) => zones.find((z) => z.id === id)?.name ?? id;
    const wsName = (id: string) => workspaces.find((w) => w.id === id)?.friendly_name ?? id;
    replaceChildren(page.content, table('Staging pools', ['Workspace', 'Zone', 'Desired', 'Expiration', 'State', 'Actions'], configs.map((c) =>
      row(`${wsName(c.workspace_id)} in ${zoneName(c.zone_id)}`, [
        wsName(c.workspace_id),
        zoneName(c.zone_id),
        String(c.desired),
        formatDurationMs(c.expiration),
        // An operator is told why a pool stays empty (the licence, or disabled), not left guessing.
        c.active === false
          ? h('span', { class: 'status-inactive', 'data-testid': 'staging-inactive' }, `Inactive: ${c.inactive_reason ?? 'unknown reason'}`)
          : 'Active',
        h('div', { class: 'actions' },
          button('Edit', `Edit staging of ${wsName(c.workspace_id)}`, () => edit(c)),
          button('Delete', `Delete staging of ${wsName(c.workspace_id)}`, async () => {
            if (confirm('Delete this staging pool? Staged sessions are removed.')) await act(page, 'Staging pool deleted.', () => api.deleteStaging(c.id), load);
          }, 'danger')),
      ], { 'data-staging-id': c.id })), 'No staging pools.'));
  }

  function edit(c: api.StagingConfig | null): void {
    openForm(c ? 'Edit staging pool' : 'New staging pool', [
      { name: 'workspace_id', label: 'Workspace', type: 'select', value: c?.workspace_id, required: true, options: workspaces.map((w) => ({ value: w.id, label: w.friendly_name })) },
      { name: 'zone_id', label: 'Zone', type: 'select', value: c?.zone_id, required: true, options: zones.map((z) => ({ value: z.id, label: z.name })) },
      { name: 'desired', label: 'Sessions to keep ready', type: 'number', value: c?.desired ?? 1, min: 0 },
      { name: 'expiration_minutes', label: 'Staged session lifetime (minutes)', type: 'number', value: Math.round((c?.expiration ?? 3_600_000) / 60_000), min: 1 },
    ], async (v) => {
      const body = { ...(c ?? {}), workspace_id: str(v.workspace_id), zone_id: str(v.zone_id), desired: num(v.desired, 1), expiration: num(v.expiration_minutes, 60) * 60_000 };
      if (c) await api.updateStaging(c.id, body);
      else await api.createStaging(body);
      page.message.info('Staging pool saved.');
      await load();
    });
  }

  await load();
}
