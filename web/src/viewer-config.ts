// What the session proxy tells a session page (the desktop viewer, the SSH terminal) in its
// <meta name="kasm-viewer">: the session, the token for the page's WebSocket, whether this viewer
// may only watch and whether it owns the session. Shared by viewer.ts and terminal.ts.

export interface ViewerConfig {
  session: string;
  token: string;
  view_only?: boolean;
  // The session's owner: only their window resizes the desktop (a joiner's follows it, scaled).
  owner?: boolean;
}

export function parseViewerConfig(content: string | null | undefined): ViewerConfig | null {
  try {
    const cfg = JSON.parse(content ?? '') as ViewerConfig;
    return cfg && typeof cfg.token === 'string' ? cfg : null;
  } catch {
    return null;
  }
}

export function viewerConfig(): ViewerConfig | null {
  return parseViewerConfig(document.querySelector('meta[name="kasm-viewer"]')?.getAttribute('content'));
}

// The token has done its work in the address bar: drop it (and keep the page's other flags), so it
// is neither bookmarked nor shown.
export function dropTokenFromAddress(): URLSearchParams {
  const params = new URLSearchParams(location.search);
  if (params.has('token')) {
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? `?${rest}` : '') + location.hash);
  }
  return params;
}
