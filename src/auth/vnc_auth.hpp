#pragma once

// Internal to the library: the one piece of cryptography of RFB's VNC Authentication (security
// type 2), shared by the snapshot client, the session proxy's VNC bridge and the connection checks
// of fixed VNC servers.

#include <array>
#include <string_view>

namespace kasm::auth::detail {

// The answer to a desktop's 16-byte challenge: the challenge encrypted with DES (two ECB blocks)
// under the password's first 8 bytes (shorter passwords padded with zeros), each key byte's bits
// reversed, a quirk of the original VNC implementation that every server follows.
std::array<unsigned char, 16> vncAuthResponse(std::string_view password, const unsigned char (&challenge)[16]);

}  // namespace kasm::auth::detail
