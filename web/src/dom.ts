// A few DOM helpers so pages read like the markup they build.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

// h('button', {type: 'button', onclick: fn, 'aria-label': 'Close'}, 'x'). Attributes named on* become
// event listeners; `true` sets a boolean attribute, false/null/undefined leave it out.
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value as EventListener);
    } else if (name === 'value' && 'value' in el) {
      (el as unknown as HTMLInputElement).value = String(value);
    } else if (name === 'checked' && el instanceof HTMLInputElement) {
      el.checked = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: (Child | Child[])[]): void {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function replaceChildren(el: Element, ...children: (Child | Child[])[]): void {
  clear(el);
  append(el, children);
}

// A labelled form field: <label for=id>text</label><input id=id ...>.
let fieldCounter = 0;
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  if (!control.id) control.id = `f${++fieldCounter}`;
  const wrapper = h('div', { class: 'field' }, h('label', { for: control.id }, label), control);
  if (hint) {
    const hintEl = h('small', { id: `${control.id}-hint`, class: 'hint' }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
    wrapper.appendChild(hintEl);
  }
  return wrapper;
}

export function checkbox(label: string, checked: boolean, name?: string): { root: HTMLElement; input: HTMLInputElement } {
  const input = h('input', { type: 'checkbox', name, checked });
  const root = h('label', { class: 'check' }, input, ' ', label);
  return { root, input };
}

// A status line for errors and notices; role=alert makes screen readers (and tests) notice it.
export function messageBox(): { el: HTMLElement; error(text: string): void; info(text: string): void; clear(): void } {
  const el = h('div', { class: 'message', role: 'alert', hidden: true });
  return {
    el,
    error(text) {
      el.className = 'message error';
      el.textContent = text;
      el.hidden = false;
    },
    info(text) {
      el.className = 'message info';
      el.textContent = text;
      el.hidden = false;
    },
    clear() {
      el.hidden = true;
      el.textContent = '';
    },
  };
}
