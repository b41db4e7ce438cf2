#pragma once

// The page that kasm_url opens for a desktop (VNC) session: web/viewer.html as built by Vite,
// served by the session proxy at /desktop/<session>/ to whoever holds the session's token, with
// what the page needs (the session, the token for its WebSocket, the desktop's VNC password) in a
// <meta name="kasm-viewer"> element.

#include <optional>
#include <string>
#include <vector>

#include "kasm/core/id.hpp"
#include "kasm/core/result.hpp"
#include "kasm/net/session_proxy.hpp"

namespace kasm::server {

class SessionViewer {
 public:
  // Reads `web_root`/`page` (the desktop viewer, or terminal.html for SSH servers). NotFound when
  // the web application was not built.
  static Result<SessionViewer> load(const std::string& web_root, const std::string& page = "viewer.html");

  // The page for one viewer. `frame_ancestors`: the portal origins that may frame it (besides the
  // server's own pages). Never cached, never sends a Referer, scripts only from this server.
  net::ProxyPage render(const SessionId& session, std::string_view token, bool view_only, bool owner,
                        const std::vector<std::string>& frame_ancestors) const;

 private:
  std::string head_;  // The template up to and including "<head>".
  std::string tail_;  // The rest.
};

}  // namespace kasm::server
