// File transfer in the session viewer: uploads into the desktop's ~/Uploads and downloads from its
// ~/Downloads, through the session proxy beside the viewer page (`<viewer page directory>kasm/files`,
// the same token cookie as the desktop, the session's owner only):
//   GET  kasm/files                       -> {uploads, downloads, limit_bytes, upload_dir, download_dir, files}
//   POST kasm/files/upload?name=<name>    (the raw bytes) -> 201 {name, size, path}
//   GET  kasm/files/download/<name>       -> the bytes, as an attachment
// A refusal carries {"error": text} (a 413 may be plain text); the user sees the server's words.
// Uploads run one at a time, in the order they were chosen or dropped.

import { h, replaceChildren } from './dom';
import { formatBytes } from './format';

export interface RemoteFile {
  name: string;
  size: number;
  modified?: string;
}

export interface FilesInfo {
  uploads: boolean;
  downloads: boolean;
  limit_bytes: number;
  upload_dir: string;
  download_dir: string;
  files: RemoteFile[];
}

type Loaded = { ok: true; info: FilesInfo } | { ok: false; error: string };

// The server's message from a refusal: {"error": text} when the body is JSON, else the body's text.
function refusal(status: number, body: string): string {
  let text = body.trim();
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object') {
      const o = parsed as Record<string, unknown>;
      const msg = o.error ?? o.error_message;
      if (typeof msg === 'string' && msg) text = msg;
    }
  } catch {
    // Not JSON: the text as it came (an HTML error page is cut short below).
  }
  if (text.startsWith('<')) text = '';
  if (text.length > 300) text = `${text.slice(0, 300)}…`;
  return text || `The server answered ${status}.`;
}

async function load(url: string): Promise<Loaded> {
  let r: Response;
  try {
    r = await fetch(url, { cache: 'no-store', credentials: 'same-origin' });
  } catch {
    return { ok: false, error: 'The server could not be reached.' };
  }
  const body = await r.text().catch(() => '');
  if (!r.ok) return { ok: false, error: refusal(r.status, body) };
  try {
    const info = JSON.parse(body) as Partial<FilesInfo>;
    return {
      ok: true,
      info: {
        uploads: info.uploads === true,
        downloads: info.downloads === true,
        limit_bytes: typeof info.limit_bytes === 'number' ? info.limit_bytes : 0,
        upload_dir: typeof info.upload_dir === 'string' ? info.upload_dir : '~/Uploads',
        download_dir: typeof info.download_dir === 'string' ? info.download_dir : '~/Downloads',
        files: Array.isArray(info.files) ? info.files.filter((f) => f && typeof f.name === 'string') : [],
      },
    };
  } catch {
    return { ok: false, error: 'The server answered something other than a file list.' };
  }
}

// What the user may do here, or null when there is no file transfer for them (refused, not the
// owner, not offered, unreachable): then the viewer shows nothing about files.
export async function loadFiles(base: string): Promise<FilesInfo | null> {
  const r = await load(`${base}kasm/files`);
  return r.ok && (r.info.uploads || r.info.downloads) ? r.info : null;
}

// The upload limit in MB: mebibytes when it is a whole number of them (10 MiB reads "10 MB"), else
// millions of bytes.
export function formatLimit(bytes: number): string {
  const v = bytes / (Number.isInteger(bytes / 2 ** 20) ? 2 ** 20 : 1e6);
  return `${Number(v.toFixed(v >= 100 ? 0 : 1))} MB`;
}

function formatModified(iso: string | undefined): string {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? '' : new Date(t).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' });
}

interface Upload {
  file: File;
  item: HTMLLIElement;
  bar: HTMLProgressElement;
  percent: HTMLElement;
  status: HTMLElement;
}

export class FilesPanel {
  readonly root: HTMLElement;
  private readonly uploadList: HTMLOListElement | null = null;
  private readonly picker: HTMLInputElement | null = null;
  private readonly downloadList: HTMLUListElement | null = null;
  private readonly downloadStatus: HTMLElement | null = null;
  private readonly refreshBtn: HTMLButtonElement | null = null;
  private readonly queue: Upload[] = [];
  private busy = false;
  private refreshing = false;

