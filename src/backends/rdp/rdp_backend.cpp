// The "rdp" gateway backend: one serve() per connection, on the caller's thread. The RFB handshake
// is split around the RDP connection: the versions are exchanged first, then the RDP connection is
// made and logged on, and only then is the security answer given, so that a failure reaches the
// viewer as an RFB failure reason instead of a black screen. After ServerInit one loop waits on
// FreeRDP's event handles and the viewer's socket together (WinPR's WaitForMultipleObjects with a
// file-descriptor event), so nothing spins.

#include "kasm/rdp/rdp_backend.hpp"

#include <malloc.h>
#include <poll.h>
#include <sys/socket.h>
#include <winpr/handle.h>
#include <winpr/synch.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>

#include "backends/rdp/rdp_client.hpp"
#include "backends/rdp/rfb_session.hpp"

namespace kasm::rdp {

namespace {

using detail::RdpClient;
using detail::RfbSession;

constexpr int kWriteTimeoutMs = 30000;  // A viewer that reads nothing for this long is gone.
constexpr int kHandshakeTimeoutMs = 20000;
// The viewer going away is how a session normally ends, not an error worth a log line.
constexpr std::string_view kViewerClosed = "the viewer closed the connection";

Result<void> writeAll(int fd, std::string_view bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + done, bytes.size() - done, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      const int ready = poll(&p, 1, kWriteTimeoutMs);
      if (ready == 1 && !(p.revents & (POLLERR | POLLHUP))) continue;
      if (p.revents & (POLLERR | POLLHUP)) return unavailable(std::string(kViewerClosed));
      return unavailable("the viewer stopped reading");
    }
    if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return unavailable(std::string(kViewerClosed));
    return unavailable(std::string("writing to the viewer failed: ") + std::strerror(errno));
  }
  return okResult();
}

