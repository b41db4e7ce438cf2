#include "backends/redis/redis_connection.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace kasm::redis {
namespace {

int remainingMs(SteadyTime deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(std::min<long long>(left.count(), 1 << 30));
}

// 1 ready, 0 timeout, -1 error.
int waitFor(int fd, short events, SteadyTime deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, remainingMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    return r == 0 ? 0 : 1;
  }
}

std::string decodePercent(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    int v = 0;
    if (s[i] == '%' && i + 2 < s.size() &&
        std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr == s.data() + i + 3) {
      out.push_back(static_cast<char>(v));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

RedisReply copyReply(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING: out.type = RedisReply::Type::kString; break;
    case REDIS_REPLY_ARRAY: out.type = RedisReply::Type::kArray; break;
    case REDIS_REPLY_INTEGER: out.type = RedisReply::Type::kInteger; break;
    case REDIS_REPLY_STATUS: out.type = RedisReply::Type::kStatus; break;
    case REDIS_REPLY_ERROR: out.type = RedisReply::Type::kError; break;
    default: out.type = RedisReply::Type::kNil; break;
  }
  if (r->str) out.str.assign(r->str, r->len);
  out.integer = r->integer;
  for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(copyReply(r->element[i]));
  return out;
}

std::string formatCommands(const std::vector<RedisCommand>& commands) {
  std::string out;
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& c : commands) {
    argv.clear();
    lens.clear();
    for (const auto& a : c) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    char* cmd = nullptr;
    int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
    if (n > 0) out.append(cmd, static_cast<std::size_t>(n));
    redisFreeCommand(cmd);
  }
  return out;
}

std::string tlsErrorText() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

}  // namespace

Result<RedisEndpoint> parseRedisUrl(std::string_view url) {
  RedisEndpoint ep;
  std::string_view rest;
  if (url.starts_with("redis://")) {
    rest = url.substr(8);
  } else if (url.starts_with("rediss://")) {
    rest = url.substr(9);
    ep.tls = true;
  } else {
    return invalidArgument("redis url: must start with redis:// or rediss://");
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      ep.password = decodePercent(userinfo);  // redis://secret@host: the password alone.
    } else {
      ep.username = decodePercent(userinfo.substr(0, colon));
      ep.password = decodePercent(userinfo.substr(colon + 1));
    }
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return invalidArgument("redis url: unterminated [ipv6] host");
    ep.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':') port = authority.substr(close + 2);
  } else {
    auto colon = authority.rfind(':');
    ep.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (ep.host.empty()) return invalidArgument("redis url: no host");
  if (!port.empty()) {
    unsigned p = 0;
    auto r = std::from_chars(port.data(), port.data() + port.size(), p);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || p == 0 || p > 65535) {
      return invalidArgument("redis url: bad port '" + std::string(port) + "'");
    }
    ep.port = static_cast<std::uint16_t>(p);
  }
  path = path.substr(0, path.find('?'));
  if (!path.empty()) {
    auto r = std::from_chars(path.data(), path.data() + path.size(), ep.db);
    if (r.ec != std::errc() || r.ptr != path.data() + path.size() || ep.db < 0) {
      return invalidArgument("redis url: the path must be a database number, got '" + std::string(path) + "'");
    }
  }
  return ep;
}

Result<std::shared_ptr<SSL_CTX>> makeTlsContext(const std::string& ca_file, bool insecure) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) return internalError("redis: cannot create a TLS context: " + tlsErrorText());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (insecure) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    return ctx;
  }
  int ok = ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx.get())
                           : SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr);
  if (ok != 1) return invalidArgument("redis: cannot load the TLS CA file '" + ca_file + "': " + tlsErrorText());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
}

RedisConnection::RedisConnection(int fd, Duration command_timeout)
    : fd_(fd), command_timeout_(command_timeout), reader_(redisReaderCreate()) {}

RedisConnection::~RedisConnection() {
  if (ssl_) SSL_free(ssl_);
  if (fd_ >= 0) ::close(fd_);
  if (reader_) redisReaderFree(static_cast<redisReader*>(reader_));
}