  // `base` is the viewer page's directory (/desktop/<session>/).
  constructor(private readonly base: string, private info: FilesInfo) {
    const sections: HTMLElement[] = [];
    if (info.uploads) {
      const pickerId = `files-picker-${Math.random().toString(36).slice(2, 8)}`;
      const limit = info.limit_bytes > 0 ? ` Up to ${formatLimit(info.limit_bytes)} per file.` : '';
      this.picker = h('input', { id: pickerId, type: 'file', multiple: true, class: 'files-picker' });
      this.picker.addEventListener('change', () => {
        const picker = this.picker!;
        if (picker.files?.length) this.upload(picker.files);
        picker.value = '';
      });
      this.uploadList = h('ol', { class: 'files-uploads', 'aria-label': 'Uploads', 'aria-live': 'polite' });
      sections.push(h('section', { class: 'files-upload', 'aria-labelledby': `${pickerId}-title` },
        h('h2', { id: `${pickerId}-title` }, 'Upload'),
        h('p', { class: 'files-hint' }, `Files go to ${info.upload_dir} in the desktop. Choose them, or drop them anywhere on this page.${limit}`),
        h('label', { for: pickerId, class: 'visually-hidden' }, 'Choose files to upload'),
        this.picker,
        this.uploadList));
    }
    if (info.downloads) {
      this.downloadList = h('ul', { class: 'files-downloads', 'aria-label': `Files in ${info.download_dir}` });
      this.downloadStatus = h('p', { class: 'files-error', role: 'alert', hidden: true });
      this.refreshBtn = h('button', { type: 'button', class: 'files-refresh' }, 'Refresh');
      this.refreshBtn.addEventListener('click', () => void this.refresh());
      sections.push(h('section', { class: 'files-download', 'aria-labelledby': 'files-download-title' },
        h('div', { class: 'files-heading' }, h('h2', { id: 'files-download-title' }, 'Downloads'), this.refreshBtn),
        this.downloadStatus,
        this.downloadList));
      this.showDownloads(info.files);
    }
    this.root = h('section', { class: 'files', 'aria-label': 'Files' }, sections);
  }

  // Queues files for upload (from the picker or a drop); they go one at a time, in order.
  upload(files: FileList | File[]): void {
    if (!this.uploadList) return;
    for (const file of Array.from(files)) {
      const bar = h('progress', { max: 100, value: 0, 'aria-label': `Upload of ${file.name}` });
      const percent = h('span', { class: 'files-percent' }, '');
      const status = h('span', { class: 'files-status' }, 'Waiting…');
      const item = h('li', { class: 'files-item', 'data-state': 'queued', 'data-name': file.name },
        h('div', { class: 'files-row' }, h('span', { class: 'files-name' }, file.name), h('span', { class: 'files-size' }, formatBytes(file.size))),
        h('div', { class: 'files-row' }, bar, percent),
        status);
      this.uploadList.append(item);
      const up: Upload = { file, item, bar, percent, status };
      const limit = this.info.limit_bytes;
      if (limit > 0 && file.size > limit) {
        this.finish(up, 'error', `Not uploaded: ${file.name} is larger than the upload limit of ${formatLimit(limit)} per file.`);
        continue;
      }
      this.queue.push(up);
    }
    this.uploadList.lastElementChild?.scrollIntoView({ block: 'nearest' });
    this.next();
  }

  // Reads ~/Downloads again.
  async refresh(): Promise<void> {
    if (!this.downloadList || this.refreshing) return;
    this.refreshing = true;
    this.refreshBtn!.disabled = true;
    this.downloadList.setAttribute('aria-busy', 'true');
    try {
      const r = await load(`${this.base}kasm/files`);
      if (!r.ok) {
        this.downloadStatus!.textContent = r.error;
        this.downloadStatus!.hidden = false;
        return;
      }
      this.downloadStatus!.hidden = true;
      this.info = { ...r.info, uploads: this.info.uploads };
      this.showDownloads(r.info.downloads ? r.info.files : []);
    } finally {
      this.refreshing = false;
      this.refreshBtn!.disabled = false;
      this.downloadList.removeAttribute('aria-busy');
    }
  }

