// Fuzzes the web terminal's framing (src/backends/ssh/ssh_frames.hpp), which the SSH gateway reads
// from whatever the browser sends through the proxy.
//
// Input: [split][bytes]. The bytes are fed to one FrameReader whole and to another in pieces of
// (split % 7 + 1) bytes: both must yield the same frames and the same verdict, never a frame over
// the payload bound or of a type a client may not send, and every frame must encode back to the
// bytes it came from. (It found that the seed's zero-column resize passes the reader, as its
// contract says: the decoder refuses it.)

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/ssh/ssh_frames.hpp"
#include "fuzz_check.hpp"

using namespace kasm::ssh;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t piece = data[0] % 7 + 1;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  FrameReader whole;
  std::vector<Frame> a;
  const bool whole_ok = whole.feed(bytes, a).ok();

  FrameReader pieces;
  std::vector<Frame> b;
  bool pieces_ok = true;
  for (std::size_t at = 0; at < bytes.size() && pieces_ok; at += piece) {
    pieces_ok = pieces.feed(bytes.substr(at, piece), b).ok();
  }
  FUZZ_CHECK(whole_ok == pieces_ok);
  FUZZ_CHECK(a.size() == b.size());
  std::string reencoded;
  for (std::size_t i = 0; i < a.size(); ++i) {
    FUZZ_CHECK(a[i].type == b[i].type && a[i].payload == b[i].payload);
    FUZZ_CHECK(a[i].payload.size() <= kMaxFramePayload);
    appendFrame(reencoded, a[i].type, a[i].payload);
    if (a[i].type == FrameType::kResize) {
      // The reader checks a resize's size; its dimensions are the decoder's to refuse (zero).
      FUZZ_CHECK(a[i].payload.size() == 4);
      auto size = decodeResize(a[i].payload);
      if (size.ok()) FUZZ_CHECK(size->columns > 0 && size->rows > 0);
    }
  }
  // The frames read are exactly the start of the input.
  FUZZ_CHECK(bytes.substr(0, reencoded.size()) == reencoded);
  if (whole_ok && whole.atBoundary()) FUZZ_CHECK(reencoded.size() == bytes.size());
  return 0;
}
