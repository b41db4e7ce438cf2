// Building blocks shared by the admin pages: the section tabs, tables, and an edit dialog.

import type { PageContext } from '../../app';
import { can } from '../../app';
import { checkbox, field, h, messageBox, replaceChildren } from '../../dom';

export const SECTIONS: { path: string; label: string; anyOf: string[] }[] = [
  { path: '/admin/workspaces', label: 'Workspaces', anyOf: ['workspaces:manage'] },
  { path: '/admin/agents', label: 'Agents', anyOf: ['agents:manage'] },
  { path: '/admin/servers', label: 'Servers', anyOf: ['agents:manage'] },
  { path: '/admin/server-pools', label: 'Server pools', anyOf: ['agents:manage'] },
  { path: '/admin/autoscale', label: 'Autoscaling', anyOf: ['agents:manage'] },
  { path: '/admin/sessions', label: 'Sessions', anyOf: ['sessions:manage'] },
  { path: '/admin/users', label: 'Users', anyOf: ['users:manage'] },
  { path: '/admin/groups', label: 'Groups', anyOf: ['users:manage'] },
  { path: '/admin/zones', label: 'Zones', anyOf: ['settings:manage', 'agents:manage'] },
  { path: '/admin/staging', label: 'Staging', anyOf: ['settings:manage', 'workspaces:manage'] },
  { path: '/admin/license', label: 'Licence', anyOf: ['licenses:manage'] },
];

export interface AdminPage {
  content: HTMLElement;
  toolbar: HTMLElement;
  message: ReturnType<typeof messageBox>;
}

export function adminLayout(ctx: PageContext, title: string): AdminPage {
  const tabs = h(
    'nav',
    { class: 'admin-tabs', 'aria-label': 'Administration' },
    SECTIONS.filter((s) => can(ctx.auth, ...s.anyOf)).map((s) =>
      h('a', { href: s.path, 'data-link': '', 'aria-current': location.pathname === s.path || location.pathname.startsWith(`${s.path}/`) ? 'page' : undefined }, s.label),
    ),
  );
  const message = messageBox();
  const toolbar = h('div', { class: 'toolbar' });
  const content = h('div', { class: 'admin-content' });
  replaceChildren(ctx.main, tabs, h('h1', {}, title), message.el, toolbar, content);
  return { content, toolbar, message };
}

export function table(caption: string, columns: string[], rows: HTMLTableRowElement[], empty = 'Nothing here yet.'): HTMLElement {
  const body = h('tbody', {}, rows);
  if (rows.length === 0) body.appendChild(h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, empty)));
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
      body),
  );
}

export function row(label: string, cells: (Node | string | number | null | undefined)[], attrs: Record<string, string> = {}): HTMLTableRowElement {
  return h('tr', { 'aria-label': label, ...attrs }, cells.map((c) => h('td', {}, c ?? '–')));
}

// `showWhen`: the field is shown (and read, and validated) only while the select `field` has one of
// `values` (the fields of a server's connection type, for instance).
export type FieldSpec = (
  | { name: string; label: string; type: 'text' | 'password' | 'number' | 'url' | 'textarea'; value?: string | number; hint?: string; required?: boolean; min?: number; max?: number; step?: string; secret?: boolean }
  | { name: string; label: string; type: 'checkbox'; value?: boolean; hint?: string }
  | { name: string; label: string; type: 'select'; value?: string; options: { value: string; label: string }[]; hint?: string; required?: boolean }
  | { name: string; label: string; type: 'checkboxes'; value?: string[]; options: { value: string; label: string }[]; hint?: string }
) & { showWhen?: { field: string; values: string[] } };

export type FormValues = Record<string, string | boolean | string[]>;

