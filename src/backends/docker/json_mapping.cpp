// Engine answers -> kasm types, engine errors -> Error, and the small encodings the API needs.

#include "backends/docker/json_mapping.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace kasm::docker::detail {
namespace {

std::string str(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::int64_t num(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<std::int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<std::int64_t>(v->as_double());
  return 0;
}

const json::object* obj(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_object() ? &v->as_object() : nullptr;
}

std::map<std::string, std::string> labelsOf(const json::object* labels) {
  std::map<std::string, std::string> out;
  if (!labels) return out;
  for (const auto& [k, v] : *labels) {
    if (v.is_string()) out[std::string(k)] = std::string(v.as_string());
  }
  return out;
}

bool containsInsensitive(std::string_view haystack, std::string_view needle) {
  auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
  return it != haystack.end();
}

// A published address that is reachable from this host: a wildcard bind is reached on loopback.
std::string reachableHost(std::string_view ip) {
  if (ip.empty() || ip == "0.0.0.0") return "127.0.0.1";
  if (ip == "::") return "[::1]";
  if (ip.find(':') != std::string_view::npos) return "[" + std::string(ip) + "]";
  return std::string(ip);
}

}  // namespace

std::string engineMessage(const HttpResponse& response) {
  boost::system::error_code ec;
  json::value v = json::parse(response.body, ec);
  if (!ec && v.is_object()) {
    std::string m = str(v.as_object(), "message");
    if (!m.empty()) return m;
  }
  std::string raw = response.body.substr(0, 400);
  while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) raw.pop_back();
  return raw.empty() ? "HTTP " + std::to_string(response.status) : raw;
}

Error engineError(const HttpResponse& response, std::string_view what) {
  std::string msg = std::string(what) + ": " + engineMessage(response);
  switch (response.status) {
    case 400: return invalidArgument(msg);
    case 401: return unauthenticated(msg);
    case 403: return permissionDenied(msg);
    case 404: return notFound(msg);
    case 409: return alreadyExists(msg);
    case 503: return unavailable(msg);
    default: return internalError(msg + " (HTTP " + std::to_string(response.status) + ")");
  }
}

Result<json::value> parseEngineJson(std::string_view text, std::string_view what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return internalError(std::string(what) + ": the engine answered with invalid JSON (" + ec.message() + ")");
  return v;
}

std::optional<spi::ContainerStatus> containerStatusFromName(std::string_view name) {
  return enumFromName<spi::ContainerStatus>(name);
}

spi::ContainerInfo containerFromInspect(const json::object& inspect) {
  spi::ContainerInfo info;
  info.id = str(inspect, "Id");
  info.name = str(inspect, "Name");
  if (!info.name.empty() && info.name[0] == '/') info.name.erase(0, 1);
  if (const auto* config = obj(inspect, "Config")) {
    info.image = str(*config, "Image");
    info.labels = labelsOf(obj(*config, "Labels"));
  }
  if (const auto* state = obj(inspect, "State")) {
    info.status = containerStatusFromName(str(*state, "Status")).value_or(spi::ContainerStatus::kDead);
    info.exit_code = static_cast<std::int32_t>(num(*state, "ExitCode"));
  }
  if (const auto* host = obj(inspect, "HostConfig")) {
    info.nano_cpus = num(*host, "NanoCpus");
    info.cpu_shares = num(*host, "CpuShares");
    info.memory_bytes = num(*host, "Memory");
  }
  // The session port is the one the runtime labelled; otherwise the lowest bound port.
  std::string wanted;
  if (auto it = info.labels.find(kSessionPortLabel); it != info.labels.end()) wanted = it->second + "/tcp";
  const json::object* network = obj(inspect, "NetworkSettings");
  const json::object* ports = network ? obj(*network, "Ports") : nullptr;
  if (ports) {
    std::optional<std::pair<int, std::string>> best;
    for (const auto& [key, bindings] : *ports) {
      if (!bindings.is_array() || bindings.as_array().empty()) continue;
      const json::value& first = bindings.as_array().front();
      if (!first.is_object()) continue;
      std::string address = reachableHost(str(first.as_object(), "HostIp")) + ":" + str(first.as_object(), "HostPort");
      int port = std::atoi(std::string(key).c_str());
      if (!wanted.empty() && key == wanted) {
        best = {-1, address};
        break;
      }
      if (!best || port < best->first) best = {port, address};
    }
    if (best) info.published = best->second;
  }
  return info;
}

