// Ed25519 through OpenSSL 3. Keys are held as raw bytes so no OpenSSL type reaches a public header;
// an EVP_PKEY is made for each operation, which costs microseconds next to the signature itself.

#include "kasm/license/keys.hpp"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

#include "license/armor.hpp"

namespace kasm::license {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
using Bio = std::unique_ptr<BIO, BioFree>;

Pkey publicPkey(const std::array<std::uint8_t, VerifyingKey::kSize>& raw) {
  return Pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw.data(), raw.size()));
}
Pkey privatePkey(const std::array<std::uint8_t, 32>& seed) {
  return Pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

Bio readOnlyBio(std::string_view text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

Result<SigningKey> fromPkey(EVP_PKEY* pkey) {
  if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) return invalidArgument("private key: not an Ed25519 key");
  std::array<std::uint8_t, 32> seed{};
  std::size_t len = seed.size();
  if (EVP_PKEY_get_raw_private_key(pkey, seed.data(), &len) != 1 || len != seed.size()) {
    return invalidArgument("private key: cannot read the Ed25519 key bytes");
  }
  auto key = SigningKey::fromSeed(seed);
  OPENSSL_cleanse(seed.data(), seed.size());
  return key;
}

}  // namespace

Result<VerifyingKey> VerifyingKey::fromPem(std::string_view pem) {
  if (pem.size() > 64 * 1024) return invalidArgument("public key: the PEM text is too long");
  auto bio = readOnlyBio(pem);
  Pkey pkey(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!pkey) return invalidArgument("public key: not a PEM public key (expected -----BEGIN PUBLIC KEY-----)");
  if (EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) return invalidArgument("public key: not an Ed25519 key");
  std::array<std::uint8_t, kSize> raw{};
  std::size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(pkey.get(), raw.data(), &len) != 1 || len != raw.size()) {
    return invalidArgument("public key: cannot read the Ed25519 key bytes");
  }
  return VerifyingKey(raw);
}

std::string VerifyingKey::toPem() const {
  auto pkey = publicPkey(raw_);
  Bio bio(BIO_new(BIO_s_mem()));
  if (!pkey || !bio || PEM_write_bio_PUBKEY(bio.get(), pkey.get()) != 1) return {};
  return bioText(bio.get());
}

std::string VerifyingKey::fingerprint() const {
  return detail::sha256Hex(std::string_view(reinterpret_cast<const char*>(raw_.data()), raw_.size())).substr(0, 16);
}

bool VerifyingKey::verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != 64) return false;
  auto pkey = publicPkey(raw_);
  MdCtx ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

Result<SigningKey> SigningKey::fromSeed(const std::array<std::uint8_t, 32>& seed) {
  auto pkey = privatePkey(seed);
  std::array<std::uint8_t, VerifyingKey::kSize> pub{};
  std::size_t len = pub.size();
  if (!pkey || EVP_PKEY_get_raw_public_key(pkey.get(), pub.data(), &len) != 1 || len != pub.size()) {
    return internalError("OpenSSL cannot derive the Ed25519 public key");
  }
  return SigningKey(seed, VerifyingKey::fromRaw(pub));
}

Result<SigningKey> SigningKey::generate() {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr),
                                                                  &EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    return internalError("OpenSSL could not generate an Ed25519 key");
  }
  Pkey pkey(raw);
  return fromPkey(pkey.get());
}

Result<SigningKey> SigningKey::fromPem(std::string_view pem) {
  if (pem.size() > 64 * 1024) return invalidArgument("private key: the PEM text is too long");
  auto bio = readOnlyBio(pem);
  // A null passphrase callback with no user data: encrypted keys fail instead of prompting.
  Pkey pkey(bio ? PEM_read_bio_PrivateKey(
                      bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr)
                : nullptr);
  if (!pkey)
    return invalidArgument("private key: not an unencrypted PEM private key (expected -----BEGIN PRIVATE KEY-----)");
  return fromPkey(pkey.get());
}

std::string SigningKey::toPem() const {
  auto pkey = privatePkey(seed_);
  Bio bio(BIO_new(BIO_s_mem()));
  if (!pkey || !bio || PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  return bioText(bio.get());
}

Result<std::string> SigningKey::sign(std::string_view message) const {
  auto pkey = privatePkey(seed_);
  MdCtx ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) {
    return internalError("OpenSSL cannot set up an Ed25519 signature");
  }
  std::string sig(64, '\0');
  std::size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      len != 64) {
    return internalError("OpenSSL failed to sign");
  }
  return sig;
}

}  // namespace kasm::license
