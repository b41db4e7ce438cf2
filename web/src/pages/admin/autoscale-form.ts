// Admin: the create and edit form of an autoscale configuration, in a dialog. The units are the
// ones people think in (cores, GiB, minutes) and are converted to the API's (millicores, bytes,
// milliseconds) on save. The provider settings are a JSON text: secret members come back from the
// server as "********" and are sent back as that, which keeps the stored secret. A validation
// error from the server is shown at the bottom of the form and next to the field it names.

import * as api from '../../api';
import * as as from '../../autoscale-api';
import { checkbox, field, h, messageBox } from '../../dom';
import { CONNECTION_TYPES } from './servers';

const GiB = 1024 * 1024 * 1024;
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const HHMM = '([01][0-9]|2[0-3]):[0-5][0-9]|24:00';

// A starting point for each provider's settings (include/kasm/command/command_provider.hpp and
// src/backends/aws/ec2_options.cpp have them in full).
const PROVIDER_EXAMPLES: Record<string, object> = {
  command: {
    create: ['/usr/bin/python3', '/opt/kasm/directory-vms.py'],
    destroy: ['/usr/bin/python3', '/opt/kasm/directory-vms.py'],
    list: ['/usr/bin/python3', '/opt/kasm/directory-vms.py'],
    environment: { KASM_VMS_DIR: '/var/lib/kasm-vms' },
  },
  'aws-ec2': {
    region: 'us-east-1',
    image_id: 'ami-…',
    instance_type: 't3.large',
    subnet_id: 'subnet-…',
    security_group_ids: ['sg-…'],
    access_key_id: '',
    secret_access_key: '',
  },
};

// Numbers without floating-point noise: 1.5 cores, 0.25 GiB, 7.5 minutes.
const round = (n: number, digits = 3) => Number(n.toFixed(digits));
const coresOf = (millicores: number | null | undefined) => (millicores === null || millicores === undefined ? '' : String(round(millicores / 1000)));
const gibOf = (bytes: number | null | undefined) => (bytes === null || bytes === undefined ? '' : String(round(bytes / GiB)));
const minutesOf = (ms: number) => String(round(ms / 60_000, 2));

export function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text || '{}'), null, 2);
  } catch {
    return text;
  }
}

