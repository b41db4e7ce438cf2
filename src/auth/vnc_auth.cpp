#include "auth/vnc_auth.hpp"

#define OPENSSL_SUPPRESS_DEPRECATED  // VncAuth is single DES, which only the low-level API offers.
#include <openssl/crypto.h>
#include <openssl/des.h>

#include <cstring>

namespace kasm::auth::detail {

std::array<unsigned char, 16> vncAuthResponse(std::string_view password, const unsigned char (&challenge)[16]) {
  unsigned char key[8] = {};
  for (std::size_t i = 0; i < 8 && i < password.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(password[i]), r = 0;
    for (int b = 0; b < 8; ++b) r = static_cast<unsigned char>(r | (((c >> b) & 1) << (7 - b)));
    key[i] = r;
  }
  DES_key_schedule schedule;
  DES_set_key_unchecked(reinterpret_cast<const_DES_cblock*>(key), &schedule);
  std::array<unsigned char, 16> out{};
  for (int block = 0; block < 2; ++block) {
    DES_cblock in;
    std::memcpy(in, challenge + 8 * block, 8);
    DES_cblock enc;
    DES_ecb_encrypt(&in, &enc, &schedule, DES_ENCRYPT);
    std::memcpy(out.data() + 8 * block, enc, 8);
  }
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(&schedule, sizeof schedule);
  return out;
}

}  // namespace kasm::auth::detail
