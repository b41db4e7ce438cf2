#pragma once

// A picture of a VNC desktop, taken as any VNC client would see it: connect to the session's
// upstream, authenticate (None or VncAuth with the session's password), ask for one full frame in
// Raw encoding, and return it as a PNG scaled to `width` pixels wide (the height keeps the aspect).
// Blocking, bounded by `timeout` as a whole; for the developer API's get_kasm_screenshot.
//
// Errors: Unavailable (nothing answers, or the desktop closed the connection), PermissionDenied
// (the desktop refused the password), InvalidArgument (a bad upstream or width), DataLoss (the
// desktop spoke something that is not RFB).

#include <chrono>
#include <optional>
#include <string>

#include "kasm/core/result.hpp"

namespace kasm::net {

struct VncSnapshotOptions {
  std::string upstream;                 // "127.0.0.1:5901" or "[::1]:5901".
  std::optional<std::string> password;  // None: the desktop must offer security type None.
  int width = 300;                      // 1..4096; the PNG is at most as wide as the desktop.
  std::chrono::milliseconds timeout{10'000};
  // Through a relay (ProxyTarget::relay): connect there and write the preamble first.
  std::string relay;
  std::string relay_preamble;
};

Result<std::string> captureVncSnapshot(const VncSnapshotOptions& options);

// A PNG (8-bit RGB, no interlace) of `rgb` (width * height * 3 bytes, rows top to bottom). The
// image data is stored without compression: no zlib dependency, and thumbnails stay small.
std::string encodePngRgb(const unsigned char* rgb, int width, int height);

}  // namespace kasm::net
