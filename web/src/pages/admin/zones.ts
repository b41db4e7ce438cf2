// Admin: deployment zones.

import * as api from '../../api';
import type { PageContext } from '../../app';
import { h, replaceChildren } from '../../dom';
import { act, adminLayout, button, openForm, row, str, table } from './common';

export async function zonesAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Zones');
  page.toolbar.appendChild(h('button', { type: 'button', onclick: () => edit(null) }, 'New zone'));

  async function load(): Promise<void> {
    let zones: api.Zone[];
    let agents: api.Agent[] = [];
    try {
      [zones, agents] = await Promise.all([api.listZones(), api.listAgents().catch(() => [] as api.Agent[])]);
    } catch (e) {
      page.message.error(`Zones could not be loaded: ${(e as Error).message}`);
      return;
    }
    replaceChildren(page.content, table('Zones', ['Name', 'Agents', 'Actions'], zones.map((z) =>
      row(z.name, [
        h('strong', {}, z.name),
        String(agents.filter((a) => a.zone_id === z.id).length),
        h('div', { class: 'actions' },
          button('Edit', `Edit ${z.name}`, () => edit(z)),
          button('Delete', `Delete ${z.name}`, async () => {
            if (confirm(`Delete zone ${z.name}?`)) await act(page, `${z.name} deleted.`, () => api.deleteZone(z.id), load);
          }, 'danger')),
      ], { 'data-zone-id': z.id }))));
  }

  function edit(z: api.Zone | null): void {
    openForm(z ? `Edit ${z.name}` : 'New zone', [{ name: 'name', label: 'Name', type: 'text', value: z?.name, required: true }], async (v) => {
      const body = { ...(z ?? {}), name: str(v.name) };
      if (z) await api.updateZone(z.id, body);
      else await api.createZone(body);
      page.message.info(`${body.name} saved.`);
      await load();
    });
  }

  await load();
}
