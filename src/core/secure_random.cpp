#include "kasm/core/secure_random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kasm {

void secureRandomBytes(std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    // getrandom() returns at most 32 MiB per call and may be interrupted by a signal; loop.
    const ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // No weak fallback: a secret made from anything else would be a silent vulnerability.
    std::fprintf(stderr, "kasm: the operating system's random generator failed: %s\n", std::strerror(errno));
    std::abort();
  }
}

std::uint64_t secureRandomU64() {
  std::uint64_t v = 0;
  secureRandomBytes(std::as_writable_bytes(std::span(&v, 1)));
  return v;
}

}  // namespace kasm