Result<std::unique_ptr<RedisConnection>> RedisConnection::open(const RedisEndpoint& ep, SSL_CTX* tls,
                                                               Duration connect_timeout, Duration command_timeout) {
  const auto where = ep.host + ":" + std::to_string(ep.port);
  const auto deadline = std::chrono::steady_clock::now() + connect_timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addrs = nullptr;
  if (int rc = ::getaddrinfo(ep.host.c_str(), std::to_string(ep.port).c_str(), &hints, &addrs); rc != 0) {
    return unavailable("redis " + where + ": cannot resolve the host: " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(addrs, ::freeaddrinfo);
  std::string why = "no address";
  int fd = -1;
  for (auto* a = addrs; a && fd < 0; a = a->ai_next) {
    int s = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (s < 0) continue;
    int rc = ::connect(s, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      int w = waitFor(s, POLLOUT, deadline);
      int err = 0;
      socklen_t len = sizeof err;
      if (w == 1 && ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
        rc = 0;
      } else {
        why = w == 0 ? "connect timed out" : std::strerror(err ? err : errno);
      }
    } else if (rc != 0) {
      why = std::strerror(errno);
    }
    if (rc == 0) {
      fd = s;
    } else {
      ::close(s);
    }
  }
  if (fd < 0) return unavailable("redis " + where + ": " + why);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::unique_ptr<RedisConnection> c(new RedisConnection(fd, command_timeout));
  if (tls) KASM_RETURN_IF_ERROR(c->handshakeTls(tls, ep.host, deadline));

  std::vector<RedisCommand> hello;
  if (!ep.password.empty()) {
    hello.push_back(ep.username.empty() ? RedisCommand{"AUTH", ep.password}
                                        : RedisCommand{"AUTH", ep.username, ep.password});
  }
  if (ep.db != 0) hello.push_back({"SELECT", std::to_string(ep.db)});
  hello.push_back({"PING"});
  KASM_ASSIGN_OR_RETURN(auto replies, c->run(hello));
  for (std::size_t i = 0; i < replies.size(); ++i) {
    if (!replies[i].isError()) continue;
    const auto& cmd = hello[i][0];
    const auto& text = replies[i].str;
    if (cmd == "AUTH" || text.starts_with("NOAUTH") || text.starts_with("WRONGPASS")) {
      return unauthenticated("redis " + where + ": authentication failed (check the password in the URL): " + text);
    }
    if (text.starts_with("LOADING")) return unavailable("redis " + where + ": " + text);
    return failedPrecondition("redis " + where + ": " + cmd + " failed: " + text);
  }
  return c;
}

Result<void> RedisConnection::handshakeTls(SSL_CTX* ctx, const std::string& host, SteadyTime deadline) {
  ssl_ = SSL_new(ctx);
  if (!ssl_) return internalError("redis: SSL_new failed: " + tlsErrorText());
  SSL_set_fd(ssl_, fd_);
  SSL_set_tlsext_host_name(ssl_, host.c_str());
  if (SSL_CTX_get_verify_mode(ctx) != SSL_VERIFY_NONE) {
    auto* param = SSL_get0_param(ssl_);
    in6_addr a6;
    bool is_ip = ::inet_pton(AF_INET, host.c_str(), &a6) == 1 || ::inet_pton(AF_INET6, host.c_str(), &a6) == 1;
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
    }
  }
  for (;;) {
    int rc = SSL_connect(ssl_);
    if (rc == 1) return {};
    int e = SSL_get_error(ssl_, rc);
    short events = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (events == 0) return fail(unavailable("redis " + host + ": TLS handshake failed: " + tlsErrorText()));
    if (waitFor(fd_, events, deadline) != 1) return fail(unavailable("redis " + host + ": TLS handshake timed out"));
  }
}

Error RedisConnection::fail(Error e) {
  broken_ = true;
  return e;
}

Result<void> RedisConnection::writeAll(const std::string& data, SteadyTime deadline) {
  std::size_t done = 0;
  while (done < data.size()) {
    short want = POLLOUT;
    if (ssl_) {
      int n = SSL_write(ssl_, data.data() + done, static_cast<int>(data.size() - done));
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_WANT_READ) {
        want = POLLIN;
      } else if (e != SSL_ERROR_WANT_WRITE) {
        return fail(unavailable("redis: write failed: " + tlsErrorText()));
      }
    } else {
      ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        return fail(unavailable(std::string("redis: write failed: ") + std::strerror(errno)));
      }
    }
    int w = waitFor(fd_, want, deadline);
    if (w == 0) return fail(unavailable("redis: write timed out"));
    if (w < 0) return fail(unavailable(std::string("redis: poll failed: ") + std::strerror(errno)));
  }
  return {};
}

