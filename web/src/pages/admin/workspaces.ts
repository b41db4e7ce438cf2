// Admin: workspaces (list, create, edit, enable/disable, delete) of every type: a container image,
// a fixed server, a server pool, or a link that opens in a new tab.

import * as api from '../../api';
import type { PageContext } from '../../app';
import { h, replaceChildren } from '../../dom';
import { formatBytes, formatCores } from '../../format';
import { isOpenableLink } from '../../launch';
import { act, adminLayout, button, num, openForm, row, str, table, type FieldSpec, type FormValues } from './common';

const MiB = 1024 * 1024;

const TYPES: { value: api.WorkspaceType; label: string }[] = [
  { value: 'container', label: 'Container' },
  { value: 'server', label: 'Server' },
  { value: 'server_pool', label: 'Server pool' },
  { value: 'link', label: 'Link' },
];

export function workspaceTypeLabel(t: string): string {
  return TYPES.find((x) => x.value === t)?.label ?? t;
}

export async function workspacesAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Workspaces');
  page.toolbar.appendChild(h('button', { type: 'button', onclick: () => edit(null) }, 'New workspace'));
  // Null when this administrator may not list them (agents:manage): the form then takes ids.
  let servers: api.Server[] | null = null;
  let pools: api.ServerPool[] | null = null;

  async function load(): Promise<void> {
    let items: api.Workspace[];
    try {
      [items, servers, pools] = await Promise.all([
        api.listWorkspaces(),
        api.listServers().catch(() => null),
        api.listServerPools().catch(() => null),
      ]);
    } catch (e) {
      page.message.error(`Workspaces could not be loaded: ${(e as Error).message}`);
      return;
    }
    items.sort((a, b) => a.friendly_name.localeCompare(b.friendly_name));
    replaceChildren(
      page.content,
      table('Workspaces', ['Name', 'Type', 'Opens', 'Resources', 'Enabled', 'Actions'],
        items.map((w) =>
          row(w.friendly_name, [
            h('strong', {}, w.friendly_name),
            workspaceTypeLabel(w.type),
            target(w),
            w.type === 'container' && w.resources
              ? `${formatCores(w.resources.millicores)}, ${formatBytes(w.resources.memory_bytes)}${w.resources.gpus ? `, ${w.resources.gpus} GPU` : ''}`
              : '–',
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

  // What a workspace opens: its image, server, pool or link.
  function target(w: api.Workspace): Node | string {
    switch (w.type) {
      case 'server': {
        const s = servers?.find((x) => x.id === w.server_id);
        return s ? `${s.friendly_name} (${s.connection_type.toUpperCase()})` : w.server_id ?? '–';
      }
      case 'server_pool':
        return pools?.find((p) => p.id === w.server_pool_id)?.name ?? w.server_pool_id ?? '–';
      case 'link':
        return w.link_url ? h('code', {}, w.link_url) : '–';
      default:
        return w.image || '–';
    }
  }

  function edit(w: api.Workspace | null): void {
    const only = (...types: api.WorkspaceType[]) => ({ field: 'type', values: types });
    const serverField: FieldSpec = servers
      ? { name: 'server_id', label: 'Server', type: 'select', value: w?.server_id ?? '', required: true, showWhen: only('server'),
        options: [{ value: '', label: 'Choose a server' }, ...servers.map((s) => ({ value: s.id, label: `${s.friendly_name} (${s.connection_type.toUpperCase()}, ${s.hostname}:${s.port})` }))] }
      : { name: 'server_id', label: 'Server ID', type: 'text', value: w?.server_id ?? '', required: true, showWhen: only('server') };
    const poolField: FieldSpec = pools
      ? { name: 'server_pool_id', label: 'Server pool', type: 'select', value: w?.server_pool_id ?? '', required: true, showWhen: only('server_pool'),
        options: [{ value: '', label: 'Choose a pool' }, ...pools.map((p) => ({ value: p.id, label: p.name }))] }
      : { name: 'server_pool_id', label: 'Server pool ID', type: 'text', value: w?.server_pool_id ?? '', required: true, showWhen: only('server_pool') };
    openForm(w ? `Edit ${w.friendly_name}` : 'New workspace', [
      { name: 'friendly_name', label: 'Name', type: 'text', value: w?.friendly_name, required: true },
      { name: 'type', label: 'Type', type: 'select', value: w?.type ?? 'container', options: TYPES },
      { name: 'image', label: 'Image', type: 'text', value: w?.image, required: true, hint: 'Docker image.', showWhen: only('container') },
      serverField,
      poolField,
      { name: 'link_url', label: 'Link URL', type: 'url', value: w?.link_url ?? '', required: true, hint: 'An http:// or https:// address; it opens in a new tab.', showWhen: only('link') },
      { name: 'description', label: 'Description', type: 'textarea', value: w?.description },
      { name: 'categories', label: 'Categories', type: 'text', value: (w?.categories ?? []).join(', '), hint: 'Separated by commas.' },
      { name: 'thumbnail_url', label: 'Icon URL', type: 'text', value: w?.thumbnail_url },
      { name: 'millicores', label: 'CPU (millicores)', type: 'number', value: w?.resources?.millicores || 1000, min: 0, showWhen: only('container') },
      { name: 'memory_mib', label: 'Memory (MiB)', type: 'number', value: w?.resources?.memory_bytes ? Math.round(w.resources.memory_bytes / MiB) : 1024, min: 0, showWhen: only('container') },
      { name: 'gpus', label: 'GPUs', type: 'number', value: w?.resources?.gpus ?? 0, min: 0, showWhen: only('container') },
      { name: 'port', label: 'Port', type: 'number', value: w?.port ?? 5901, min: 1, showWhen: only('container') },
      { name: 'protocol', label: 'Protocol', type: 'select', value: w?.protocol ?? 'vnc', options: ['vnc', 'http', 'https'].map((v) => ({ value: v, label: v })), showWhen: only('container') },
      { name: 'path', label: 'Path', type: 'text', value: w?.path ?? '', hint: 'For HTTP workspaces: the path of the application page.', showWhen: only('container') },
      { name: 'persistent_profile_path', label: 'Persistent profile', type: 'text', value: w?.persistent_profile_path ?? '', showWhen: only('container'),
        hint: 'Where users keep their home between sessions: a host path on the agent or a Docker volume name, with {username}, {user_id} and {image_id}. Empty: none. Used for members of groups that allow persistent profiles.' },
      { name: 'enabled', label: 'Enabled', type: 'checkbox', value: w?.enabled ?? true },
    ], async (v: FormValues) => {
      const type = str(v.type) as api.WorkspaceType;
      const body: Partial<api.Workspace> = {
        ...(w ?? {}),
        friendly_name: str(v.friendly_name),
        type,
        description: str(v.description),
        categories: str(v.categories).split(',').map((c) => c.trim()).filter(Boolean),
        thumbnail_url: str(v.thumbnail_url),
        enabled: Boolean(v.enabled),
        // Only the type's own target is kept: a workspace opens one thing.
        server_id: type === 'server' ? str(v.server_id) : null,
        server_pool_id: type === 'server_pool' ? str(v.server_pool_id) : null,
        link_url: type === 'link' ? str(v.link_url) : '',
      };
      if (type === 'container') {
        Object.assign(body, {
          image: str(v.image),
          resources: { millicores: num(v.millicores), memory_bytes: num(v.memory_mib) * MiB, gpus: num(v.gpus) },
          port: num(v.port),
          persistent_profile_path: str(v.persistent_profile_path).trim(),
          protocol: str(v.protocol),
          path: str(v.path),
        });
      }
      if (type === 'link' && !isOpenableLink(body.link_url ?? '')) throw new Error('The link must be an http:// or https:// address.');
      if (w) await api.updateWorkspace(w.id, body);
      else await api.createWorkspace(body);
      page.message.info(`${body.friendly_name} saved.`);
      await load();
    });
  }

  await load();
}
