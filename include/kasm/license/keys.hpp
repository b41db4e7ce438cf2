#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "kasm/core/result.hpp"

namespace kasm::license {

// An Ed25519 public key that verifies activation keys and licences. An integrator ships the public
// half of their own signing key with their product and passes it in LicensePolicy::verifying_keys.
// A plain value: cheap to copy, thread-safe to share.
class VerifyingKey {
 public:
  static constexpr std::size_t kSize = 32;

  // Reads a SubjectPublicKeyInfo PEM block ("-----BEGIN PUBLIC KEY-----"), as written by toPem() or by
  // `openssl pkey -pubout` on an Ed25519 key. InvalidArgument when the text is not an Ed25519 public key.
  static Result<VerifyingKey> fromPem(std::string_view pem);
  // Wraps 32 raw key bytes.
  static VerifyingKey fromRaw(const std::array<std::uint8_t, kSize>& raw) { return VerifyingKey(raw); }

  std::string toPem() const;
  const std::array<std::uint8_t, kSize>& raw() const noexcept { return raw_; }
  // The first 16 hex digits of SHA-256 over the raw key: a short name for logs and the UI.
  std::string fingerprint() const;

  // True when `signature` is this key's Ed25519 signature of `message`. Never throws; any malformed
  // input is simply false.
  bool verify(std::string_view message, std::string_view signature) const;

  friend bool operator==(const VerifyingKey&, const VerifyingKey&) = default;

 private:
  explicit VerifyingKey(const std::array<std::uint8_t, kSize>& raw) : raw_(raw) {}
  std::array<std::uint8_t, kSize> raw_{};
};

// An Ed25519 private key: the vendor's secret that signs activation keys and licences. It belongs
// on the vendor's side (the kasm-license tool); an installation never needs it.
class SigningKey {
 public:
  // A fresh key from OpenSSL's CSPRNG. Internal when the random generator fails.
  static Result<SigningKey> generate();
  // Reads an unencrypted PKCS#8 PEM block ("-----BEGIN PRIVATE KEY-----"), as written by toPem() or
  // by `openssl genpkey -algorithm ed25519`. InvalidArgument when it is not an Ed25519 private key.
  static Result<SigningKey> fromPem(std::string_view pem);
  // From the 32-byte Ed25519 private key (the seed); the public half is derived.
  static Result<SigningKey> fromSeed(const std::array<std::uint8_t, 32>& seed);

  // Unencrypted PKCS#8 PEM: protect the file like any secret.
  std::string toPem() const;
  const VerifyingKey& verifyingKey() const noexcept { return public_; }

  // The 64-byte Ed25519 signature of `message`. Internal only when OpenSSL fails.
  Result<std::string> sign(std::string_view message) const;

 private:
  SigningKey(const std::array<std::uint8_t, 32>& seed, VerifyingKey pub) : seed_(seed), public_(pub) {}
  std::array<std::uint8_t, 32> seed_{};
  VerifyingKey public_;
};

}  // namespace kasm::license
