// An upgraded connection after its 101 (see upgrade_tunnel.hpp): two directions as completion
// handlers on the connection's thread.
//
// Each direction is a loop that runs until it must wait, then leaves one operation pending: a read
// of its source, a wait until its destination is writable, or a TLS read or write. Every
// completion runs both loops (run()): a loop whose operation is still pending returns at once, so
// neither needs to know what the other waits for. A plain source that has nothing to read has a
// read into the side's small buffer pending; a burst that fills it goes on without blocking in a
// relay buffer, until a read comes back short (the socket is empty) and the buffer is given back.

#include "net/upgrade_tunnel.hpp"

#include <cstring>

#include "net/vnc_bridge.hpp"

namespace kasm::net::detail {

namespace {
// Reads one direction may relay in one go before the tunnel lets the thread's other connections
// run: on loopback or a fast network neither its reads nor its writes ever wait (the VNC bridge's
// figure, vnc_bridge.cpp).
constexpr int kBurstReads = 64;
}  // namespace

UpgradeTunnel::UpgradeTunnel(SessionProxy::Impl& proxy, Transport& client, Transport& upstream, ExchangeGuard& guard)
    : proxy_(proxy), guard_(guard), up_(client, upstream, true), down_(upstream, client, false) {
  proxy_.tunnels.fetch_add(1);
}

UpgradeTunnel::~UpgradeTunnel() {
  proxy_.tunnels.fetch_sub(1);
}

void UpgradeTunnel::start(std::shared_ptr<void> connection) {
  connection_ = std::move(connection);
  run();
}

void UpgradeTunnel::run() {
  try {
    pump(up_);
    pump(down_);
  } catch (...) {
    finish();  // No relay buffer could be mapped: this tunnel ends, the thread goes on.
  }
}

void UpgradeTunnel::finish() {
  if (done_) return;
  done_ = true;
  // The pending waits end with an error; their handlers hold the last references.
  up_.in.close();
  up_.out.close();
}

void UpgradeTunnel::received(Side& s, std::size_t n) {
  if (s.from_client) {
    guard_.clientTraffic(n);
  } else {
    guard_.upstreamTraffic(n);
  }
  s.begin = 0;
  s.end = n;
}

void UpgradeTunnel::pump(Side& s) {
  int reads = 0;
  while (!done_ && !s.waiting) {
    if (s.end > s.begin) {
      if (!flush(s)) return;
      continue;
    }
    if (s.drained) {  // Set only for a plain source: a TLS one is always read through its stream.
      readPending(s);
      return;
    }
    if (++reads > kBurstReads) {
      // Yield: the next read comes first when this resumes.
      if (!s.in.secure()) s.buf.release();
      s.waiting = true;
      asio::post(s.in.get_executor(), [self = shared_from_this(), &s] {
        s.waiting = false;
        self->run();
      });
      return;
    }
    armIdle(s.in, proxy_.options.tunnel_idle_timeout);
    s.buf.take(proxy_.options.buffer_bytes, proxy_.buffers_in_use);
    if (s.in.secure()) {
      s.waiting = true;
      s.in.async_read_some(asio::buffer(s.buf.data(), s.buf.size()),
                           [self = shared_from_this(), &s](beast::error_code ec, std::size_t n) {
                             s.waiting = false;
                             if (ec) return self->finish();
                             self->received(s, n);
                             self->run();
                           });
      return;
    }
    beast::error_code ec;
    const std::size_t n = s.in.tcp().readSomeNow(asio::buffer(s.buf.data(), s.buf.size()), ec);
    if (ec == asio::error::would_block) {
      readPending(s);
      return;
    }
    if (ec) return finish();
    received(s, n);
    s.drained = n < s.buf.size();  // A short read emptied the socket.
  }
}

void UpgradeTunnel::readPending(Side& s) {
  s.buf.release();
  s.drained = false;
  s.waiting = true;
  armIdle(s.in, proxy_.options.tunnel_idle_timeout);
  s.in.tcp().async_read_some(
      asio::buffer(s.small), [self = shared_from_this(), &s](beast::error_code ec, std::size_t n) {
        s.waiting = false;
        if (ec) return self->finish();
        if (n < sizeof s.small) {
          self->received(s, n);
          s.drained = true;
        } else {
          // A full read: more may be waiting. The burst goes on in a relay buffer, behind these bytes.
          try {
            s.buf.take(self->proxy_.options.buffer_bytes, self->proxy_.buffers_in_use);
          } catch (...) {
            return self->finish();
          }
          std::memcpy(s.buf.data(), s.small, n);
          beast::error_code rec;
          const std::size_t more = s.in.tcp().readSomeNow(asio::buffer(s.buf.data() + n, s.buf.size() - n), rec);
          if (rec && rec != asio::error::would_block) return self->finish();
          self->received(s, n + more);
          s.drained = rec == asio::error::would_block || n + more < s.buf.size();
        }
        self->run();
      });
}

bool UpgradeTunnel::flush(Side& s) {
  armIdle(s.out, proxy_.options.tunnel_idle_timeout);
  if (s.out.secure()) {
    s.waiting = true;
    asio::async_write(s.out, asio::buffer(s.data() + s.begin, s.end - s.begin),
                      [self = shared_from_this(), &s](beast::error_code ec, std::size_t) {
                        s.waiting = false;
                        if (ec) return self->finish();
                        s.begin = s.end = 0;
                        self->run();
                      });
    return false;
  }
  while (s.begin < s.end) {
    beast::error_code ec;
    const std::size_t n = s.out.tcp().writeSomeNow(asio::buffer(s.data() + s.begin, s.end - s.begin), ec);
    if (ec == asio::error::would_block) {
      s.waiting = true;
      s.out.tcp().async_wait(tcp::socket::wait_write, [self = shared_from_this(), &s](beast::error_code wec) {
        s.waiting = false;
        if (wec) return self->finish();
        self->run();
      });
      return false;
    }
    if (ec) {
      finish();
      return false;
    }
    s.begin += n;
  }
  s.begin = s.end = 0;
  return true;
}

}  // namespace kasm::net::detail
