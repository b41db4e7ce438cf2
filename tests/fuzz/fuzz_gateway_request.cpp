// Fuzzes the desktop gateway's request line (include/kasm/gateway/gateway.hpp), the first thing
// kasm-gateway reads from anyone who connects to it.
//
// Input: [position][mask][text]. The text, opened as a request line, must never open (it is not
// sealed under the key). A genuine request carrying the text as its user name must open to exactly
// that request, and with one byte changed (at the input's position, by its non-zero mask) must not.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "kasm/gateway/gateway.hpp"

using namespace kasm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static const std::string key(40, 'g');
  const auto now = fromUnixMillis(1'700'000'000'000);
  const std::string text(reinterpret_cast<const char*>(data) + 2, size - 2);
  FUZZ_CHECK(!gateway::openRequest(key, text, now).ok());

  spi::GatewayRequest r;
  r.protocol = "rdp";
  r.host = "10.1.2.3";
  r.port = 3389;
  r.username = text;
  r.password = "pw";
  auto line = gateway::sealRequest(key, r, now);
  FUZZ_CHECK(line.ok());
  auto opened = gateway::openRequest(key, *line, now);
  // Text that is not valid UTF-8 may not survive JSON; everything else round-trips exactly.
  if (opened.ok()) {
    FUZZ_CHECK(opened->host == r.host && opened->port == r.port && opened->password == r.password);
  }
  const std::string body = line->substr(0, line->size() - 1);  // Without the newline.
  FUZZ_CHECK(!gateway::openRequest(key, fuzz::flipByte(body, data), now).ok());
  return 0;
}