Result<bool> RedisConnection::readSome(SteadyTime deadline) {
  char buf[16384];
  for (;;) {
    short want = POLLIN;
    if (ssl_) {
      int n = SSL_read(ssl_, buf, sizeof buf);
      if (n > 0) {
        redisReaderFeed(static_cast<redisReader*>(reader_), buf, static_cast<std::size_t>(n));
        return true;
      }
      int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_WANT_WRITE) {
        want = POLLOUT;
      } else if (e == SSL_ERROR_ZERO_RETURN) {
        return fail(unavailable("redis: the server closed the connection"));
      } else if (e != SSL_ERROR_WANT_READ) {
        return fail(unavailable("redis: read failed: " + tlsErrorText()));
      }
    } else {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) {
        redisReaderFeed(static_cast<redisReader*>(reader_), buf, static_cast<std::size_t>(n));
        return true;
      }
      if (n == 0) return fail(unavailable("redis: the server closed the connection"));
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        return fail(unavailable(std::string("redis: read failed: ") + std::strerror(errno)));
      }
    }
    int w = waitFor(fd_, want, deadline);
    if (w == 0) return false;
    if (w < 0) return fail(unavailable(std::string("redis: poll failed: ") + std::strerror(errno)));
  }
}

std::optional<RedisReply> RedisConnection::takeReply() {
  void* raw = nullptr;
  auto* reader = static_cast<redisReader*>(reader_);
  if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
    broken_ = true;
    return RedisReply{.type = RedisReply::Type::kError, .str = std::string("protocol error: ") + reader->errstr};
  }
  if (!raw) return std::nullopt;
  auto out = copyReply(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return out;
}

Result<void> RedisConnection::send(const std::vector<RedisCommand>& commands, SteadyTime deadline) {
  if (broken_) return unavailable("redis: the connection is broken");
  return writeAll(formatCommands(commands), deadline);
}

Result<std::optional<RedisReply>> RedisConnection::read(SteadyTime deadline) {
  for (;;) {
    if (auto r = takeReply()) {
      if (broken_) return unavailable("redis: " + r->str);
      return r;
    }
    KASM_ASSIGN_OR_RETURN(bool got, readSome(deadline));
    if (!got) return std::optional<RedisReply>{};
  }
}

Result<std::vector<RedisReply>> RedisConnection::run(const std::vector<RedisCommand>& commands) {
  const auto deadline = std::chrono::steady_clock::now() + command_timeout_;
  KASM_RETURN_IF_ERROR(send(commands, deadline));
  std::vector<RedisReply> replies;
  while (replies.size() < commands.size()) {
    KASM_ASSIGN_OR_RETURN(auto r, read(deadline));
    if (!r) return fail(unavailable("redis: no reply within " + std::to_string(command_timeout_.count()) + " ms"));
    replies.push_back(std::move(*r));
  }
  return replies;
}

Result<RedisReply> RedisConnection::run(const RedisCommand& command) {
  KASM_ASSIGN_OR_RETURN(auto replies, run(std::vector<RedisCommand>{command}));
  return std::move(replies.front());
}

bool RedisConnection::closedWhileIdle() const {
  if (broken_) return true;
  if (ssl_) {
    char c;
    int n = SSL_peek(ssl_, &c, 1);
    if (n > 0) return true;
    int e = SSL_get_error(ssl_, n);
    ERR_clear_error();
    return e != SSL_ERROR_WANT_READ;
  }
  char c;
  ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || n > 0) return true;
  return errno != EAGAIN && errno != EWOULDBLOCK;
}

}  // namespace kasm::redis