// A modal form. `submit` runs on save; its error is shown in the dialog, which stays open. Answers
// the form, for pages that react to its changes.
export function openForm(title: string, fields: FieldSpec[], submit: (values: FormValues) => Promise<void>): HTMLFormElement {
  const message = messageBox();
  const readers: (() => [string, string | boolean | string[]])[] = [];
  const controls = fields.map((f) => {
    switch (f.type) {
      case 'checkbox': {
        const c = checkbox(f.label, Boolean(f.value), f.name);
        readers.push(() => [f.name, c.input.checked]);
        return h('div', { class: 'field' }, c.root, f.hint ? h('small', { class: 'hint' }, f.hint) : null);
      }
      case 'checkboxes': {
        const boxes = f.options.map((o) => ({ o, c: checkbox(o.label, (f.value ?? []).includes(o.value), f.name) }));
        readers.push(() => [f.name, boxes.filter((b) => b.c.input.checked).map((b) => b.o.value)]);
        return h('fieldset', { class: 'field' }, h('legend', {}, f.label), boxes.map((b) => b.c.root));
      }
      case 'select': {
        const s = h('select', { name: f.name, required: f.required }, f.options.map((o) => h('option', { value: o.value }, o.label)));
        if (f.value !== undefined) s.value = f.value;
        readers.push(() => [f.name, s.value]);
        return field(f.label, s, f.hint);
      }
      case 'textarea': {
        // A secret (a private key) is never checked by a spelling service or remembered.
        const t = h('textarea', {
          name: f.name, rows: 4, required: f.required,
          spellcheck: f.secret ? 'false' : undefined, autocomplete: f.secret ? 'off' : undefined, class: f.secret ? 'secret' : undefined,
        });
        t.value = f.value !== undefined ? String(f.value) : '';
        readers.push(() => [f.name, t.value]);
        return field(f.label, t, f.hint);
      }
      default: {
        const i = h('input', { type: f.type, name: f.name, required: f.required, min: f.min, max: f.max, step: f.step, autocomplete: f.type === 'password' ? 'new-password' : 'off' });
        i.value = f.value !== undefined ? String(f.value) : '';
        readers.push(() => [f.name, i.value]);
        return field(f.label, i, f.hint);
      }
    }
  });
  // Fields shown only for some values of a select: hidden ones are disabled, so the browser neither
  // validates them nor lets them be focused.
  const applyVisibility = () => {
    fields.forEach((f, i) => {
      if (!f.showWhen) return;
      const driver = form.elements.namedItem(f.showWhen.field);
      const value = driver instanceof HTMLSelectElement || driver instanceof HTMLInputElement ? driver.value : '';
      const shown = f.showWhen.values.includes(value);
      const el = controls[i];
      el.hidden = !shown;
      el.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>('input, select, textarea').forEach((c) => (c.disabled = !shown));
    });
  };
  const save = h('button', { type: 'submit' }, 'Save');
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
  const form = h('form', { method: 'dialog' }, h('h2', { id: titleId }, title), controls, message.el, h('div', { class: 'actions' }, save, cancel));
  const dialog = h('dialog', { 'aria-labelledby': titleId }, form);
  cancel.addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => dialog.remove());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    save.disabled = true;
    message.clear();
    try {
      await submit(Object.fromEntries(readers.map((r) => r())));
      dialog.close();
    } catch (err) {
      message.error((err as Error).message);
    } finally {
      save.disabled = false;
    }
  });
  form.addEventListener('change', applyVisibility);
  applyVisibility();
  document.body.appendChild(dialog);
  dialog.showModal();
  return form;
}

export function num(v: FormValues[string], fallback = 0): number {
  const n = Number(v);
  return Number.isFinite(n) && String(v).trim() !== '' ? n : fallback;
}

export function str(v: FormValues[string]): string {
  return typeof v === 'string' ? v.trim() : '';
}

export function button(text: string, label: string, onclick: () => void | Promise<void>, cls = 'secondary'): HTMLButtonElement {
  const b = h('button', { type: 'button', class: cls, 'aria-label': label }, text);
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await onclick();
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// Runs an admin action and reports its outcome in the page's message line.
export async function act(page: AdminPage, done: string, fn: () => Promise<unknown>, reload?: () => Promise<void>): Promise<void> {
  try {
    await fn();
    page.message.info(done);
  } catch (e) {
    page.message.error((e as Error).message);
  }
  if (reload) await reload();
}
