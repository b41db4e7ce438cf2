// The login form. Explains the three failures a user can act on: wrong credentials (401), too many
// attempts (429, with the wait from Retry-After) and a server that cannot be reached.

import * as api from '../api';
import type { App } from '../app';
import { field, h, messageBox } from '../dom';

export function loginPage(root: HTMLElement, app: App): void {
  const params = new URLSearchParams(location.search);
  const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit' }, 'Log in');
  const message = messageBox();

  if (app.startupError) {
    message.error(`The server cannot be reached (${app.startupError}). You can still try to log in.`);
    app.startupError = null;
  } else if (params.get('expired')) {
    message.info('Your login has expired. Please log in again.');
  }

  let retryTimer: number | undefined;
  const form = h(
    'form',
    { class: 'login-form', 'aria-labelledby': 'login-title', novalidate: true },
    h('h1', { id: 'login-title' }, 'Log in to Kasm'),
    field('Username', username),
    field('Password', password),
    message.el,
    submit,
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!username.value || !password.value) {
      message.error('Enter your username and password.');
      (username.value ? password : username).focus();
      return;
    }
    message.clear();
    submit.disabled = true;
    submit.textContent = 'Logging in…';
    try {
      const auth = await api.login(username.value.trim(), password.value);
      app.setAuth(auth);
      const next = params.get('next');
      app.navigate(next && next.startsWith('/') && !next.startsWith('//') ? next : '/', true);
      return;
    } catch (err) {
      password.value = '';
      if (!(err instanceof api.ApiError)) {
        message.error(`Login failed: ${String(err)}`);
      } else if (err.status === 401) {
        message.error('Wrong username or password.');
        password.focus();
      } else if (err.status === 429) {
        const wait = err.retryAfterSeconds;
        message.error(
          wait ? `Too many login attempts. Try again in ${wait} seconds.` : 'Too many login attempts. Wait a moment and try again.',
        );
        if (wait) {
          submit.disabled = true;
          window.clearTimeout(retryTimer);
          retryTimer = window.setTimeout(() => {
            submit.disabled = false;
            submit.textContent = 'Log in';
          }, wait * 1000);
          submit.textContent = 'Please wait…';
          return;
        }
      } else if (err.unreachable) {
        message.error(err.message);
      } else {
        message.error(`Login failed: ${err.message}`);
      }
    }
    submit.disabled = false;
    submit.textContent = 'Log in';
  });

  root.appendChild(h('main', { class: 'login-page', id: 'main' }, form));
  username.focus();
}
