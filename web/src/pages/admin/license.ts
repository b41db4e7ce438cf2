// Admin: the installation id, the licence in force, usage against its limit, days left; add a
// licence by pasting it, remove one.

import * as api from '../../api';
import type { PageContext } from '../../app';
import { h, replaceChildren } from '../../dom';
import { act, adminLayout, button, row, table } from './common';

function text(v: unknown): string {
  return v === null || v === undefined ? '–' : String(v);
}

export async function licenseAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Licence');

  async function load(): Promise<void> {
    let info: Awaited<ReturnType<typeof api.getLicenses>>;
    try {
      info = await api.getLicenses();
    } catch (e) {
      page.message.error(`The licence could not be loaded: ${(e as Error).message}`);
      return;
    }
    const st = info.status;
    const limit = Number(st.limit);
    const unlimited = !Number.isFinite(limit) || limit >= 9e18;
    const facts = h('dl', { class: 'facts', 'aria-label': 'Licence status' },
      h('dt', {}, 'Installation ID'), h('dd', { 'data-testid': 'installation-id' }, text(st.installation_id)),
      h('dt', {}, 'State'), h('dd', { 'data-testid': 'license-state' }, text(st.state)),
      h('dt', {}, 'In use'), h('dd', {}, `${text(st.used)} of ${unlimited ? 'unlimited' : text(st.limit)} ${st.type === 'named_users' ? 'named users' : 'concurrent sessions'}`),
      h('dt', {}, 'Features'), h('dd', {}, Array.isArray(st.features) && st.features.length ? st.features.join(', ') : 'none'),
      h('dt', {}, 'Days left'), h('dd', {}, text(st.days_left)),
    );
    const note = h('p', { class: 'hint' }, text(st.message));
    const pasted = h('textarea', { id: 'license-text', rows: 8, placeholder: '-----BEGIN KASM LICENSE-----' }) as HTMLTextAreaElement;
    const add = h('form', { class: 'license-form', 'aria-label': 'Add a licence' },
      h('label', { for: 'license-text' }, 'Paste a licence'), pasted,
      h('button', { type: 'submit' }, 'Add licence'));
    add.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      await act(page, 'Licence added.', () => api.addLicense(pasted.value), load);
    });
    const rows = info.items.map((l) => {
      const id = String(l.id);
      return row(id, [
        h('code', {}, id),
        text(l.customer),
        text(l.type),
        text(l.limit),
        l.expires_at ? new Date(Number(l.expires_at)).toLocaleDateString() : '–',
        button('Remove', `Remove licence ${id}`, async () => {
          if (confirm(`Remove licence ${id}? The community limits apply without one.`)) {
            await act(page, 'Licence removed.', () => api.removeLicense(id), load);
          }
        }, 'danger'),
      ]);
    });
    replaceChildren(page.content, facts, note,
      table('Licences', ['ID', 'Customer', 'Type', 'Limit', 'Expires', 'Actions'], rows, 'No licence: the community limits apply.'),
      add);
  }

  await load();
}
