// The sealed request line a gateway connection starts with, the backend registry and file pins.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "kasm/auth/seal.hpp"
#include "kasm/gateway/gateway.hpp"

namespace kasm {
namespace gateway {
namespace {

namespace json = boost::json;
constexpr std::string_view kPurpose = "gateway-request";

std::string str(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::int64_t num(const json::object& o, std::string_view k) {
  const auto* v = o.if_contains(k);
  return v && v->is_int64() ? v->as_int64() : -1;
}

}  // namespace

Result<std::string> sealRequest(std::string_view key, const spi::GatewayRequest& r, TimePoint now, Duration valid_for) {
  if (r.protocol.empty() || r.host.empty() || r.port == 0)
    return invalidArgument("a gateway request needs a protocol, a host and a port");
  json::object o;
  o["protocol"] = r.protocol;
  o["host"] = r.host;
  o["port"] = r.port;
  o["username"] = r.username;
  o["password"] = r.password;
  o["domain"] = r.domain;
  o["private_key"] = r.private_key;
  o["security"] = r.security;
  o["certificate_policy"] = r.certificate_policy;
  o["width"] = r.width;
  o["height"] = r.height;
  o["keyboard_layout"] = r.keyboard_layout;
  o["session_id"] = r.session_id;
  o["expires_at"] = toUnixMillis(now + valid_for);
  KASM_ASSIGN_OR_RETURN(std::string sealed, auth::seal(key, kPurpose, json::serialize(o)));
  return std::string(kRequestPrefix) + sealed + "\n";
}

Result<spi::GatewayRequest> openRequest(std::string_view key, std::string_view line, TimePoint now) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.starts_with(kRequestPrefix)) return unauthenticated("not a gateway request");
  auto plain = auth::unseal(key, kPurpose, line.substr(kRequestPrefix.size()));
  if (!plain.ok()) return unauthenticated("the gateway request is not sealed under this gateway's key");
  boost::system::error_code ec;
  json::value v = json::parse(*plain, ec);
  if (ec || !v.is_object()) return invalidArgument("the gateway request is not a JSON object");
  const auto& o = v.as_object();
  if (num(o, "expires_at") < toUnixMillis(now)) return unauthenticated("the gateway request expired");
  spi::GatewayRequest r;
  r.protocol = str(o, "protocol");
  r.host = str(o, "host");
  const auto port = num(o, "port");
  const auto width = num(o, "width");
  const auto height = num(o, "height");
  if (r.protocol.empty() || r.host.empty() || port <= 0 || port > 65535)
    return invalidArgument("the gateway request lacks a protocol, host or port");
  r.port = static_cast<std::uint16_t>(port);
  r.username = str(o, "username");
  r.password = str(o, "password");
  r.domain = str(o, "domain");
  r.private_key = str(o, "private_key");
  r.security = str(o, "security");
  r.certificate_policy = str(o, "certificate_policy");
  if (width > 0 && width <= 16384) r.width = static_cast<std::uint16_t>(width);
  if (height > 0 && height <= 16384) r.height = static_cast<std::uint16_t>(height);
  r.keyboard_layout = str(o, "keyboard_layout");
  r.session_id = str(o, "session_id");
  return r;
}

FilePins::FilePins(std::string path) : path_(std::move(path)) {}

Result<void> FilePins::check(std::string_view key, std::string_view fingerprint) {
  if (key.empty() || fingerprint.empty() || key.find_first_of(" \n") != std::string_view::npos ||
      fingerprint.find_first_of(" \n") != std::string_view::npos) {
    return invalidArgument("a pin needs a key and a fingerprint without spaces");
  }
  std::lock_guard lock(mu_);
  std::map<std::string, std::string, std::less<>> pins;
  {
    std::ifstream in(path_);
    std::string line;
    while (std::getline(in, line)) {
      const auto sp = line.find(' ');
      if (sp != std::string::npos) pins[line.substr(0, sp)] = line.substr(sp + 1);
    }
  }
  if (auto it = pins.find(key); it != pins.end()) {
    if (it->second == fingerprint) return {};
    return permissionDenied("the identity of " + std::string(key) + " changed: pinned " + it->second + ", now " +
                            std::string(fingerprint) + "; if the change is expected, remove the pin");
  }
  pins.emplace(std::string(key), std::string(fingerprint));
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return unavailable("cannot write the pins file " + tmp);
  std::string text;
  for (const auto& [k, f] : pins) text += k + " " + f + "\n";
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!written || std::rename(tmp.c_str(), path_.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return unavailable("cannot write the pins file " + path_);
  }
  return {};
}

}  // namespace gateway

namespace spi {
namespace {

struct Registry {
  std::mutex mu;
  std::map<std::string, GatewayBackendFactory, std::less<>> factories;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void registerGatewayBackend(std::string protocol, GatewayBackendFactory factory) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  r.factories[std::move(protocol)] = std::move(factory);
}

std::vector<std::string> gatewayBackendNames() {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<std::string> out;
  for (const auto& [name, f] : r.factories) out.push_back(name);
  return out;
}

Result<std::unique_ptr<GatewayBackend>> makeGatewayBackend(std::string_view protocol) {
  GatewayBackendFactory factory;
  {
    auto& r = registry();
    std::lock_guard lock(r.mu);
    if (auto it = r.factories.find(protocol); it != r.factories.end()) factory = it->second;
  }
  if (!factory) {
    std::string names;
    for (const auto& n : gatewayBackendNames()) names += (names.empty() ? "" : ", ") + n;
    return notFound("no gateway backend for '" + std::string(protocol) +
                    "' (registered: " + (names.empty() ? "none" : names) + ")");
  }
  auto backend = factory();
  if (!backend) return internalError("the gateway backend for '" + std::string(protocol) + "' could not be made");
  return backend;
}

}  // namespace spi
}  // namespace kasm
