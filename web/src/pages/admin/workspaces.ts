// Admin: workspaces (list, create, edit, enable/disable, delete).

import * as api from '../../api';
import type { PageContext } from '../../app';
import { h, replaceChildren } from '../../dom';
import { formatBytes, formatCores } from '../../format';
import { act, adminLayout, button, num, openForm, row, str, table, type FormValues } from './common';

const MiB = 1024 * 1024;

export async function workspacesAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Workspaces');
  page.toolbar.appendChild(h('button', { type: 'button', onclick: () => edit(null) }, 'New workspace'));

  async function load(): Promise<void> {
    let items: api.Workspace[];
    try {
      items = await api.listWorkspaces();
    } catch (e) {
      page.message.error(`Workspaces could not be loaded: ${(e as Error).message}`);
      return;
    }
    items.sort((a, b) => a.friendly_name.localeCompare(b.friendly_name));
    replaceChildren(
      page.content,
      table('Workspaces', ['Name', 'Type', 'Image', 'Resources', 'Enabled', 'Actions'],
        items.map((w) =>
          row(w.friendly_name, [
            h('strong', {}, w.friendly_name),
            w.type,
            w.image ?? '–',
            w.resources ? `${formatCores(w.resources.millicores)}, ${formatBytes(w.resources.memory_bytes)}${w.resources.gpus ? `, ${w.resources.gpus} GPU` : ''}` : '–',
            w.enabled ? 'yes' : 'no',
            h('div', { class: 'actions' },
              button('Edit', `Edit ${w.friendly_name}`, () => edit(w)),
              button(w.enabled ? 'Disable' : 'Enable', `${w.enabled ? 'Disable' : 'Enable'} ${w.friendly_name}`, () =>
                act(page, `${w.friendly_name} ${w.enabled ? 'disabled' : 'enabled'}.`, () => api.updateWorkspace(w.id, { ...w, enabled: !w.enabled }), load)),
              button('Delete', `Delete ${w.friendly_name}`, async () => {
                if (confirm(`Delete workspace ${w.friendly_name}?`)) await act(page, `${w.friendly_name} deleted.`, () => api.deleteWorkspace(w.id), load);
              }, 'danger')),
          ], { 'data-workspace-id': w.id })),
        'No workspaces yet.'),
    );
  }

  function edit(w: api.Workspace | null): void {
    openForm(w ? `Edit ${w.friendly_name}` : 'New workspace', [
      { name: 'friendly_name', label: 'Name', type: 'text', value: w?.friendly_name, required: true },
      { name: 'type', label: 'Type', type: 'select', value: w?.type ?? 'container', options: ['container', 'server', 'link'].map((v) => ({ value: v, label: v })) },
      { name: 'image', label: 'Image', type: 'text', value: w?.image, hint: 'Docker image, for container workspaces.' },
      { name: 'description', label: 'Description', type: 'textarea', value: w?.description },
      { name: 'categories', label: 'Categories', type: 'text', value: (w?.categories ?? []).join(', '), hint: 'Separated by commas.' },
      { name: 'thumbnail_url', label: 'Icon URL', type: 'text', value: w?.thumbnail_url },
      { name: 'millicores', label: 'CPU (millicores)', type: 'number', value: w?.resources?.millicores ?? 1000, min: 0 },
      { name: 'memory_mib', label: 'Memory (MiB)', type: 'number', value: w?.resources ? Math.round(w.resources.memory_bytes / MiB) : 1024, min: 0 },
      { name: 'gpus', label: 'GPUs', type: 'number', value: w?.resources?.gpus ?? 0, min: 0 },
      { name: 'port', label: 'Port', type: 'number', value: w?.port ?? 5901, min: 1 },
      { name: 'protocol', label: 'Protocol', type: 'select', value: w?.protocol ?? 'vnc', options: ['vnc', 'http', 'https'].map((v) => ({ value: v, label: v })) },
      { name: 'path', label: 'Path', type: 'text', value: w?.path ?? '', hint: 'For HTTP workspaces: the path of the application page.' },
      { name: 'enabled', label: 'Enabled', type: 'checkbox', value: w?.enabled ?? true },
    ], async (v: FormValues) => {
      const body: Partial<api.Workspace> = {
        ...(w ?? {}),
        friendly_name: str(v.friendly_name),
        type: str(v.type),
        image: str(v.image),
        description: str(v.description),
        categories: str(v.categories).split(',').map((c) => c.trim()).filter(Boolean),
        thumbnail_url: str(v.thumbnail_url),
        resources: { millicores: num(v.millicores), memory_bytes: num(v.memory_mib) * MiB, gpus: num(v.gpus) },
        port: num(v.port),
        protocol: str(v.protocol),
        path: str(v.path),
        enabled: Boolean(v.enabled),
      };
      if (w) await api.updateWorkspace(w.id, body);
      else await api.createWorkspace(body);
      page.message.info(`${body.friendly_name} saved.`);
      await load();
    });
  }

  await load();
}
