// Fuzzes the VNC bridge's RFB client-message framer (src/net/rfb_filter.hpp), which reads what a
// viewer sends before any of it reaches the desktop.
//
// Input: [mode][seed: 3 bytes][client message stream]. The stream is filtered twice: once in one
// call with full access (the oracle: the messages it ends and the point where it fails, if it does),
// then split into reads at points derived from the seed, each read view-only or not as the mode
// says (0: full access, 1: view-only, 2+: chosen per read). Checked:
//   - full access forwards every byte it got, in order, up to the failure point (all of them when
//     there is none);
//   - the split run sees the same messages as the oracle and fails with the same error;
//   - a message is forwarded exactly when it is not input or its first byte came in a full-access
//     read, so view-only never lets input through, and the bytes forwarded are exactly those of the
//     forwarded messages (plus the pending part of the last one);
//   - `dropped` counts the input messages started in view-only reads.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "fuzz_check.hpp"
#include "net/rfb_filter.hpp"

namespace {

using kasm::net::detail::isRfbInput;
using kasm::net::detail::RfbClientFilter;
using kasm::net::detail::RfbClientMessage;
using kasm::net::detail::RfbFilterError;

// An invariant broke: say which, then abort so that libFuzzer keeps the input.
struct Read {
  std::size_t begin = 0;
  std::size_t end = 0;
  bool view_only = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const std::uint8_t mode = data[0];
  std::uint32_t state = (std::uint32_t{data[1]} << 16 | std::uint32_t{data[2]} << 8 | data[3]) | 1u;
  const std::vector<unsigned char> stream(data + 4, data + size);
  const std::size_t n = stream.size();

  // The oracle: one call, full access.
  std::vector<unsigned char> whole = stream;
  std::vector<RfbClientMessage> messages;
  RfbClientFilter oracle;
  const auto r = oracle.filter(whole, false, &messages);
  const std::size_t failed_at = r.kept;  // Full access keeps everything it consumed.
  FUZZ_CHECK(r.dropped == 0);
  FUZZ_CHECK(r.error != RfbFilterError::kNone || failed_at == n);
  FUZZ_CHECK(failed_at <= n &&
             std::equal(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(failed_at), whole.begin()));
  std::size_t complete = 0;
  for (const auto& m : messages) {
    FUZZ_CHECK(m.forwarded && m.length >= 1 && complete < n && stream[complete] == m.type);
    complete += m.length;
  }
  FUZZ_CHECK(complete <= failed_at);
  FUZZ_CHECK(oracle.atBoundary() == (r.error == RfbFilterError::kNone && complete == n));

  // The split run. xorshift32 on the seed picks read sizes (mostly small, sometimes large).
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  };
  std::vector<Read> reads;
  for (std::size_t at = 0; at < n;) {
    const std::uint32_t x = next();
    const std::size_t len = (x & 0x700) == 0 ? 1 + x % 4096 : 1 + x % 16;
    const bool view_only = mode == 0 ? false : mode == 1 ? true : ((x >> 20) & 1) != 0;
    reads.push_back({at, std::min(n, at + len), view_only});
    at = reads.back().end;
  }
  auto viewOnlyAt = [&reads](std::size_t offset) {
    for (const auto& read : reads) {
      if (offset >= read.begin && offset < read.end) return read.view_only;
    }
    std::abort();
  };

  RfbClientFilter filter;
  std::vector<RfbClientMessage> seen;
  std::vector<unsigned char> forwarded;
  std::uint64_t dropped = 0;
  RfbFilterError error = RfbFilterError::kNone;
  for (const auto& read : reads) {
    std::vector<unsigned char> buf(stream.begin() + static_cast<std::ptrdiff_t>(read.begin),
                                   stream.begin() + static_cast<std::ptrdiff_t>(read.end));
    const auto rr = filter.filter(buf, read.view_only, &seen);
    FUZZ_CHECK(rr.kept <= buf.size());
    forwarded.insert(forwarded.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(rr.kept));
    dropped += rr.dropped;
    if (rr.error != RfbFilterError::kNone) {
      FUZZ_CHECK(error == RfbFilterError::kNone || error == rr.error);
      error = rr.error;
      FUZZ_CHECK(filter.error() == rr.error);
    } else {
      FUZZ_CHECK(error == RfbFilterError::kNone);  // A failed filter stays failed.
    }
  }
  FUZZ_CHECK(error == r.error);
  FUZZ_CHECK(seen.size() == messages.size());

  // What must have been forwarded, message by message.
  std::vector<unsigned char> expected;
  std::uint64_t expected_dropped = 0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < seen.size(); ++i) {
    FUZZ_CHECK(seen[i].type == messages[i].type && seen[i].length == messages[i].length);
    const bool input = isRfbInput(seen[i].type);
    const bool forward = !(input && viewOnlyAt(at));
    FUZZ_CHECK(seen[i].forwarded == forward);
    FUZZ_CHECK(forward || input);  // View-only never drops a harmless message...
    if (!forward) ++expected_dropped;
    if (forward) expected.insert(expected.end(), stream.begin() + at, stream.begin() + at + seen[i].length);
    at += seen[i].length;
  }
  if (at < failed_at) {  // The pending (or failing) message, from its first byte.
    const bool forward = !(isRfbInput(stream[at]) && viewOnlyAt(at));
    if (!forward) ++expected_dropped;
    if (forward) expected.insert(expected.end(), stream.begin() + at, stream.begin() + failed_at);
  }
  FUZZ_CHECK(dropped == expected_dropped);
  FUZZ_CHECK(forwarded == expected);  // ...and never forwards a byte of a dropped one.
  return 0;
}