  private showDownloads(files: RemoteFile[]): void {
    if (!this.downloadList) return;
    if (files.length === 0) {
      replaceChildren(this.downloadList, h('li', { class: 'files-empty' },
        `Nothing in ${this.info.download_dir} yet — save a file there in the desktop to download it.`));
      return;
    }
    const sorted = [...files].sort((a, b) => a.name.localeCompare(b.name));
    replaceChildren(this.downloadList, sorted.map((f) => {
      const modified = formatModified(f.modified);
      return h('li', { class: 'files-item', 'data-name': f.name },
        h('a', { href: `${this.base}kasm/files/download/${encodeURIComponent(f.name)}`, download: f.name, class: 'files-name' }, f.name),
        h('span', { class: 'files-size' }, formatBytes(f.size)),
        modified ? h('time', { class: 'files-time', datetime: f.modified ?? '' }, modified) : null);
    }));
  }

  private next(): void {
    if (this.busy) return;
    const up = this.queue.shift();
    if (!up) return;
    this.busy = true;
    this.send(up);
  }

  private send(up: Upload): void {
    up.item.dataset.state = 'uploading';
    up.status.textContent = 'Uploading…';
    this.progress(up, 0);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${this.base}kasm/files/upload?name=${encodeURIComponent(up.file.name)}`);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) this.progress(up, Math.min(99, Math.floor((e.loaded / e.total) * 100)));
    };
    const done = (state: 'done' | 'error', text: string) => {
      this.finish(up, state, text);
      this.busy = false;
      this.next();
    };
    xhr.onload = () => {
      if (xhr.status === 201 || xhr.status === 200) {
        let path = `${this.info.upload_dir}/${up.file.name}`;
        try {
          const r = JSON.parse(xhr.responseText) as { path?: unknown };
          if (typeof r.path === 'string' && r.path) path = r.path;
        } catch {
          // The upload is there; the answer only names where.
        }
        this.progress(up, 100);
        done('done', `Saved to ${path}`);
      } else {
        done('error', refusal(xhr.status, xhr.responseText));
      }
    };
    // A server that refuses an upload early (too large) may close the connection before the
    // browser has sent it all: then there is no answer to show.
    xhr.onerror = () => done('error', 'The upload failed: the connection to the server was lost (the file may be too large).');
    xhr.onabort = () => done('error', 'The upload was cancelled.');
    xhr.send(up.file);
  }

  private progress(up: Upload, percent: number): void {
    up.bar.value = percent;
    up.percent.textContent = `${percent}%`;
  }

  private finish(up: Upload, state: 'done' | 'error', text: string): void {
    up.item.dataset.state = state;
    up.status.textContent = text;
    up.status.className = state === 'error' ? 'files-status files-error' : 'files-status files-ok';
    up.status.setAttribute('role', state === 'error' ? 'alert' : 'status');
    if (state === 'error') {
      up.bar.hidden = true;
      up.percent.hidden = true;
    }
  }
}

// Files dragged over the page show `overlay`; dropped, they go to `onDrop`. Only drags that carry
// files count (not text or links dragged within the page).
export function acceptDrops(overlay: HTMLElement, onDrop: (files: FileList) => void): void {
  let hideTimer = 0;
  const carriesFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes('Files');
  const hide = () => {
    window.clearTimeout(hideTimer);
    overlay.hidden = true;
  };
  const over = (e: DragEvent) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
    overlay.hidden = false;
    // dragover repeats while the pointer is over the page; when it stops the drag went elsewhere.
    window.clearTimeout(hideTimer);
    hideTimer = window.setTimeout(hide, 400);
  };
  window.addEventListener('dragenter', over, true);
  window.addEventListener('dragover', over, true);
  window.addEventListener('dragleave', (e) => {
    if (e.relatedTarget === null) hide();
  }, true);
  window.addEventListener('drop', (e) => {
    if (!carriesFiles(e)) return;
    e.preventDefault();
    hide();
    if (e.dataTransfer?.files.length) onDrop(e.dataTransfer.files);
  }, true);
}
