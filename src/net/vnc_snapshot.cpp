#include "kasm/net/vnc_snapshot.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "auth/vnc_auth.hpp"

namespace kasm::net {
namespace {

using Clock = std::chrono::steady_clock;

class Connection {
 public:
  Connection(int fd, Clock::time_point deadline) : fd_(fd), deadline_(deadline) {}
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  Result<void> read(void* out, std::size_t n) {
    auto* p = static_cast<unsigned char*>(out);
    while (n > 0) {
      KASM_RETURN_IF_ERROR(wait(POLLIN));
      const ssize_t got = ::recv(fd_, p, n, 0);
      if (got == 0) return unavailable("the desktop closed the connection");
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return unavailable(std::string("reading from the desktop: ") + std::strerror(errno));
      }
      p += got;
      n -= static_cast<std::size_t>(got);
    }
    return {};
  }
  template <class T>
  Result<T> readBig() {
    unsigned char b[sizeof(T)];
    KASM_RETURN_IF_ERROR(read(b, sizeof b));
    T v = 0;
    for (unsigned char c : b) v = static_cast<T>((v << 8) | c);
    return v;
  }
  Result<void> write(const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    while (n > 0) {
      KASM_RETURN_IF_ERROR(wait(POLLOUT));
      const ssize_t put = ::send(fd_, p, n, MSG_NOSIGNAL);
      if (put < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return unavailable(std::string("writing to the desktop: ") + std::strerror(errno));
      }
      p += put;
      n -= static_cast<std::size_t>(put);
    }
    return {};
  }

 private:
  Result<void> wait(short events) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
    if (left <= 0) return deadlineExceeded("the desktop did not send a picture in time");
    pollfd p{fd_, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left));
    if (r == 0) return deadlineExceeded("the desktop did not send a picture in time");
    if (r < 0 && errno != EINTR) return unavailable(std::string("poll: ") + std::strerror(errno));
    return {};
  }
  int fd_;
  Clock::time_point deadline_;
};

Result<int> connectTo(const std::string& upstream, Clock::time_point deadline) {
  const auto colon = upstream.rfind(':');
  if (colon == std::string::npos || colon == 0) return invalidArgument("upstream '" + upstream + "' is not host:port");
  std::string host = upstream.substr(0, colon);
  const std::string port = upstream.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;  // An address, never a name to resolve.
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || !res) {
    return invalidArgument("upstream '" + upstream + "' is not an address and port");
  }
  const int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    ::freeaddrinfo(res);
    return unavailable(std::string("socket: ") + std::strerror(errno));
  }
  int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
  ::freeaddrinfo(res);
  if (rc != 0 && errno == EINPROGRESS) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, static_cast<int>(std::max<long long>(left, 1))) == 1 &&
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
      rc = 0;
    } else {
      errno = err ? err : ETIMEDOUT;
    }
  }
  if (rc != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    return unavailable("cannot connect to the desktop at " + upstream + ": " + why);
  }
  return fd;
}

void putBig(std::string& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xFF));
}

std::uint32_t crc32Of(const unsigned char* p, std::size_t n, std::uint32_t crc = 0xFFFFFFFFu) {
  static const auto kTable = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  for (std::size_t i = 0; i < n; ++i) crc = kTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

void putChunk(std::string& png, const char type[4], const std::string& data) {
  putBig(png, static_cast<std::uint32_t>(data.size()));
  std::string typed(type, 4);
  typed += data;
  png += typed;
  putBig(png, crc32Of(reinterpret_cast<const unsigned char*>(typed.data()), typed.size()) ^ 0xFFFFFFFFu);
}

}  // namespace

std::string encodePngRgb(const unsigned char* rgb, int width, int height) {
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  putBig(ihdr, static_cast<std::uint32_t>(width));
  putBig(ihdr, static_cast<std::uint32_t>(height));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bits, RGB, deflate, no filter method, no interlace.
  putChunk(png, "IHDR", ihdr);
  // Scanlines, each preceded by filter type 0, in a zlib stream of stored deflate blocks.
  std::string raw;
  const std::size_t row = static_cast<std::size_t>(width) * 3;
  raw.reserve((row + 1) * static_cast<std::size_t>(height));
  for (int y = 0; y < height; ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(rgb + row * static_cast<std::size_t>(y)), row);
  }
  std::string z("\x78\x01", 2);
  std::size_t off = 0;
  do {
    const std::size_t n = std::min<std::size_t>(65535, raw.size() - off);
    const bool last = off + n == raw.size();
    z.push_back(last ? '\x01' : '\x00');
    z.push_back(static_cast<char>(n & 0xFF));
    z.push_back(static_cast<char>(n >> 8));
    z.push_back(static_cast<char>(~n & 0xFF));
    z.push_back(static_cast<char>((~n >> 8) & 0xFF));
    z.append(raw, off, n);
    off += n;
  } while (off < raw.size());
  std::uint32_t a = 1, b = 0;  // Adler-32 of the uncompressed data.
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  putBig(z, (b << 16) | a);
  putChunk(png, "IDAT", z);
  putChunk(png, "IEND", "");
  return png;
}

