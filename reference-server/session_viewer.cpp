#include "session_viewer.hpp"

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

namespace kasm::server {
namespace {

// For a double-quoted HTML attribute value.
std::string escapeAttribute(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 16);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

Result<SessionViewer> SessionViewer::load(const std::string& web_root, const std::string& page) {
  const std::string path = web_root + "/" + page;
  std::ifstream in(path);
  if (!in) return notFound("the session viewer " + path + " is missing (build the web application)");
  std::stringstream text;
  text << in.rdbuf();
  const std::string html = text.str();
  const auto head = html.find("<head>");
  if (head == std::string::npos) return dataLoss(path + " has no <head>");
  SessionViewer v;
  v.head_ = html.substr(0, head + 6);
  v.tail_ = html.substr(head + 6);
  return v;
}

net::ProxyPage SessionViewer::render(const SessionId& session, std::string_view token, bool view_only, bool owner,
                                     const std::vector<std::string>& frame_ancestors) const {
  // No VNC password: the proxy answers the desktop's authentication itself. view_only only tells
  // the page what to show; the proxy drops a watcher's input whatever the page sends.
  boost::json::object cfg;
  cfg["session"] = session.str();
  cfg["token"] = std::string(token);
  cfg["view_only"] = view_only;
  cfg["owner"] = owner;
  net::ProxyPage page;
  page.body = head_ + "\n    <meta name=\"kasm-viewer\" content=\"" + escapeAttribute(boost::json::serialize(cfg)) +
              "\" />" + tail_;
  std::string ancestors = "'self'";
  for (const auto& o : frame_ancestors) ancestors += " " + o;
  page.headers = {
      // The page holds a token: never stored by a cache, never named in a Referer.
      {"Cache-Control", "no-store"},
      {"Referrer-Policy", "no-referrer"},
      {"X-Content-Type-Options", "nosniff"},
      {"Content-Security-Policy",
       "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors " +
           ancestors},
  };
  return page;
}

}  // namespace kasm::server
