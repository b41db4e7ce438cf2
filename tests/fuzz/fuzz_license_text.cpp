// Fuzzes the licence text format: what an operator pastes (include/kasm/license/text.hpp) and the
// strict armour helpers behind it (src/license/armor.hpp).
//
// Input: [mode][rest]. The verifying key is fixed (from a fixed seed), so the seed corpus holds real
// licences and activation keys signed with it.
//   0: `rest` is pasted text, read as a licence and as an activation key. Accepted only when it
//      carries a good signature; then writing the document again reads back equal.
//   1, 2: `rest` is a licence (1) or activation key (2) payload, signed with the key and armoured,
//      which reaches the payload parser behind the signature. Parsing is strict and Ed25519 is
//      deterministic, so what parses must be written back to exactly the same text.
//   3: the armour helpers on `rest`: canonical base64 re-encodes to the same text, dearmoured bytes
//      armour and dearmour back to themselves, a time that parses formats back to itself.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "kasm/license/text.hpp"
#include "license/armor.hpp"

namespace {

using namespace kasm::license;

// The vendor key of the seed corpus. Not secret: it only signs fuzz inputs.
const SigningKey& vendorKey() {
  static const SigningKey key = [] {
    std::array<std::uint8_t, 32> seed{};
    for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<std::uint8_t>(7 * i + 1);
    return SigningKey::fromSeed(seed).value();
  }();
  return key;
}

std::string signAndArmor(std::string_view label, std::string_view payload) {
  const auto sig = vendorKey().sign(std::string(label) + "\n" + std::string(payload));
  FUZZ_CHECK(sig.ok());
  return detail::armor(label, std::string(payload) + sig.value());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::vector<VerifyingKey> keys{vendorKey().verifyingKey()};

  switch (data[0] % 4) {
    case 0: {
      if (auto doc = readLicense(rest, keys); doc.ok()) {
        const auto again = writeLicense(doc.value(), vendorKey());
        FUZZ_CHECK(again.ok());
        const auto back = readLicense(again.value(), keys);
        FUZZ_CHECK(back.ok() && back.value() == doc.value());
      }
      if (auto key = readActivationKey(rest, keys); key.ok()) {
        const auto again = writeActivationKey(key.value(), vendorKey());
        FUZZ_CHECK(again.ok());
        const auto back = readActivationKey(again.value(), keys);
        FUZZ_CHECK(back.ok() && back.value() == key.value());
      }
      break;
    }
    case 1: {
      const std::string text = signAndArmor(kLicenseLabel, rest);
      if (auto doc = readLicense(text, keys); doc.ok()) {
        const auto again = writeLicense(doc.value(), vendorKey());
        FUZZ_CHECK(again.ok() && again.value() == text);
      }
      FUZZ_CHECK(!readActivationKey(text, keys).ok());  // The label says which kind it is.
      break;
    }
    case 2: {
      const std::string text = signAndArmor(kActivationKeyLabel, rest);
      if (auto key = readActivationKey(text, keys); key.ok()) {
        const auto again = writeActivationKey(key.value(), vendorKey());
        FUZZ_CHECK(again.ok() && again.value() == text);
      }
      FUZZ_CHECK(!readLicense(text, keys).ok());
      break;
    }
    default: {
      if (auto bytes = detail::base64Decode(rest); bytes.ok()) FUZZ_CHECK(detail::base64Encode(bytes.value()) == rest);
      if (auto bytes = detail::dearmor(rest, kLicenseLabel, "license"); bytes.ok()) {
        const auto back = detail::dearmor(detail::armor(kLicenseLabel, bytes.value()), kLicenseLabel, "license");
        FUZZ_CHECK(back.ok() && back.value() == bytes.value());
      }
      if (auto t = detail::parseTime(rest, "time"); t.ok()) FUZZ_CHECK(detail::formatTime(t.value()) == rest);
      break;
    }
  }
  return 0;
}
