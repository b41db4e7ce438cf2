#pragma once

// What the tests of kasm-server as a process share: HTTP requests and a small WebSocket client to
// 127.0.0.1 (loopback only), and starting programs.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace kasm::e2e {

struct HttpReply {
  int status = 0;
  std::string head;  // Status line and header fields.
  std::string body;
  std::string header(const std::string& name) const {
    std::string lower = head;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const auto at = lower.find("\r\n" + name + ":");
    if (at == std::string::npos) return {};
    const auto start = head.find_first_not_of(' ', at + 3 + name.size());
    return head.substr(start, head.find("\r\n", start) - start);
  }
};

inline int connectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One HTTP/1.0 request to 127.0.0.1:port (loopback only).
inline HttpReply httpRequest(int port, const std::string& method, const std::string& target,
                             const std::string& body = {}, const std::string& extra_headers = {}) {
  HttpReply reply;
  const int fd = connectLoopback(port);
  if (fd < 0) return reply;
  std::string req = method + " " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
                    extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  (void)::send(fd, req.data(), req.size(), 0);
  std::string raw;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) raw.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (raw.size() > 12) reply.status = std::atoi(raw.substr(9, 3).c_str());
  const auto split = raw.find("\r\n\r\n");
  if (split != std::string::npos) {
    reply.head = raw.substr(0, split);
    reply.body = raw.substr(split + 4);
  }
  return reply;
}

// A WebSocket client just big enough for the tests: handshake, masked frames out (binary or
// text), whole messages in (control frames skipped), 16-bit lengths at most.
struct WebSocketProbe {
  int fd = -1;
  std::string pending;  // Bytes of binary messages not yet taken by receiveBytes().
  ~WebSocketProbe() {
    if (fd >= 0) ::close(fd);
  }
  int open(int port, const std::string& target, const std::string& extra_headers = {}) {
    fd = connectLoopback(port);
    if (fd < 0) return 0;
    const std::string req = "GET " + target +
                            " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                            "Sec-WebSocket-Protocol: binary\r\n" +
                            extra_headers + "\r\n";
    (void)::send(fd, req.data(), req.size(), 0);
    std::string head;
    char c;
    while (head.find("\r\n\r\n") == std::string::npos && ::recv(fd, &c, 1, 0) == 1) head.push_back(c);
    return head.size() > 12 ? std::atoi(head.substr(9, 3).c_str()) : 0;
  }
  bool send(const std::string& payload, bool text = false) {
    std::string frame{static_cast<char>(text ? 0x81 : 0x82)};
    if (payload.size() < 126) {
      frame.push_back(static_cast<char>(0x80 | payload.size()));
    } else {
      frame.push_back(static_cast<char>(0x80 | 126));
      frame.push_back(static_cast<char>(payload.size() >> 8));
      frame.push_back(static_cast<char>(payload.size() & 0xff));
    }
    const char mask[4] = {0x11, 0x22, 0x33, 0x44};
    frame.append(mask, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) frame.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
    return ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(frame.size());
  }
  // One data message's payload; empty when the connection closed (or timed out: 30 s).
  std::string receive() {
    for (;;) {
      unsigned char h[2];
      if (::recv(fd, h, 2, MSG_WAITALL) != 2) return {};
      std::size_t n = h[1] & 0x7f;
      if (n == 127) {  // A 64-bit length: a desktop's full frame can be megabytes.
        unsigned char ext[8];
        if (::recv(fd, ext, 8, MSG_WAITALL) != 8) return {};
        n = 0;
        for (unsigned char b : ext) n = n << 8 | b;
        if (n > 256u * 1024 * 1024) return {};
      } else if (n == 126) {
        unsigned char ext[2];
        if (::recv(fd, ext, 2, MSG_WAITALL) != 2) return {};
        n = static_cast<std::size_t>(ext[0]) << 8 | ext[1];
      }
      std::string payload(n, '\0');
      if (n > 0 && ::recv(fd, payload.data(), n, MSG_WAITALL) != static_cast<ssize_t>(n)) return {};
      const int opcode = h[0] & 0x0f;
      if (opcode == 0x8) return {};                  // Close.
      if (opcode == 0x9 || opcode == 0xA) continue;  // Ping, pong.
      return payload;
    }
  }
  // Exactly `n` bytes of the binary stream, across messages; shorter when the connection closed.
  std::string receiveBytes(std::size_t n) {
    while (pending.size() < n) {
      auto m = receive();
      if (m.empty()) break;
      pending += m;
    }
    std::string out = pending.substr(0, n);
    pending.erase(0, out.size());
    return out;
  }
};

