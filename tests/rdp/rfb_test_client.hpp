#pragma once

// A small RFB 3.8 viewer for the rdp tests and bench_rdp: it speaks to the backend over one end of
// a socketpair the way the session proxy does (security None, shared ClientInit, then noVNC's
// messages), and decodes Raw and ZRLE updates into a local RGBX framebuffer so tests can look at
// pixels. Blocking, with a deadline on every read.

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kasm::rdp::testing {

class RfbTestClient {
 public:
  explicit RfbTestClient(int fd) : fd_(fd) { inflateInit(&zs_); }
  ~RfbTestClient() { inflateEnd(&zs_); }
  RfbTestClient(const RfbTestClient&) = delete;
  RfbTestClient& operator=(const RfbTestClient&) = delete;

  // Runs the handshake. Returns the failure reason when the server refused (empty when connected).
  std::string handshake(int timeout_ms = 30000) {
    std::string version = readString(12, timeout_ms);
    if (version != "RFB 003.008\n") throw std::runtime_error("bad server version: " + version);
    write("RFB 003.008\n");
    const std::uint8_t count = readU8(timeout_ms);
    if (count == 0) return readString(readU32(timeout_ms), timeout_ms);
    std::string types = readString(count, timeout_ms);
    write(std::string(1, '\x01'));
    if (readU32(timeout_ms) != 0) throw std::runtime_error("security result not OK");
    write(std::string(1, '\x01'));  // Shared.
    width = readU16(timeout_ms);
    height = readU16(timeout_ms);
    readString(16, timeout_ms);  // The server's pixel format.
    name = readString(readU32(timeout_ms), timeout_ms);
    if (keep_pixels) frame.assign(std::size_t{width} * height * 4, 0);
    return {};
  }

  // noVNC's pixel format (32bpp, little endian, red shift 0, green 8, blue 16).
  void setPixelFormatNoVnc() {
    std::string m = {0, 0, 0, 0, 32, 24, 0, 1, 0, (char)255, 0, (char)255, 0, (char)255, 0, 8, 16, 0, 0, 0};
    write(m);
  }
  void setEncodings(const std::vector<std::int32_t>& encodings) {
    std::string m = {2, 0};
    putU16(m, static_cast<std::uint16_t>(encodings.size()));
    for (auto e : encodings) putU32(m, static_cast<std::uint32_t>(e));
    write(m);
  }
  void requestUpdate(bool incremental) {
    std::string m = {3, static_cast<char>(incremental ? 1 : 0)};
    putU16(m, 0);
    putU16(m, 0);
    putU16(m, width);
    putU16(m, height);
    write(m);
  }
  void key(std::uint32_t keysym, bool down) {
    std::string m = {4, static_cast<char>(down ? 1 : 0), 0, 0};
    putU32(m, keysym);
    write(m);
  }
  void qemuKey(std::uint32_t keysym, std::uint32_t keycode, bool down) {
    std::string m = {(char)255, 0};
    putU16(m, down ? 1 : 0);
    putU32(m, keysym);
    putU32(m, keycode);
    write(m);
  }
  void pointer(std::uint8_t mask, std::uint16_t x, std::uint16_t y) {
    std::string m = {5, static_cast<char>(mask)};
    putU16(m, x);
    putU16(m, y);
    write(m);
  }
  void cutText(const std::string& latin1) {
    std::string m = {6, 0, 0, 0};
    putU32(m, static_cast<std::uint32_t>(latin1.size()));
    write(m + latin1);
  }
  void setDesktopSize(std::uint16_t w, std::uint16_t h) {
    std::string m = {(char)251, 0};
    putU16(m, w);
    putU16(m, h);
    m += std::string{1, 0};
    putU32(m, 0);
    putU16(m, 0);
    putU16(m, 0);
    putU16(m, w);
    putU16(m, h);
    putU32(m, 0);
    write(m);
  }

  struct Message {
    int type = -1;  // 0 update, 2 bell, 3 cut text; -1 timeout.
    int rects = 0;
    int pixel_rects = 0;
    bool non_black = false;                           // An update drew at least one non-black pixel.
    std::optional<std::int32_t> desktop_size_status;  // From an ExtendedDesktopSize rectangle.
    std::uint16_t desktop_size_reason = 0;
    bool cursor = false;
    std::string cut_text;
  };

  // Reads one server message; type -1 when none arrives in time.
  Message readMessage(int timeout_ms) {
    Message msg;
    if (!waitReadable(timeout_ms)) return msg;
    msg.type = readU8(timeout_ms);
    if (msg.type == 0) {
      readU8(timeout_ms);
      msg.rects = readU16(timeout_ms);
      for (int i = 0; i < msg.rects; ++i) readRect(msg, timeout_ms);
    } else if (msg.type == 3) {
      readString(3, timeout_ms);
      msg.cut_text = readString(readU32(timeout_ms), timeout_ms);
    } else if (msg.type != 2) {
      throw std::runtime_error("unexpected server message " + std::to_string(msg.type));
    }
    return msg;
  }

  std::uint32_t pixel(int x, int y) const {
    const std::uint8_t* p = frame.data() + (std::size_t(y) * width + x) * 4;
    return p[0] | (p[1] << 8) | (p[2] << 16);
  }

  std::uint16_t width = 0, height = 0;
  std::string name;
  std::vector<std::uint8_t> frame;  // RGBX.
  // Off: updates are decoded (to see that they draw something) but no copy of the desktop is kept,
  // so that a benchmark measures the backend's memory and not its viewers'.
  bool keep_pixels = true;

 private:
  static void putU16(std::string& s, std::uint16_t v) {
    s.push_back(static_cast<char>(v >> 8));
    s.push_back(static_cast<char>(v & 0xFF));
  }
  static void putU32(std::string& s, std::uint32_t v) {
    for (int i = 24; i >= 0; i -= 8) s.push_back(static_cast<char>((v >> i) & 0xFF));
  }
  void write(const std::string& s) {
    std::size_t done = 0;
    while (done < s.size()) {
      const ssize_t n = ::send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("write to the backend failed");
      done += static_cast<std::size_t>(n);
    }
  }
  bool waitReadable(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
  }
  std::string readString(std::size_t n, int timeout_ms) {
    std::string s(n, '\0');
    std::size_t done = 0;
    while (done < n) {
      if (!waitReadable(timeout_ms)) throw std::runtime_error("read timed out");
      const ssize_t k = ::recv(fd_, s.data() + done, n - done, 0);
      if (k <= 0) throw std::runtime_error("the backend closed the connection");
      done += static_cast<std::size_t>(k);
    }
    return s;
  }
  std::uint8_t readU8(int t) { return static_cast<std::uint8_t>(readString(1, t)[0]); }
  std::uint16_t readU16(int t) {
    auto s = readString(2, t);
    return static_cast<std::uint16_t>((std::uint8_t(s[0]) << 8) | std::uint8_t(s[1]));
  }
  std::uint32_t readU32(int t) {
    auto s = readString(4, t);
    return (std::uint32_t(std::uint8_t(s[0])) << 24) | (std::uint32_t(std::uint8_t(s[1])) << 16) |
           (std::uint32_t(std::uint8_t(s[2])) << 8) | std::uint8_t(s[3]);
  }

  void putPixel(Message& msg, int x, int y, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    if (r || g || b) msg.non_black = true;
    if (!keep_pixels || x >= width || y >= height) return;
    std::uint8_t* p = frame.data() + (std::size_t(y) * width + x) * 4;
    p[0] = r;
    p[1] = g;
    p[2] = b;
  }

  void readRect(Message& msg, int t) {
    const int x = readU16(t), y = readU16(t), w = readU16(t), h = readU16(t);
    const auto enc = static_cast<std::int32_t>(readU32(t));
    if (enc == 0) {
      ++msg.pixel_rects;
      const std::string data = readString(std::size_t(w) * h * 4, t);
      for (int j = 0; j < h; ++j)
        for (int i = 0; i < w; ++i) {
          const char* p = data.data() + (std::size_t(j) * w + i) * 4;
          putPixel(msg, x + i, y + j, p[0], p[1], p[2]);
        }
    } else if (enc == 16) {
      ++msg.pixel_rects;
      readZrle(msg, x, y, w, h, t);
    } else if (enc == -308) {
      const std::uint8_t screens = readU8(t);
      readString(3 + 16 * std::size_t{screens}, t);
      msg.desktop_size_status = y;
      msg.desktop_size_reason = static_cast<std::uint16_t>(x);
      resize(w, h);
    } else if (enc == -223) {
      resize(w, h);
    } else if (enc == -239) {
      msg.cursor = true;
      readString(std::size_t(w) * h * 4 + std::size_t((w + 7) / 8) * h, t);
    } else if (enc == -258 || enc == -316) {
      // Acknowledgements carry no data.
    } else {
      throw std::runtime_error("unexpected encoding " + std::to_string(enc));
    }
  }

  void resize(std::uint16_t w, std::uint16_t h) {
    width = w;
    height = h;
    if (keep_pixels) frame.assign(std::size_t{w} * h * 4, 0);
  }

  void readZrle(Message& msg, int x, int y, int w, int h, int t) {
    const std::string compressed = readString(readU32(t), t);
    std::string raw;
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
    zs_.avail_in = static_cast<uInt>(compressed.size());
    char chunk[65536];
    do {
      zs_.next_out = reinterpret_cast<Bytef*>(chunk);
      zs_.avail_out = sizeof(chunk);
      const int rc = inflate(&zs_, Z_SYNC_FLUSH);
      if (rc != Z_OK && rc != Z_BUF_ERROR) throw std::runtime_error("inflate failed");
      raw.append(chunk, sizeof(chunk) - zs_.avail_out);
    } while (zs_.avail_in > 0 || zs_.avail_out == 0);
    std::size_t pos = 0;
    auto cpixel = [&](std::uint8_t* rgb) {
      std::memcpy(rgb, raw.data() + pos, 3);
      pos += 3;
    };
    for (int ty = y; ty < y + h; ty += 64) {
      for (int tx = x; tx < x + w; tx += 64) {
        const int tw = std::min(64, x + w - tx), th = std::min(64, y + h - ty);
        const auto sub = static_cast<std::uint8_t>(raw.at(pos++));
        if (sub == 0) {
          for (int j = 0; j < th; ++j)
            for (int i = 0; i < tw; ++i) {
              std::uint8_t c[3];
              cpixel(c);
              putPixel(msg, tx + i, ty + j, c[0], c[1], c[2]);
            }
        } else if (sub == 1) {
          std::uint8_t c[3];
          cpixel(c);
          for (int j = 0; j < th; ++j)
            for (int i = 0; i < tw; ++i) putPixel(msg, tx + i, ty + j, c[0], c[1], c[2]);
        } else if (sub <= 16) {
          std::uint8_t pal[16][3];
          for (int k = 0; k < sub; ++k) cpixel(pal[k]);
          const int bits = sub <= 2 ? 1 : sub <= 4 ? 2 : 4;
          for (int j = 0; j < th; ++j) {
            int used = 8;
            std::uint8_t byte = 0;
            for (int i = 0; i < tw; ++i) {
              if (used == 8) {
                byte = static_cast<std::uint8_t>(raw.at(pos++));
                used = 0;
              }
              const int index = (byte >> (8 - bits - used)) & ((1 << bits) - 1);
              used += bits;
              putPixel(msg, tx + i, ty + j, pal[index][0], pal[index][1], pal[index][2]);
            }
          }
        } else {
          throw std::runtime_error("unexpected ZRLE subencoding " + std::to_string(sub));
        }
      }
    }
  }

  int fd_;
  z_stream zs_{};
};

}  // namespace kasm::rdp::testing
