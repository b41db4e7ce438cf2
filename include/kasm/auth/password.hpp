#pragma once

#include <string>
#include <string_view>

#include "kasm/core/result.hpp"

namespace kasm::auth {

// scrypt cost parameters; the defaults take about 50 ms and 16 MiB per hash on the reference machine,
// which is what makes a stolen hash expensive to guess.
struct PasswordHashParams {
  int log2_n = 14;
  int r = 8;
  int p = 1;
};

// Hashes a password with scrypt and a 16-byte salt from the OS CSPRNG, in PHC form:
// "$scrypt$ln=14,r=8,p=1$<salt base64>$<hash base64>". InvalidArgument for an empty password or one
// longer than 1024 bytes.
Result<std::string> hashPassword(std::string_view password, PasswordHashParams params = {});

// True when `password` matches `phc`. False (never an error) for a malformed or foreign hash, so a
// corrupt row cannot be used to log in.
bool verifyPassword(std::string_view password, std::string_view phc);

}  // namespace kasm::auth
