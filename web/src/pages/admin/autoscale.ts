// Admin: autoscaling. The list of autoscale configurations, each with the autoscaler's latest word
// (why it made, or did not make, a machine: what people most want to know) and its error; the
// create and edit form (autoscale-form.ts); and a configuration's own page with its machines and
// its decision log, refreshed every 5 seconds while open. Everything from the server goes in as
// text.

import * as api from '../../api';
import type { PageContext } from '../../app';
import * as as from '../../autoscale-api';
import { h, replaceChildren } from '../../dom';
import { formatBytes, formatCores, formatDurationMs, formatTime } from '../../format';
import { openAutoscaleForm, prettyJson } from './autoscale-form';
import { act, adminLayout, button, row, table, type AdminPage } from './common';

const LIST_REFRESH_MS = 10_000;
const DETAIL_REFRESH_MS = 5_000;

// "12 s ago", "4 min ago", or the date for older times.
function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  return formatTime(ms);
}

function timeEl(ms: number | null | undefined, relative = false): HTMLElement | string {
  if (!ms) return '–';
  return h('time', { datetime: new Date(ms).toISOString(), title: formatTime(ms) }, relative ? ago(ms) : formatTime(ms));
}

// The autoscaler's latest word on `c`, with its error and backoff; says so when it is disabled or
// has not looked at it yet.
export function statusBlock(c: as.AutoscaleConfig): HTMLElement {
  const s = c.status;
  const backoff = s?.backoff_until && s.backoff_until > Date.now() ? s.backoff_until : null;
  return h('div', { class: `autoscale-status${c.enabled ? '' : ' disabled'}`, 'data-testid': 'autoscale-status' },
    c.enabled ? null : h('strong', { class: 'status-disabled' }, 'Disabled: the autoscaler leaves it alone.'),
    s
      ? h('p', { class: 'summary', 'data-testid': 'autoscale-summary' }, s.summary || '(no summary)')
      : c.enabled ? h('p', { class: 'summary pending', 'data-testid': 'autoscale-summary-pending' }, 'Waiting for the autoscaler to look at it (it runs every 10 seconds or so).') : null,
    s?.error ? h('p', { class: 'error', 'data-testid': 'autoscale-error' }, s.error) : null,
    s ? h('small', { class: 'hint' }, c.enabled ? 'as of ' : 'last word, ', timeEl(s.at, true)) : null,
    backoff ? h('small', { class: 'hint backoff' }, 'After that failure, next try ', timeEl(backoff), ' (an edit does not bring it forward)') : null);
}

function standbyText(c: as.AutoscaleConfig): string {
  if (c.pool_id) return `${c.min_standby_sessions} free session${c.min_standby_sessions === 1 ? '' : 's'}`;
  const parts = [formatCores(c.standby.millicores)];
  if (c.standby.memory_bytes) parts.push(formatBytes(c.standby.memory_bytes));
  if (c.standby.gpus) parts.push(`${c.standby.gpus} GPU`);
  return parts.join(', ');
}

function scheduleText(c: as.AutoscaleConfig): string {
  if (!c.schedules.length) return 'always';
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  return c.schedules
    .map((s) => `${s.days.length ? s.days.map((d) => days[d] ?? d).join(' ') : 'every day'} ${s.start}–${s.end}`)
    .join('; ') + ` (${c.time_zone})`;
}

// "2 ready, 1 booting".
function phasesText(machines: as.AutoscaleMachine[]): string {
  if (!machines.length) return 'none';
  const counts = new Map<string, number>();
  for (const m of machines) counts.set(m.phase, (counts.get(m.phase) ?? 0) + 1);
  return [...counts].map(([phase, n]) => `${n} ${phase}`).join(', ');
}

async function confirmDelete(page: AdminPage, c: as.AutoscaleConfig, after: () => Promise<void> | void): Promise<void> {
  if (!confirm(`Delete autoscale configuration ${c.name}? Its machines must be gone first.`)) return;
  try {
    await as.deleteAutoscale(c.id);
    page.message.info(`${c.name} deleted.`);
    await after();
  } catch (e) {
    page.message.error(`${c.name} was not deleted: ${(e as Error).message}`);
  }
}

// A notice for the list page to show when it opens (the deletion made from a configuration's page).
let notice: string | null = null;

// Reloads every `ms` while the page is visible and no dialog is open; stops when the page is left.
function every(ctx: PageContext, ms: number, fn: () => Promise<void>): void {
  const timer = window.setInterval(() => {
    if (document.visibilityState === 'visible' && !document.querySelector('dialog[open]')) void fn();
  }, ms);
  ctx.onLeave(() => window.clearInterval(timer));
}

