// The admin landing page: sections the user may open, the installation and the licence status.

import * as api from '../../api';
import { can, type PageContext } from '../../app';
import { h, replaceChildren } from '../../dom';
import { SECTIONS } from './common';

export async function adminHomePage(ctx: PageContext): Promise<void> {
  const info = h('dl', { class: 'facts' });
  replaceChildren(
    ctx.main,
    h('h1', {}, 'Administration'),
    h('ul', { class: 'admin-sections' },
      SECTIONS.filter((s) => can(ctx.auth, ...s.anyOf)).map((s) => h('li', {}, h('a', { href: s.path, 'data-link': '' }, s.label)))),
    h('h2', {}, 'Installation'),
    info,
  );
  try {
    const inst = await api.getInstallation();
    info.append(h('dt', {}, 'Installation ID'), h('dd', {}, inst.installation_id), h('dt', {}, 'Version'), h('dd', {}, inst.version));
  } catch (e) {
    info.append(h('dt', {}, 'Installation'), h('dd', {}, `unavailable: ${(e as Error).message}`));
  }
  if (can(ctx.auth, 'licenses:manage')) {
    try {
      const lic = await api.getLicenses();
      for (const [k, v] of Object.entries(lic.status ?? {})) {
        info.append(h('dt', {}, `Licence ${k.replace(/_/g, ' ')}`), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v)));
      }
    } catch {
      // Licence status is optional here.
    }
  }
}