// Starts args[0] with args; stdout goes to the write end of `out_pipe` when given (the read end is
// closed in the child), and `env` is added to the environment. Returns the pid (-1 on failure).
inline pid_t spawn(std::vector<std::string> args, const int* out_pipe = nullptr,
                   const std::vector<std::pair<std::string, std::string>>& env = {}) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  if (out_pipe) {
    ::dup2(out_pipe[1], 1);
    ::close(out_pipe[0]);
  }
  for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  ::_exit(127);
}

// A kasm-server's stdout until its {"event":"listening","detail":"http://127.0.0.1:PORT"} line:
// the port, or 0 when the output ended first. Every line read is appended to `log`.
inline int readListeningPort(FILE* out, std::string& log) {
  char line[1024];
  while (std::fgets(line, sizeof line, out)) {
    std::string l(line);
    log += l;
    if (l.find("\"listening\"") != std::string::npos) return std::atoi(l.substr(l.rfind(':') + 1).c_str());
  }
  return 0;
}

// An API key made the way an operator makes one: `kasm-server api-key create --name NAME` with the
// store's flags. Empty fields when the command failed.
struct CliApiKey {
  std::string key, secret;
};
inline CliApiKey createApiKeyWithCli(const std::string& server, const std::vector<std::string>& store_args,
                                     const std::string& name = "e2e") {
  std::string cmd = server + " api-key create --name " + name;
  for (const auto& a : store_args) cmd += " '" + a + "'";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {};
  char line[1024] = {0};
  const bool read = std::fgets(line, sizeof line, p) != nullptr;
  if (::pclose(p) != 0 || !read) return {};
  boost::system::error_code ec;
  auto v = boost::json::parse(line, ec);
  if (ec || !v.is_object()) return {};
  const auto& o = v.as_object();
  auto* k = o.if_contains("api_key");
  auto* sct = o.if_contains("api_key_secret");
  if (!k || !sct || !k->is_string() || !sct->is_string()) return {};
  return {std::string(k->as_string()), std::string(sct->as_string())};
}

// The run configuration of a stand-in desktop on port 5901 in the busybox test image: it speaks
// just enough RFB 3.8 (security None, an 8x8 ServerInit named "echo"), then echoes every byte it
// receives, so a test sees exactly which client messages the proxy let through.
inline std::string fakeRfbDesktopRunConfig() {
  const std::string script =
      "printf 'RFB 003.008\\n'; dd bs=1 count=12 >/dev/null 2>&1; printf '\\001\\001'; "
      "dd bs=1 count=1 >/dev/null 2>&1; printf '\\000\\000\\000\\000'; dd bs=1 count=1 >/dev/null 2>&1; "
      "printf '\\000\\010\\000\\010\\040\\030\\000\\001\\000\\377\\000\\377\\000\\377\\020\\010"
      "\\000\\000\\000\\000\\000\\000\\000\\004echo'; exec cat";
  boost::json::object config;
  config["Cmd"] = boost::json::array{"/bin/nc", "-ll", "-p", "5901", "-e", "/bin/sh", "-c", script};
  return boost::json::serialize(config);
}

// The browser's side of the RFB handshake through the proxy (which offers only security None),
// up to the ServerInit of fakeRfbDesktopRunConfig's desktop. Empty on success, else what went wrong.
inline std::string rfbHandshake(WebSocketProbe& ws) {
  if (ws.receiveBytes(12) != "RFB 003.008\n") return "no RFB 3.8 greeting";
  if (!ws.send("RFB 003.008\n")) return "cannot send the version";
  if (ws.receiveBytes(2) != std::string("\x01\x01", 2)) return "the proxy did not offer only security None";
  if (!ws.send(std::string("\x01", 1))) return "cannot choose None";
  if (ws.receiveBytes(4) != std::string(4, '\0')) return "no SecurityResult OK";
  if (!ws.send(std::string("\x01", 1))) return "cannot send ClientInit";
  const std::string init = ws.receiveBytes(28);
  if (init.size() != 28 || !init.ends_with("echo")) return "no ServerInit from the desktop";
  return {};
}

// Client messages, as a viewer sends them.
inline std::string rfbKeyEvent(std::uint32_t keysym, bool down) {
  std::string m{'\x04', static_cast<char>(down ? 1 : 0), '\0', '\0'};
  for (int shift = 24; shift >= 0; shift -= 8) m.push_back(static_cast<char>((keysym >> shift) & 0xff));
  return m;
}
inline std::string rfbPointerEvent(std::uint16_t x, std::uint16_t y, std::uint8_t buttons) {
  return std::string{'\x05',
                     static_cast<char>(buttons),
                     static_cast<char>(x >> 8),
                     static_cast<char>(x & 0xff),
                     static_cast<char>(y >> 8),
                     static_cast<char>(y & 0xff)};
}
inline std::string rfbUpdateRequest() {
  return std::string("\x03\x01\x00\x00\x00\x00\x00\x08\x00\x08", 10);
}

}  // namespace kasm::e2e