export async function autoscaleAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Autoscaling');
  if (notice) page.message.info(notice);
  notice = null;
  let zones: api.Zone[] = [];
  let pools: api.ServerPool[] = [];
  page.toolbar.append(
    h('button', { type: 'button', onclick: () => edit(null) }, 'New autoscale configuration'),
    h('button', { type: 'button', class: 'secondary', onclick: () => void load() }, 'Refresh'),
  );

  async function load(): Promise<void> {
    let configs: as.AutoscaleConfig[];
    try {
      [configs, zones, pools] = await Promise.all([as.listAutoscale(), api.listZones(), api.listServerPools()]);
    } catch (e) {
      page.message.error(`Autoscale configurations could not be loaded: ${(e as Error).message}`);
      return;
    }
    const machines = await Promise.all(configs.map((c) => as.listAutoscaleMachines(c.id).catch(() => null)));
    configs.sort((a, b) => a.name.localeCompare(b.name));
    const zoneName = (id: string) => zones.find((z) => z.id === id)?.name ?? id;
    const poolName = (id: string) => pools.find((p) => p.id === id)?.name ?? id;
    const byId = new Map(configs.map((c, i) => [c.id, machines[i]]));
    replaceChildren(page.content,
      table('Autoscale configurations', ['Name', 'Latest decision', 'Zone', 'Machines', 'Standby', 'Limits', 'Actions'], configs.map((c) => {
        const ms = byId.get(c.id);
        return row(c.name, [
          h('div', {},
            h('a', { href: `/admin/autoscale/${encodeURIComponent(c.id)}`, 'data-link': '' }, h('strong', {}, c.name)),
            h('div', {}, h('small', { class: 'hint' }, `${c.provider}${c.enabled ? '' : ', disabled'}`))),
          statusBlock(c),
          `${zoneName(c.zone_id)}${c.pool_id ? `, pool ${poolName(c.pool_id)}` : ''}`,
          h('span', { 'data-testid': 'autoscale-machines' }, ms ? phasesText(ms) : 'unknown'),
          `${standbyText(c)}${c.schedules.length ? ' (scheduled)' : ''}`,
          `${c.min_instances}–${c.max_instances} machines`,
          h('div', { class: 'actions' },
            h('a', { href: `/admin/autoscale/${encodeURIComponent(c.id)}`, 'data-link': '', class: 'button secondary', 'aria-label': `Details of ${c.name}` }, 'Details'),
            button('Edit', `Edit ${c.name}`, () => edit(c)),
            button(c.enabled ? 'Disable' : 'Enable', `${c.enabled ? 'Disable' : 'Enable'} ${c.name}`, () =>
              act(page, c.enabled ? `${c.name} is disabled: its machines stay as they are.` : `${c.name} is enabled.`,
                () => as.patchAutoscale(c.id, { enabled: !c.enabled }), load)),
            button('Delete', `Delete ${c.name}`, () => confirmDelete(page, c, load), 'danger')),
        ], { 'data-autoscale-id': c.id, 'data-enabled': String(c.enabled) });
      }), 'No autoscale configurations yet.'),
      h('p', { class: 'hint' }, 'The autoscaler looks at every enabled configuration about every 10 seconds; "Latest decision" is what it concluded, and why.'));
  }

  function edit(c: as.AutoscaleConfig | null): void {
    if (!zones.length) {
      page.message.error('Make a zone first: a configuration keeps machines in one zone.');
      return;
    }
    openAutoscaleForm({ config: c, zones, pools, onSaved: async (saved) => {
      page.message.info(`${saved.name} saved.`);
      await load();
    } });
  }

  await load();
  every(ctx, LIST_REFRESH_MS, load);
}