spi::ContainerInfo containerFromListEntry(const json::object& entry) {
  spi::ContainerInfo info;
  info.id = str(entry, "Id");
  if (const json::value* names = entry.if_contains("Names"); names && names->is_array() && !names->as_array().empty()) {
    const json::value& n = names->as_array().front();
    if (n.is_string()) info.name = std::string(n.as_string());
    if (!info.name.empty() && info.name[0] == '/') info.name.erase(0, 1);
  }
  info.image = str(entry, "Image");
  info.status = containerStatusFromName(str(entry, "State")).value_or(spi::ContainerStatus::kDead);
  info.labels = labelsOf(obj(entry, "Labels"));
  std::string wanted;
  if (auto it = info.labels.find(kSessionPortLabel); it != info.labels.end()) wanted = it->second;
  if (const json::value* ports = entry.if_contains("Ports"); ports && ports->is_array()) {
    for (const auto& p : ports->as_array()) {
      if (!p.is_object() || num(p.as_object(), "PublicPort") == 0) continue;
      const auto& po = p.as_object();
      if (!wanted.empty() && std::to_string(num(po, "PrivatePort")) != wanted) continue;
      info.published = reachableHost(str(po, "IP")) + ":" + std::to_string(num(po, "PublicPort"));
      break;
    }
  }
  return info;
}

std::vector<spi::ImageInfo> imagesFromList(const json::array& list) {
  std::vector<spi::ImageInfo> out;
  for (const auto& v : list) {
    if (!v.is_object()) continue;
    const auto& o = v.as_object();
    spi::ImageInfo image;
    image.id = str(o, "Id");
    image.size_bytes = num(o, "Size");
    if (const json::value* tags = o.if_contains("RepoTags"); tags && tags->is_array()) {
      for (const auto& t : tags->as_array()) {
        if (t.is_string() && t.as_string() != "<none>:<none>") image.tags.emplace_back(t.as_string());
      }
    }
    out.push_back(std::move(image));
  }
  return out;
}

spi::HostResources hostFromInfo(const json::object& info) {
  spi::HostResources host;
  host.total.millicores = num(info, "NCPU") * 1000;
  host.total.memory_bytes = num(info, "MemTotal");
  // The engine does not count GPUs; an operator override supplies them (ResourceOverrides).
  host.total.gpus = 0;
  host.os = str(info, "OperatingSystem");
  host.engine_version = str(info, "ServerVersion");
  return host;
}

spi::ContainerStats statsFromJson(const json::object& stats) {
  spi::ContainerStats out;
  const json::object* cpu = obj(stats, "cpu_stats");
  const json::object* pre = obj(stats, "precpu_stats");
  if (cpu && pre) {
    const json::object* usage = obj(*cpu, "cpu_usage");
    const json::object* pre_usage = obj(*pre, "cpu_usage");
    if (usage && pre_usage) {
      double cpu_delta = static_cast<double>(num(*usage, "total_usage") - num(*pre_usage, "total_usage"));
      double system_delta = static_cast<double>(num(*cpu, "system_cpu_usage") - num(*pre, "system_cpu_usage"));
      std::int64_t online = num(*cpu, "online_cpus");
      if (online == 0) {
        if (const json::value* per = usage->if_contains("percpu_usage"); per && per->is_array()) {
          online = static_cast<std::int64_t>(per->as_array().size());
        }
      }
      if (cpu_delta > 0 && system_delta > 0) out.cpu_cores = cpu_delta / system_delta * static_cast<double>(online);
    }
  }
  if (const json::object* mem = obj(stats, "memory_stats")) {
    std::int64_t used = num(*mem, "usage");
    if (const json::object* detail = obj(*mem, "stats")) {
      // cgroup v1 reports the page cache as "cache", v2 as "inactive_file"; neither is pressure.
      std::int64_t cache = detail->contains("total_inactive_file") ? num(*detail, "total_inactive_file")
                           : detail->contains("inactive_file")     ? num(*detail, "inactive_file")
                                                                   : num(*detail, "cache");
      if (cache < used) used -= cache;
    }
    out.memory_used_bytes = used;
    out.memory_limit_bytes = num(*mem, "limit");
  }
  return out;
}

PullEvent parsePullLine(std::string_view line) {
  PullEvent event;
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  if (ec || !v.is_object()) return event;
  const auto& o = v.as_object();
  if (o.contains("error") || o.contains("errorDetail")) {
    event.kind = PullEvent::Kind::kError;
    event.error = str(o, "error");
    if (event.error.empty()) {
      if (const auto* detail = obj(o, "errorDetail")) event.error = str(*detail, "message");
    }
    if (event.error.empty()) event.error = "unknown pull error";
    return event;
  }
  event.progress.status = str(o, "status");
  if (event.progress.status.empty()) return event;
  event.kind = PullEvent::Kind::kProgress;
  event.progress.layer = str(o, "id");
  if (const auto* detail = obj(o, "progressDetail")) {
    event.progress.current = num(*detail, "current");
    event.progress.total = num(*detail, "total");
  }
  return event;
}

