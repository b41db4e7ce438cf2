// Formatting of numbers, sizes and times for display.

export function formatBytes(bytes: number | undefined | null): string {
  if (bytes === undefined || bytes === null || !Number.isFinite(bytes)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function formatCores(millicores: number | undefined | null): string {
  if (millicores === undefined || millicores === null) return '–';
  return `${(millicores / 1000).toFixed(millicores % 1000 === 0 ? 0 : 2)} CPU`;
}

// "1h 05m", "4m 09s", "12s"; "expired" at or below zero.
export function formatRemaining(ms: number): string {
  if (ms <= 0) return 'expired';
  const s = Math.floor(ms / 1000);
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = s % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (hours > 0) return `${hours}h ${pad(minutes)}m`;
  if (minutes > 0) return `${minutes}m ${pad(seconds)}s`;
  return `${seconds}s`;
}

export function formatTime(ms: number | null | undefined): string {
  if (!ms) return '–';
  return new Date(ms).toLocaleString();
}

export function formatDurationMs(ms: number | undefined): string {
  if (ms === undefined || ms === null) return '–';
  const minutes = Math.round(ms / 60000);
  return minutes >= 60 && minutes % 60 === 0 ? `${minutes / 60} h` : `${minutes} min`;
}