// The API field an error message is about: "autoscale_config.schedules[0].start must be ..." ->
// "schedules"; "max_instances: expected an integer" -> "max_instances"; null when none is named.
export function fieldOfError(message: string): string | null {
  const m = /^(?:autoscale_config\.)?([a-z_]+)(?:[.[:\s]|$)/.exec(message);
  if (!m) return null;
  return m[1] === 'zones' ? 'zone_id' : m[1];  // "zones '' does not exist".
}

// A field in error: the message beside it, marked for assistive technology.
class FieldErrors {
  private slots = new Map<string, { wrapper: HTMLElement; slot: HTMLElement; controls: HTMLElement[] }>();

  add(name: string, wrapper: HTMLElement, ...controls: HTMLElement[]): HTMLElement {
    const slot = h('small', { class: 'field-error', 'data-error-for': name, hidden: true });
    wrapper.appendChild(slot);
    this.slots.set(name, { wrapper, slot, controls });
    return wrapper;
  }

  clear(): void {
    for (const { slot, controls } of this.slots.values()) {
      slot.hidden = true;
      slot.textContent = '';
      controls.forEach((c) => c.removeAttribute('aria-invalid'));
    }
  }

  // True when the message was placed beside a field.
  show(name: string | null, message: string): boolean {
    const s = name ? this.slots.get(name) : undefined;
    if (!s) return false;
    s.slot.textContent = message;
    s.slot.hidden = false;
    s.controls.forEach((c) => c.setAttribute('aria-invalid', 'true'));
    s.wrapper.scrollIntoView({ block: 'nearest' });
    return true;
  }
}

class FormError extends Error {
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

interface ScheduleRow {
  root: HTMLElement;
  read(): as.AutoscaleSchedule;
}

export interface AutoscaleFormOptions {
  config: as.AutoscaleConfig | null;
  zones: api.Zone[];
  pools: api.ServerPool[];
  onSaved(saved: as.AutoscaleConfig): void | Promise<void>;
}

// Opens the form; `onSaved` runs after the server accepted it, then the dialog closes.
export function openAutoscaleForm({ config: c, zones, pools, onSaved }: AutoscaleFormOptions): HTMLDialogElement {
  const errors = new FieldErrors();
  const message = messageBox();
  const num = (name: string, value: string | number, attrs: Record<string, string | number | boolean | undefined> = {}) =>
    h('input', { type: 'number', name, value: String(value), step: 'any', min: 0, ...attrs });
  const text = (name: string, value: string, attrs: Record<string, string | boolean | undefined> = {}) =>
    h('input', { type: 'text', name, value, autocomplete: 'off', ...attrs });
  const area = (name: string, value: string, rows: number, mono = false) => {
    const t = h('textarea', { name, rows, spellcheck: 'false', autocomplete: 'off', class: mono ? 'code' : undefined });
    t.value = value;
    return t;
  };
  // A labelled control whose server errors show beside it (`key` names the API field; null: the
  // errors of its group show beside the group).
  const labelled = (key: string | null, label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string) =>
    key ? errors.add(key, field(label, control, hint), control) : field(label, control, hint);

  // ---- general ----
  const name = text('name', c?.name ?? '', { required: true, maxlength: '256' });
  const zone = h('select', { name: 'zone_id', required: true }, zones.map((z) => h('option', { value: z.id }, z.name)));
  if (c) zone.value = c.zone_id;
  const pool = h('select', { name: 'pool_id' },
    h('option', { value: '' }, 'None: the machines run Docker agents'),
    pools.map((p) => h('option', { value: p.id }, `Servers of pool ${p.name}`)));
  pool.value = c?.pool_id ?? '';
  const providerList = h('datalist', { id: `providers-${Math.random().toString(36).slice(2)}` },
    as.KNOWN_PROVIDERS.map((p) => h('option', { value: p })));
  const provider = text('provider', c?.provider ?? 'command', { required: true, list: providerList.id });
  const enabled = checkbox('Enabled: the autoscaler acts on it', c?.enabled ?? true, 'enabled');
  const providerJson = area('provider_config_json', c ? prettyJson(c.provider_config_json) : prettyJson(JSON.stringify(PROVIDER_EXAMPLES.command)), 9, true);
  // A new configuration's settings follow the provider while they are still an untouched example.
  let example = c ? null : providerJson.value;
  provider.addEventListener('change', () => {
    const next = PROVIDER_EXAMPLES[provider.value.trim()];
    if (example !== null && providerJson.value === example && next) providerJson.value = example = JSON.stringify(next, null, 2);
  });

  // ---- capacity ----
  const standbyCores = num('standby_cores', coresOf(c?.standby.millicores ?? 0));
  const standbyGib = num('standby_gib', gibOf(c?.standby.memory_bytes ?? 0));
  const standbyGpus = num('standby_gpus', c?.standby.gpus ?? 0, { step: 1 });
  const standbySessions = num('min_standby_sessions', c?.min_standby_sessions ?? 0, { step: 1, max: 100000 });
  const minInstances = num('min_instances', c?.min_instances ?? 0, { step: 1 });
  const maxInstances = num('max_instances', c?.max_instances ?? 10, { step: 1, max: 100000 });
  const backoff = num('downscale_backoff', minutesOf(c?.downscale_backoff ?? 600_000));
  const timeout = num('provision_timeout', minutesOf(c?.provision_timeout ?? 900_000), { min: 1, max: 1440 });

  // ---- machines ----
  const requireCheckin = checkbox('A machine counts only once its agent has checked in', c?.require_checkin ?? true, 'require_checkin');
  const reusable = checkbox('Reusable: unticked, a machine serves one session and is destroyed after it', c?.reusable ?? true, 'reusable');
  const overrideCores = num('override_cores', coresOf(c?.agent_overrides?.millicores), { placeholder: 'measured' });
  const overrideGib = num('override_gib', gibOf(c?.agent_overrides?.memory_bytes), { placeholder: 'measured' });
  const overrideGpus = num('override_gpus', c?.agent_overrides?.gpus ?? '', { step: 1, placeholder: 'measured' });
  const labels = area('agent_labels', Object.entries(c?.agent_labels ?? {}).map(([k, v]) => `${k}=${v}`).join('\n'), 3, true);
  const networks = area('agent_publish_networks', (c?.agent_publish_networks ?? []).join('\n'), 2, true);
  const script = area('startup_script', c?.startup_script ?? '', 6, true);

  // ---- server pools ----
  const connType = h('select', { name: 'server_connection_type' }, CONNECTION_TYPES.map((t) => h('option', { value: t.value }, t.label)));
  connType.value = c?.server_connection_type ?? 'rdp';
  const port = num('server_port', c?.server_port ?? 3389, { step: 1, min: 1, max: 65535 });
  let lastType = connType.value;
  connType.addEventListener('change', () => {
    const before = CONNECTION_TYPES.find((t) => t.value === lastType)?.port;
    const after = CONNECTION_TYPES.find((t) => t.value === connType.value)?.port;
    if (after !== undefined && (port.value === '' || Number(port.value) === before)) port.value = String(after);
    lastType = connType.value;
  });
  const maxSessions = num('server_max_sessions', c?.server_max_sessions ?? 1, { step: 1, min: 1, max: 1000 });
  const connUser = text('server_connection_username', c?.server_connection_username ?? '');

  // ---- schedule ----
  const zoneList = h('datalist', { id: `tz-${Math.random().toString(36).slice(2)}` });
  const supported = (Intl as unknown as { supportedValuesOf?: (k: string) => string[] }).supportedValuesOf?.('timeZone') ?? [];
  zoneList.append(...['UTC', ...supported].map((z) => h('option', { value: z })));
  const timeZone = text('time_zone', c?.time_zone ?? 'UTC', { required: true, list: zoneList.id });
  const rows: ScheduleRow[] = [];
  const rowsEl = h('div', { class: 'schedule-rows' });
  const noRows = h('p', { class: 'hint' }, 'No window: the standby is kept at all times.');
  const renumber = () => {
    rows.forEach((r, i) => {
      r.root.querySelector('legend')!.textContent = `Window ${i + 1}`;
      r.root.querySelectorAll<HTMLInputElement>('input[data-part]').forEach((inp) => {
        inp.setAttribute('aria-label', `Window ${i + 1} ${inp.dataset.part}`);
      });
      r.root.querySelector('button')!.setAttribute('aria-label', `Remove window ${i + 1}`);
    });
    noRows.hidden = rows.length > 0;
  };
  const addRow = (s: as.AutoscaleSchedule) => {
    const days = DAYS.map((d, i) => ({ i, box: checkbox(d, s.days.includes(i)) }));
    const start = h('input', { type: 'text', value: s.start, pattern: HHMM, required: true, placeholder: 'HH:MM', size: 6, 'data-part': 'start', title: 'HH:MM' });
    const end = h('input', { type: 'text', value: s.end, pattern: HHMM, required: true, placeholder: 'HH:MM', size: 6, 'data-part': 'end', title: 'HH:MM (24:00: midnight)' });
    const row: ScheduleRow = {
      root: h('fieldset', { class: 'schedule-row' },
        h('legend', {}),
        h('div', { class: 'days' }, days.map((d) => d.box.root)),
        h('div', { class: 'inline' },
          h('label', {}, 'From ', start), h('label', {}, 'to ', end),
          h('button', { type: 'button', class: 'secondary', onclick: () => {
            rows.splice(rows.indexOf(row), 1);
            row.root.remove();
            renumber();
          } }, 'Remove'))),
      read: () => ({ days: days.filter((d) => d.box.input.checked).map((d) => d.i), start: start.value.trim(), end: end.value.trim() }),
    };
    rows.push(row);
    rowsEl.appendChild(row.root);
    renumber();
  };
  (c?.schedules ?? []).forEach(addRow);
  renumber();
  const schedules = errors.add('schedules', h('fieldset', { class: 'field' },
    h('legend', {}, 'Windows in which the standby is kept'),
    h('small', { class: 'hint' }, 'Days are the days a window starts on (none ticked: every day). An end at or before the start runs into the next day; 24:00 is midnight.'),
    noRows, rowsEl,
    h('button', { type: 'button', class: 'secondary', onclick: () => addRow({ days: [1, 2, 3, 4, 5], start: '08:00', end: '18:00' }) }, 'Add a window')));

  // ---- layout ----
  const forAgents = errors.add('standby', h('div', {},
    labelled(null, 'Standby cores', standbyCores, 'Free CPU cores to keep in the zone, counting every enabled agent there and the machines still booting.'),
    h('div', { class: 'inline' }, labelled(null, 'Standby memory (GiB)', standbyGib), labelled(null, 'Standby GPUs', standbyGpus))),
  standbyCores, standbyGib, standbyGpus);
  const forServers = h('div', {},
    labelled('min_standby_sessions', 'Free sessions to keep', standbySessions, 'Free session slots to keep on the pool\'s servers.'));
  const agentMachines = h('div', {},
    errors.add('agent_overrides', h('fieldset', { class: 'field' }, h('legend', {}, 'What an agent reports (blank: measured)'),
      h('div', { class: 'inline' },
        labelled(null, 'Agent cores', overrideCores),
        labelled(null, 'Agent memory (GiB)', overrideGib),
        labelled(null, 'Agent GPUs', overrideGpus))),
    overrideCores, overrideGib, overrideGpus),
    labelled('agent_labels', 'Agent labels', labels, 'One key=value a line.'),
    labelled('agent_publish_networks', 'Publish networks', networks, 'Subnets the machines get addresses in (10.1.0.0/16), one a line: their agents may publish session ports there. None refuses every session upstream they report.'));
  const serverMachines = h('fieldset', { class: 'field' }, h('legend', {}, 'The pool\'s servers'),
    labelled('server_connection_type', 'Connection type', connType),
    labelled('server_port', 'Port', port),
    labelled('server_max_sessions', 'Sessions per server', maxSessions),
    labelled('server_connection_username', 'Connection user name', connUser, '{sso_username} stands for the launching user\'s name; blank asks the user at launch.'));
  const applyTarget = () => {
    const servers = pool.value !== '';
    for (const [el, shown] of [[forAgents, !servers], [agentMachines, !servers], [forServers, servers], [serverMachines, servers]] as const) {
      el.hidden = !shown;
      el.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>('input, select, textarea').forEach((x) => (x.disabled = !shown));
    }
  };
  pool.addEventListener('change', applyTarget);

  const save = h('button', { type: 'submit' }, 'Save');
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
  const form = h('form', { method: 'dialog', class: 'autoscale-form' },
    h('h2', { id: titleId }, c ? `Edit ${c.name}` : 'New autoscale configuration'),
    providerList, zoneList,
    h('fieldset', {}, h('legend', {}, 'What and where'),
      labelled('name', 'Name', name),
      labelled('zone_id', 'Zone', zone),
      labelled('pool_id', 'Machines become', pool),
      labelled('provider', 'Provider', provider, 'The VM provider that makes and destroys the machines: command (your executables) or aws-ec2.'),
      errors.add('enabled', h('div', { class: 'field' }, enabled.root), enabled.input),
      labelled('provider_config_json', 'Provider settings (JSON)', providerJson,
        `A JSON object. Secret members (names with secret, password, token, private_key or credential) show as "${as.SECRET_MASK}": leave that to keep the stored secret. Nested ones too (e.g. an environment variable named ..._TOKEN).`)),
    h('fieldset', {}, h('legend', {}, 'How many'),
      forAgents, forServers,
      h('div', { class: 'inline' }, labelled('min_instances', 'Minimum machines', minInstances), labelled('max_instances', 'Maximum machines', maxInstances)),
      labelled('downscale_backoff', 'Scale-down backoff (minutes)', backoff, 'How long a machine stays idle before it may go, and how long after a scale-up nothing is removed.'),
      labelled('provision_timeout', 'Provision timeout (minutes)', timeout, 'A machine not checked in (or answering) by then is destroyed. 1 to 1440.')),
    h('fieldset', {}, h('legend', {}, 'The machines'),
      errors.add('require_checkin', h('div', { class: 'field' }, requireCheckin.root), requireCheckin.input),
      errors.add('reusable', h('div', { class: 'field' }, reusable.root), reusable.input),
      agentMachines, serverMachines,
      labelled('startup_script', 'Startup script', script,
        'The machine\'s user data. {server_id}, {registration_token}, {upstream_address}, {provider_name}, {zone_name} and {config_name} are filled in; {{ and }} are literal braces.')),
    h('fieldset', {}, h('legend', {}, 'Schedule'),
      labelled('time_zone', 'Time zone', timeZone, 'An IANA name (Europe/Paris) the windows are in.'),
      schedules),
    message.el,
    h('div', { class: 'actions' }, save, cancel));
  const dialog = h('dialog', { 'aria-labelledby': titleId, class: 'wide' }, form);
  applyTarget();

  const read = (): as.AutoscaleConfigWrite => {
    const number = (input: HTMLInputElement, field: string, fallback: number): number => {
      if (input.value.trim() === '') return fallback;
      const n = Number(input.value);
      if (!Number.isFinite(n)) throw new FormError(field, `${field}: not a number`);
      return n;
    };
    const optional = (input: HTMLInputElement, scale: number): number | null =>
      input.value.trim() === '' ? null : Math.round(number(input, 'agent_overrides', 0) * scale);
    let settings: unknown;
    try {
      settings = JSON.parse(providerJson.value.trim() || '{}');
    } catch (e) {
      throw new FormError('provider_config_json', `The provider settings are not JSON: ${(e as Error).message}`);
    }
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
      throw new FormError('provider_config_json', 'The provider settings must be a JSON object ({ ... }).');
    }
    const agentLabels: Record<string, string | null> = {};
    for (const line of labels.value.split('\n').map((l) => l.trim()).filter(Boolean)) {
      const eq = line.indexOf('=');
      if (eq <= 0) throw new FormError('agent_labels', `Agent label "${line}" is not key=value.`);
      agentLabels[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
    }
    // Labels are merged into the stored ones: a label taken out is sent as null.
    for (const k of Object.keys(c?.agent_labels ?? {})) if (!(k in agentLabels)) agentLabels[k] = null;
    return {
      name: name.value.trim(),
      zone_id: zone.value,
      pool_id: pool.value || null,
      enabled: enabled.input.checked,
      provider: provider.value.trim(),
      provider_config_json: JSON.stringify(settings),
      standby: {
        millicores: Math.round(number(standbyCores, 'standby', 0) * 1000),
        memory_bytes: Math.round(number(standbyGib, 'standby', 0) * GiB),
        gpus: Math.round(number(standbyGpus, 'standby', 0)),
      },
      min_standby_sessions: Math.round(number(standbySessions, 'min_standby_sessions', 0)),
      min_instances: Math.round(number(minInstances, 'min_instances', 0)),
      max_instances: Math.round(number(maxInstances, 'max_instances', 10)),
      downscale_backoff: Math.round(number(backoff, 'downscale_backoff', 10) * 60_000),
      provision_timeout: Math.round(number(timeout, 'provision_timeout', 15) * 60_000),
      require_checkin: requireCheckin.input.checked,
      reusable: reusable.input.checked,
      agent_overrides: { millicores: optional(overrideCores, 1000), memory_bytes: optional(overrideGib, GiB), gpus: optional(overrideGpus, 1) },
      agent_labels: agentLabels,
      agent_publish_networks: networks.value.split(/[\s,]+/).map((n) => n.trim()).filter(Boolean),
      startup_script: script.value.replace(/\r\n/g, '\n'),
      server_connection_type: connType.value as api.ServerConnectionType,
      server_port: Math.round(number(port, 'server_port', 3389)),
      server_max_sessions: Math.round(number(maxSessions, 'server_max_sessions', 1)),
      server_connection_username: connUser.value.trim(),
      time_zone: timeZone.value.trim(),
      schedules: rows.map((r) => r.read()),
    };
  };

  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    errors.clear();
    message.clear();
    if (!form.reportValidity()) return;
    save.disabled = true;
    try {
      const body = read();
      const saved = c ? await as.patchAutoscale(c.id, body) : await as.createAutoscale(body);
      await onSaved(saved);
      dialog.close();
    } catch (err) {
      const text = (err as Error).message;
      errors.show(err instanceof FormError ? err.field : fieldOfError(text), text);
      message.error(text);
    } finally {
      save.disabled = false;
    }
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  return dialog;
}