Error pullError(std::string_view reference, std::string_view message) {
  std::string msg = "pull " + std::string(reference) + ": " + std::string(message);
  for (std::string_view s :
       {"manifest unknown", "not found", "does not exist", "no such image", "repository name not known"}) {
    if (containsInsensitive(message, s)) return notFound(msg);
  }
  for (std::string_view s : {"unauthorized", "authentication required", "access denied", "incorrect username",
                             "no basic auth credentials"}) {
    if (containsInsensitive(message, s)) return unauthenticated(msg);
  }
  if (containsInsensitive(message, "invalid reference")) return invalidArgument(msg);
  // Connection refused, timeouts, DNS, TLS: the registry cannot be reached now; retry later.
  return unavailable(msg);
}

std::pair<std::string, std::string> splitImageReference(std::string_view reference) {
  if (reference.find('@') != std::string_view::npos) return {std::string(reference), ""};
  const auto slash = reference.rfind('/');
  const auto colon = reference.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    return {std::string(reference.substr(0, colon)), std::string(reference.substr(colon + 1))};
  }
  return {std::string(reference), "latest"};
}

std::string urlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string base64UrlEncode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string registryAuthValue(const spi::RegistryCredentials& credentials) {
  json::object auth{
      {"username", credentials.username}, {"password", credentials.password}, {"serveraddress", credentials.server}};
  return base64UrlEncode(json::serialize(auth));
}

int compareApiVersions(std::string_view a, std::string_view b) {
  while (!a.empty() || !b.empty()) {
    int x = 0, y = 0;
    auto take = [](std::string_view& s, int& out) {
      auto dot = s.find('.');
      std::string_view part = s.substr(0, dot);
      std::from_chars(part.data(), part.data() + part.size(), out);
      s = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
    };
    take(a, x);
    take(b, y);
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

std::string demultiplexStream(std::string_view raw, std::size_t cap) {
  // Frame: [stream(1: stdin 0, stdout 1, stderr 2), 0, 0, 0, size(4, big endian)] then payload.
  auto looksFramed = [&](std::string_view s) {
    return s.size() >= 8 && static_cast<unsigned char>(s[0]) <= 2 && s[1] == 0 && s[2] == 0 && s[3] == 0;
  };
  if (!looksFramed(raw)) return std::string(raw.substr(0, cap));
  std::string out;
  while (raw.size() >= 8 && out.size() < cap) {
    std::size_t size = (static_cast<std::size_t>(static_cast<unsigned char>(raw[4])) << 24) |
                       (static_cast<std::size_t>(static_cast<unsigned char>(raw[5])) << 16) |
                       (static_cast<std::size_t>(static_cast<unsigned char>(raw[6])) << 8) |
                       static_cast<std::size_t>(static_cast<unsigned char>(raw[7]));
    raw.remove_prefix(8);
    std::string_view payload = raw.substr(0, std::min(size, raw.size()));
    out.append(payload.substr(0, cap - out.size()));
    raw.remove_prefix(payload.size());
  }
  return out;
}

void StreamDemux::feed(std::string_view data, const std::function<void(int, std::string_view)>& out) {
  while (!data.empty()) {
    if (payload_left_ > 0) {
      const std::size_t n = std::min(payload_left_, data.size());
      out(stream_, data.substr(0, n));
      payload_left_ -= n;
      data.remove_prefix(n);
      continue;
    }
    const std::size_t n = std::min(sizeof header_ - header_have_, data.size());
    std::copy_n(data.data(), n, header_ + header_have_);
    header_have_ += n;
    data.remove_prefix(n);
    if (header_have_ < sizeof header_) break;
    header_have_ = 0;
    stream_ = static_cast<unsigned char>(header_[0]);
    payload_left_ = (static_cast<std::size_t>(static_cast<unsigned char>(header_[4])) << 24) |
                    (static_cast<std::size_t>(static_cast<unsigned char>(header_[5])) << 16) |
                    (static_cast<std::size_t>(static_cast<unsigned char>(header_[6])) << 8) |
                    static_cast<std::size_t>(static_cast<unsigned char>(header_[7]));
  }
}

}  // namespace kasm::docker::detail