Result<std::string> captureVncSnapshot(const VncSnapshotOptions& options) {
  if (options.width < 1 || options.width > 4096) return invalidArgument("width must be between 1 and 4096");
  const auto deadline = Clock::now() + options.timeout;
  KASM_ASSIGN_OR_RETURN(int fd, connectTo(options.relay.empty() ? options.upstream : options.relay, deadline));
  Connection c(fd, deadline);
  if (!options.relay_preamble.empty()) {
    KASM_RETURN_IF_ERROR(c.write(options.relay_preamble.data(), options.relay_preamble.size()));
  }

  char version[12];
  KASM_RETURN_IF_ERROR(c.read(version, 12));
  if (std::memcmp(version, "RFB 003.", 8) != 0) return dataLoss("the desktop does not speak RFB");
  KASM_RETURN_IF_ERROR(c.write("RFB 003.008\n", 12));
  KASM_ASSIGN_OR_RETURN(auto count, c.readBig<std::uint8_t>());
  if (count == 0) {
    KASM_ASSIGN_OR_RETURN(auto len, c.readBig<std::uint32_t>());
    std::string reason(std::min<std::uint32_t>(len, 4096), '\0');
    KASM_RETURN_IF_ERROR(c.read(reason.data(), reason.size()));
    return unavailable("the desktop refused the connection: " + reason);
  }
  std::vector<unsigned char> types(count);
  KASM_RETURN_IF_ERROR(c.read(types.data(), types.size()));
  const bool offers_vnc_auth = std::find(types.begin(), types.end(), 2) != types.end();
  const bool offers_none = std::find(types.begin(), types.end(), 1) != types.end();
  if (options.password && offers_vnc_auth) {
    const unsigned char choice = 2;
    KASM_RETURN_IF_ERROR(c.write(&choice, 1));
    unsigned char challenge[16];
    KASM_RETURN_IF_ERROR(c.read(challenge, 16));
    const auto response = auth::detail::vncAuthResponse(*options.password, challenge);
    KASM_RETURN_IF_ERROR(c.write(response.data(), response.size()));
  } else if (offers_none) {
    const unsigned char choice = 1;
    KASM_RETURN_IF_ERROR(c.write(&choice, 1));
  } else {
    return permissionDenied("the desktop offers no security type this client can use");
  }
  KASM_ASSIGN_OR_RETURN(auto result, c.readBig<std::uint32_t>());
  if (result != 0) return permissionDenied("the desktop refused the session's password");

  const unsigned char shared = 1;  // Never disconnect the user who is watching.
  KASM_RETURN_IF_ERROR(c.write(&shared, 1));
  KASM_ASSIGN_OR_RETURN(auto fb_width, c.readBig<std::uint16_t>());
  KASM_ASSIGN_OR_RETURN(auto fb_height, c.readBig<std::uint16_t>());
  unsigned char server_format[16];
  KASM_RETURN_IF_ERROR(c.read(server_format, 16));
  KASM_ASSIGN_OR_RETURN(auto name_len, c.readBig<std::uint32_t>());
  if (name_len > 65536) return dataLoss("the desktop's name is implausibly long");
  std::string name(name_len, '\0');
  KASM_RETURN_IF_ERROR(c.read(name.data(), name.size()));
  if (fb_width == 0 || fb_height == 0) return dataLoss("the desktop has no picture");

  // 32 bits per pixel, little-endian, true colour, red at bit 16, green 8, blue 0; Raw encoding.
  const unsigned char set_format[20] = {0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0};
  KASM_RETURN_IF_ERROR(c.write(set_format, sizeof set_format));
  const unsigned char set_encodings[8] = {2, 0, 0, 1, 0, 0, 0, 0};
  KASM_RETURN_IF_ERROR(c.write(set_encodings, sizeof set_encodings));
  const unsigned char request[10] = {3,
                                     0,
                                     0,
                                     0,
                                     0,
                                     0,
                                     static_cast<unsigned char>(fb_width >> 8),
                                     static_cast<unsigned char>(fb_width),
                                     static_cast<unsigned char>(fb_height >> 8),
                                     static_cast<unsigned char>(fb_height)};
  KASM_RETURN_IF_ERROR(c.write(request, sizeof request));

  std::vector<unsigned char> frame(static_cast<std::size_t>(fb_width) * fb_height * 4, 0);
  std::vector<bool> covered_rows(fb_height, false);
  std::size_t covered = 0;
  const std::size_t needed = static_cast<std::size_t>(fb_width) * fb_height;
  while (covered < needed) {
    KASM_ASSIGN_OR_RETURN(auto type, c.readBig<std::uint8_t>());
    if (type == 2) continue;  // Bell.
    if (type == 1) {          // SetColourMapEntries: skip.
      unsigned char head[5];
      KASM_RETURN_IF_ERROR(c.read(head, 5));
      std::vector<unsigned char> skip(static_cast<std::size_t>((head[3] << 8) | head[4]) * 6);
      KASM_RETURN_IF_ERROR(c.read(skip.data(), skip.size()));
      continue;
    }
    if (type == 3) {  // ServerCutText: skip.
      unsigned char head[3];
      KASM_RETURN_IF_ERROR(c.read(head, 3));
      KASM_ASSIGN_OR_RETURN(auto len, c.readBig<std::uint32_t>());
      std::vector<unsigned char> skip(std::min<std::uint32_t>(len, 1 << 20));
      KASM_RETURN_IF_ERROR(c.read(skip.data(), skip.size()));
      continue;
    }
    if (type != 0) return dataLoss("unexpected RFB message " + std::to_string(type));
    unsigned char pad;
    KASM_RETURN_IF_ERROR(c.read(&pad, 1));
    KASM_ASSIGN_OR_RETURN(auto rects, c.readBig<std::uint16_t>());
    for (int r = 0; r < rects; ++r) {
      KASM_ASSIGN_OR_RETURN(auto x, c.readBig<std::uint16_t>());
      KASM_ASSIGN_OR_RETURN(auto y, c.readBig<std::uint16_t>());
      KASM_ASSIGN_OR_RETURN(auto w, c.readBig<std::uint16_t>());
      KASM_ASSIGN_OR_RETURN(auto h, c.readBig<std::uint16_t>());
      KASM_ASSIGN_OR_RETURN(auto encoding, c.readBig<std::int32_t>());
      if (encoding != 0) return dataLoss("the desktop answered in encoding " + std::to_string(encoding) + ", not Raw");
      if (x + w > fb_width || y + h > fb_height) return dataLoss("a rectangle outside the desktop");
      std::vector<unsigned char> pixels(static_cast<std::size_t>(w) * h * 4);
      KASM_RETURN_IF_ERROR(c.read(pixels.data(), pixels.size()));
      for (int row = 0; row < h; ++row) {
        std::memcpy(&frame[(static_cast<std::size_t>(y + row) * fb_width + x) * 4],
                    &pixels[static_cast<std::size_t>(row) * w * 4], static_cast<std::size_t>(w) * 4);
      }
      covered += static_cast<std::size_t>(w) * h;
    }
  }

  // Scale down by averaging the source pixels each output pixel covers.
  const int out_w = std::min<int>(options.width, fb_width);
  const int out_h = std::max(1, static_cast<int>(static_cast<long long>(fb_height) * out_w / fb_width));
  std::vector<unsigned char> rgb(static_cast<std::size_t>(out_w) * out_h * 3);
  for (int oy = 0; oy < out_h; ++oy) {
    const int y0 = oy * fb_height / out_h, y1 = std::max(y0 + 1, (oy + 1) * fb_height / out_h);
    for (int ox = 0; ox < out_w; ++ox) {
      const int x0 = ox * fb_width / out_w, x1 = std::max(x0 + 1, (ox + 1) * fb_width / out_w);
      unsigned long sum[3] = {0, 0, 0}, n = 0;
      for (int y = y0; y < y1; ++y) {
        for (int x = x0; x < x1; ++x) {
          const unsigned char* p = &frame[(static_cast<std::size_t>(y) * fb_width + x) * 4];
          sum[0] += p[2];  // Little-endian 0x00RRGGBB: B, G, R, 0 in memory.
          sum[1] += p[1];
          sum[2] += p[0];
          ++n;
        }
      }
      unsigned char* o = &rgb[(static_cast<std::size_t>(oy) * out_w + ox) * 3];
      for (int k = 0; k < 3; ++k) o[k] = static_cast<unsigned char>(sum[k] / n);
    }
  }
  return encodePngRgb(rgb.data(), out_w, out_h);
}

}  // namespace kasm::net
