// Fuzzes the JSON codec of the model (include/kasm/model/json.hpp), which decodes request bodies of
// the REST API and every stored row. Input: [type][JSON]. What decodes must encode, decode back
// equal, and encode to the same text again.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "kasm/kasm.hpp"

namespace {

template <class T>
void roundTrip(std::string_view text) {
  auto value = kasm::fromJson<T>(text);
  if (!value.ok()) return;
  const std::string once = kasm::toJson(value.value());
  auto back = kasm::fromJson<T>(once);
  FUZZ_CHECK(back.ok());
  FUZZ_CHECK(back.value() == value.value());
  FUZZ_CHECK(kasm::toJson(back.value()) == once);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 14) {
    case 0: roundTrip<kasm::Workspace>(text); break;
    case 1: roundTrip<kasm::Session>(text); break;
    case 2: roundTrip<kasm::User>(text); break;
    case 3: roundTrip<kasm::Group>(text); break;
    case 4: roundTrip<kasm::Zone>(text); break;
    case 5: roundTrip<kasm::Agent>(text); break;
    case 6: roundTrip<kasm::ApiKey>(text); break;
    case 7: roundTrip<kasm::GroupSettings>(text); break;
    case 8: roundTrip<kasm::Server>(text); break;
    case 9: roundTrip<kasm::ServerPool>(text); break;
    case 10: roundTrip<kasm::StagingConfig>(text); break;
    case 11: roundTrip<kasm::AutoscaleConfig>(text); break;
    case 12: roundTrip<kasm::SessionPermission>(text); break;
    default: roundTrip<kasm::Setting>(text); break;
  }
  return 0;
}