export async function autoscaleDetailPage(ctx: PageContext): Promise<void> {
  const id = ctx.params.id;
  const page = adminLayout(ctx, 'Autoscale configuration');
  const title = ctx.main.querySelector('h1') as HTMLElement;
  ctx.main.insertBefore(h('p', {}, h('a', { href: '/admin/autoscale', 'data-link': '' }, '← All autoscale configurations')), title);
  let config: as.AutoscaleConfig | null = null;
  let zones: api.Zone[] = [];
  let pools: api.ServerPool[] = [];
  const status = h('section', { 'aria-label': 'Latest decision' });
  const facts = h('dl', { class: 'facts' });
  // Kept across refreshes, so it stays open (or closed) as the reader left it.
  const settingsText = h('pre', { class: 'code', 'data-testid': 'autoscale-provider-settings' });
  const settingsEl = h('details', {}, h('summary', {}, 'JSON (secrets hidden)'), settingsText);
  const machinesEl = h('div', {});
  const decisionsEl = h('div', {});
  const updated = h('small', { class: 'hint', 'data-testid': 'autoscale-updated' });
  replaceChildren(page.content,
    status,
    h('h2', {}, 'Machines'), machinesEl,
    h('h2', {}, 'Decisions'), h('p', { class: 'hint' }, 'Newest first: what the autoscaler did and why, each time its conclusion changed.'), decisionsEl,
    h('h2', {}, 'Settings'), facts,
    h('p', {}, updated));

  const editButton = button('Edit', 'Edit this configuration', () => {
    if (config) openAutoscaleForm({ config, zones, pools, onSaved: async (saved) => {
      page.message.info(`${saved.name} saved.`);
      await load();
    } });
  });
  const toggleButton = button('Disable', 'Enable or disable this configuration', async () => {
    if (!config) return;
    const c = config;
    await act(page, c.enabled ? `${c.name} is disabled: its machines stay as they are.` : `${c.name} is enabled.`,
      () => as.patchAutoscale(c.id, { enabled: !c.enabled }), load);
  });
  const deleteButton = button('Delete', 'Delete this configuration', async () => {
    const c = config;
    if (c) {
      await confirmDelete(page, c, () => {
        notice = `${c.name} deleted.`;
        ctx.navigate('/admin/autoscale');
      });
    }
  }, 'danger');
  page.toolbar.append(editButton, toggleButton, deleteButton,
    h('button', { type: 'button', class: 'secondary', onclick: () => void load() }, 'Refresh'));

  async function load(): Promise<void> {
    let c: as.AutoscaleConfig;
    let machines: as.AutoscaleMachine[];
    let decisions: { items: as.AutoscaleDecision[]; total: number };
    try {
      [c, machines, decisions, zones, pools] = await Promise.all([
        as.getAutoscale(id), as.listAutoscaleMachines(id), as.listAutoscaleDecisions(id, 50), api.listZones(), api.listServerPools(),
      ]);
    } catch (e) {
      const err = e as api.ApiError;
      if (err.status === 404 && !config) title.textContent = 'Autoscale configuration not found';
      page.message.error(`The configuration could not be loaded: ${err.message}`);
      return;
    }
    config = c;
    title.textContent = c.name;
    toggleButton.textContent = c.enabled ? 'Disable' : 'Enable';
    // Who runs on the machines: agents by hostname, servers by name (ids when not known).
    const hosts = new Map<string, string>();
    if (machines.some((m) => m.agent_id || m.server_id)) {
      const [agents, servers] = await Promise.all([
        c.pool_id ? Promise.resolve([] as api.Agent[]) : api.listAgents().catch(() => [] as api.Agent[]),
        c.pool_id ? api.listServers().catch(() => [] as api.Server[]) : Promise.resolve([] as api.Server[]),
      ]);
      agents.forEach((a) => hosts.set(a.id, a.hostname || a.id));
      servers.forEach((s) => hosts.set(s.id, s.friendly_name));
    }
    const zoneName = zones.find((z) => z.id === c.zone_id)?.name ?? c.zone_id;
    const poolName = c.pool_id ? pools.find((p) => p.id === c.pool_id)?.name ?? c.pool_id : null;

    replaceChildren(status, statusBlock(c));
    replaceChildren(facts,
      h('dt', {}, 'Zone'), h('dd', {}, zoneName),
      h('dt', {}, 'Machines become'), h('dd', {}, poolName ? `servers of pool ${poolName}` : 'Docker agents'),
      h('dt', {}, 'Provider'), h('dd', {}, c.provider),
      h('dt', {}, 'Standby'), h('dd', { 'data-testid': 'autoscale-standby' }, standbyText(c)),
      h('dt', {}, 'Machines'), h('dd', { 'data-testid': 'autoscale-limits' }, `${c.min_instances} to ${c.max_instances}`),
      h('dt', {}, 'Scale-down backoff'), h('dd', {}, formatDurationMs(c.downscale_backoff)),
      h('dt', {}, 'Provision timeout'), h('dd', {}, formatDurationMs(c.provision_timeout)),
      h('dt', {}, 'Standby kept'), h('dd', {}, scheduleText(c)),
      h('dt', {}, 'Provider settings'), h('dd', {}, settingsEl));
    settingsText.textContent = prettyJson(c.provider_config_json);

    replaceChildren(machinesEl, table('Machines', ['Instance', 'Phase', 'Why', c.pool_id ? 'Server' : 'Agent', 'Address', 'Created', 'Ready', 'Idle since'],
      machines.map((m) => {
        const who = m.agent_id ?? m.server_id;
        return row(m.instance_id || m.id, [
          h('code', {}, m.instance_id || '(being created)'),
          h('span', { class: `phase phase-${m.phase}`, 'data-testid': 'machine-phase' }, m.phase),
          m.reason,
          who ? hosts.get(who) ?? who : '–',
          m.private_address || '–',
          timeEl(m.created_at),
          timeEl(m.ready_at),
          timeEl(m.idle_since),
        ], { 'data-machine-id': m.id, 'data-phase': m.phase });
      }), 'No machines.'));

    replaceChildren(decisionsEl, table('Decisions', ['Time', 'Decision', 'Actions', 'Error'],
      decisions.items.map((d) => row(d.summary, [
        timeEl(d.at),
        h('span', { 'data-testid': 'decision-summary' }, d.summary),
        d.actions.length ? h('ul', { class: 'decision-actions' }, d.actions.map((a) => h('li', {}, a))) : '–',
        d.error ? h('span', { class: 'error' }, d.error) : '–',
      ], { 'data-decision-id': d.id }))
      , 'No decision yet: the autoscaler has not acted on this configuration.'),
      decisions.total > decisions.items.length ? h('p', { class: 'hint' }, `The newest ${decisions.items.length} of ${decisions.total}.`) : null);
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshed every ${DETAIL_REFRESH_MS / 1000} seconds.`;
  }

  await load();
  every(ctx, DETAIL_REFRESH_MS, load);
}
