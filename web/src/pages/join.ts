// Joining a shared session: /join/<share id>, the link an owner hands out. The router has already
// made the visitor log in (and brought them back here). Joining answers the session's viewer page,
// which this page then opens in the same tab; the viewer shows the desktop, whether the visitor
// only watches, and the chat.

import * as api from '../api';
import type { PageContext } from '../app';
import { h, messageBox, replaceChildren } from '../dom';

export async function joinPage(ctx: PageContext): Promise<void> {
  const shareId = ctx.params.share_id;
  const message = messageBox();
  const status = h('p', { role: 'status' }, 'Joining the shared session…');
  replaceChildren(ctx.main, h('h1', {}, 'Shared session'), status, message.el);

  let joined: api.JoinedShare;
  try {
    joined = await api.joinShare(shareId);
  } catch (e) {
    status.hidden = true;
    if (e instanceof api.ApiError && e.status === 404) {
      message.error('This share link does not work any more: the owner stopped sharing, or the link expired. Ask them for a new one.');
    } else if (e instanceof api.ApiError && e.status === 403) {
      message.error(`You may not join this session: ${e.message}`);
    } else {
      message.error(`The session could not be joined: ${(e as Error).message}`);
    }
    ctx.main.appendChild(h('p', {}, h('a', { href: '/', 'data-link': '' }, 'Back to your workspaces')));
    return;
  }

  const open = () => location.assign(new URL(joined.url, location.href).toString());
  if (joined.state !== 'running') {
    // A paused or starting desktop has nothing to show yet; the owner may resume it.
    status.textContent = `The session is ${joined.state} at the moment; its desktop shows once it runs.`;
    ctx.main.appendChild(h('p', {},
      h('button', { type: 'button', onclick: open }, 'Open the session'), ' ',
      h('a', { href: '/', 'data-link': '', class: 'button secondary' }, 'Back to your workspaces')));
    return;
  }
  status.textContent = joined.access === 'rw' ? 'Opening the session (you may control it)…' : 'Opening the session (you watch it)…';
  open();
}
