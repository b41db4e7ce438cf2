// Admin: agents with their resources (reported, reserved, free), images, and the enable and drain
// toggles. Refreshes every 10 seconds while visible.

import * as api from '../../api';
import type { PageContext } from '../../app';
import { h, replaceChildren } from '../../dom';
import { formatBytes, formatCores } from '../../format';
import { act, adminLayout, button, row, table } from './common';

export async function agentsAdminPage(ctx: PageContext): Promise<void> {
  const page = adminLayout(ctx, 'Agents');
  page.toolbar.appendChild(h('button', { type: 'button', class: 'secondary', onclick: () => void load() }, 'Refresh'));

  function capacity(a: api.Agent, key: keyof api.Resources, fmt: (n: number) => string): HTMLElement {
    const total = (a.overrides && typeof a.overrides[key] === 'number' ? a.overrides[key] : a.reported?.[key]) ?? 0;
    const used = a.reserved?.[key] ?? 0;
    const pct = total > 0 ? Math.min(100, Math.round((used / total) * 100)) : 0;
    return h('div', { class: 'capacity' },
      h('span', {}, `${fmt(used)} used / ${fmt(Math.max(0, total - used))} free`),
      h('meter', { min: 0, max: 100, value: pct, high: 85, 'aria-label': `${key} used, percent` }));
  }

  async function load(): Promise<void> {
    let agents: api.Agent[];
    try {
      agents = await api.listAgents();
    } catch (e) {
      page.message.error(`Agents could not be loaded: ${(e as Error).message}`);
      return;
    }
    agents.sort((a, b) => a.hostname.localeCompare(b.hostname));
    replaceChildren(
      page.content,
      table('Agents', ['Host', 'Status', 'CPU', 'Memory', 'GPUs', 'Sessions', 'Images', 'State', 'Actions'],
        agents.map((a) => {
          const state = !a.enabled ? 'disabled' : a.draining ? 'draining' : 'accepting sessions';
          return row(a.hostname, [
            h('strong', {}, a.hostname),
            h('span', { class: `status status-${a.status}` }, a.status),
            capacity(a, 'millicores', formatCores),
            capacity(a, 'memory_bytes', formatBytes),
            capacity(a, 'gpus', (n) => String(n)),
            String(a.session_count ?? 0),
            (a.images ?? []).length
              ? h('details', {}, h('summary', {}, `${a.images?.length} images`), h('ul', {}, (a.images ?? []).map((i) => h('li', {}, i))))
              : 'none',
            h('span', { class: 'agent-state', 'data-testid': 'agent-state' }, state),
            h('div', { class: 'actions' },
              button(a.draining ? 'Stop draining' : 'Drain', `${a.draining ? 'Stop draining' : 'Drain'} ${a.hostname}`, () =>
                act(page, a.draining ? `${a.hostname} accepts sessions again.` : `${a.hostname} is draining: no new sessions go there.`,
                  () => api.patchAgent(a.id, { draining: !a.draining }), load)),
              button(a.enabled ? 'Disable' : 'Enable', `${a.enabled ? 'Disable' : 'Enable'} ${a.hostname}`, () =>
                act(page, `${a.hostname} ${a.enabled ? 'disabled' : 'enabled'}.`, () => api.patchAgent(a.id, { enabled: !a.enabled }), load))),
          ], { 'data-agent-id': a.id, 'data-draining': String(a.draining) });
        }),
        'No agents have checked in yet.'),
    );
  }

  await load();
  const timer = window.setInterval(() => {
    if (document.visibilityState === 'visible' && !document.querySelector('dialog[open]')) void load();
  }, 10_000);
  ctx.onLeave(() => window.clearInterval(timer));
}