Result<void> readExact(int fd, void* data, std::size_t size, int timeout_ms) {
  auto* p = static_cast<char*>(data);
  std::size_t done = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (done < size) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    pollfd pfd{fd, POLLIN, 0};
    if (left <= 0 || poll(&pfd, 1, static_cast<int>(left)) != 1) return deadlineExceeded("the viewer did not answer");
    const ssize_t n = recv(fd, p + done, size - done, MSG_DONTWAIT);
    if (n == 0) return unavailable(std::string(kViewerClosed));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return unavailable(std::string("reading from the viewer failed: ") + std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  return okResult();
}

// RdpClient as the RFB session's input sink.
class ClientInput : public detail::RdpInput {
 public:
  explicit ClientInput(RdpClient& c) : c_(c) {}
  void sendKey(bool down, std::uint8_t scancode, bool extended) override { c_.sendKey(down, scancode, extended); }
  void sendUnicode(bool down, char32_t cp) override { c_.sendUnicode(down, cp); }
  bool unicodeInput() const override { return c_.unicodeInput(); }
  void sendPointer(std::uint16_t mask, std::uint16_t x, std::uint16_t y) override { c_.sendPointer(mask, x, y); }
  void setClipboardText(std::string latin1) override { c_.setClipboardText(std::move(latin1)); }
  bool requestResize(std::uint16_t w, std::uint16_t h) override { return c_.requestResize(w, h); }

 private:
  RdpClient& c_;
};

class RdpBackend : public spi::GatewayBackend {
 public:
  explicit RdpBackend(RdpBackendOptions options) : options_(options) {
    detail::prepareFreeRdp();
#if defined(__GLIBC__)
    if (options_.fix_malloc_mmap_threshold) {
      static std::once_flag once;
      std::call_once(once, [] { mallopt(M_MMAP_THRESHOLD, 128 * 1024); });
    }
#endif
  }

  std::string_view protocol() const noexcept override {
    return "rdp";
  }

  Result<void> serve(const spi::GatewayRequest& request, int client_fd, spi::GatewayPins& pins) override {
    KASM_RETURN_IF_ERROR(writeAll(client_fd, "RFB 003.008\n"));
    char version[12];
    KASM_RETURN_IF_ERROR(readExact(client_fd, version, sizeof(version), kHandshakeTimeoutMs));
    if (std::memcmp(version, "RFB 003.008\n", 12) != 0) {
      return invalidArgument("the viewer does not speak RFB 3.8");
    }

    RfbSession session(options_.extended_mouse_buttons);
    RdpClient rdp(request, pins, session);
    if (auto connected = rdp.connect(client_fd, options_.connect_timeout_ms); !connected.ok()) {
      (void)writeAll(client_fd, detail::securityFailure(connected.error().message()));
      return connected;
    }

    // Security type None, its result, the viewer's ClientInit, then ServerInit.
    KASM_RETURN_IF_ERROR(writeAll(client_fd, std::string_view("\x01\x01", 2)));
    unsigned char chosen = 0;
    KASM_RETURN_IF_ERROR(readExact(client_fd, &chosen, 1, kHandshakeTimeoutMs));
    if (chosen != 1) {
      std::string refused(4, '\0');
      refused[3] = 1;
      const std::string why = "only security type None is offered";
      detail::putU32(refused, static_cast<std::uint32_t>(why.size()));
      (void)writeAll(client_fd, refused + why);
      return invalidArgument("the viewer chose a security type that was not offered");
    }
    KASM_RETURN_IF_ERROR(writeAll(client_fd, std::string(4, '\0')));
    unsigned char shared = 0;
    KASM_RETURN_IF_ERROR(readExact(client_fd, &shared, 1, kHandshakeTimeoutMs));
    const auto frame = rdp.frame();
    ClientInput input(rdp);
    session.attach(input, frame.width, frame.height);
    KASM_RETURN_IF_ERROR(writeAll(client_fd, detail::serverInit(frame.width, frame.height, request.host + " (RDP)")));
    return relay(rdp, session, client_fd);
  }

 private:
  Result<void> relay(RdpClient& rdp, RfbSession& session, int client_fd) {
    HANDLE viewer = CreateFileDescriptorEvent(nullptr, FALSE, FALSE, client_fd, WINPR_FD_READ);
    if (!viewer) return internalError("WinPR could not watch the viewer's socket");
    std::vector<std::uint8_t> buf(64 * 1024);
    Result<void> result = okResult();
    for (;;) {
      HANDLE handles[65];
      // WaitForMultipleObjects takes at most 64 handles: FreeRDP's and the viewer's.
      const auto n = rdp.eventHandles(handles, 63);
      if (n == 0) {
        result = internalError("FreeRDP has no event handles");
        break;
      }
      handles[n] = viewer;
      // The timeout only bounds how long a missed wake-up could last; every source has a handle.
      WaitForMultipleObjects(static_cast<DWORD>(n + 1), handles, FALSE, 1000);
      if (!rdp.processEvents()) {
        result = unavailable("the RDP connection ended: " + rdp.reason());
        break;
      }
      const ssize_t got = recv(client_fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno == ECONNRESET)) break;  // The viewer closed: a normal end.
      if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        result = unavailable(std::string("reading from the viewer failed: ") + std::strerror(errno));
        break;
      }
      if (got > 0 && !session.receive({buf.data(), static_cast<std::size_t>(got)})) {
        result = invalidArgument(session.error());
        break;
      }
      const std::string out = session.takeOutput(rdp.frame());
      if (!session.error().empty()) {
        result = internalError(session.error());
        break;
      }
      if (!out.empty()) {
        if (auto written = writeAll(client_fd, out); !written.ok()) {
          if (written.error().message() != kViewerClosed) result = written;
          break;
        }
      }
    }
    CloseHandle(viewer);
    return result;
  }

  RdpBackendOptions options_;
};

}  // namespace

std::unique_ptr<spi::GatewayBackend> makeRdpBackend(RdpBackendOptions options) {
  return std::make_unique<RdpBackend>(options);
}

}  // namespace kasm::rdp
