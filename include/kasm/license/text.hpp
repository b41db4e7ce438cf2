#pragma once

// The armoured, signed text form of activation keys and licences: what people copy and paste.
//
//   -----BEGIN KASM LICENSE-----
//   <base64, 64 characters a line, the last line shorter>
//   -----END KASM LICENSE-----
//
// The base64 decodes to the canonical payload (UTF-8 "key: value" lines in a fixed order, the first
// one "kasm-license-version: 1") followed by a 64-byte Ed25519 signature over the armour label, a
// newline and the payload. Parsing is strict so that changing any byte of the armour is either a
// parse error or a signature failure: base64 must be canonical (padding, zero unused bits), every
// line but the last exactly 64 characters, the payload in canonical form (re-encoding it gives the
// same bytes). The only tolerance is for what copy and paste does: spaces, tabs and line breaks
// before the BEGIN line and after the END line are ignored, and a line may end in CR LF.

#include <span>
#include <string>
#include <string_view>

#include "kasm/core/result.hpp"
#include "kasm/license/document.hpp"
#include "kasm/license/keys.hpp"

namespace kasm::license {

inline constexpr std::string_view kLicenseLabel = "KASM LICENSE";
inline constexpr std::string_view kActivationKeyLabel = "KASM ACTIVATION KEY";

// Signs and armours. InvalidArgument when the document does not validate.
Result<std::string> writeLicense(const LicenseDocument& doc, const SigningKey& key);
Result<std::string> writeActivationKey(const ActivationKey& key_doc, const SigningKey& key);

// Parses, checks the signature against each of `keys` and returns the document. This checks the
// text only: binding to an installation and validity in time are the caller's (see Licensing).
// Errors, each with a sentence a person can act on:
//   InvalidArgument     not armoured text of the expected kind, damaged or truncated armour, a
//                       payload that is not canonical;
//   FailedPrecondition  a format version this build does not read;
//   Unauthenticated     the signature verifies with none of `keys` (altered, or another vendor's).
Result<LicenseDocument> readLicense(std::string_view text, std::span<const VerifyingKey> keys);
Result<ActivationKey> readActivationKey(std::string_view text, std::span<const VerifyingKey> keys);

// Vendor side, offline: binds an activation key to an installation, issued at `now` (truncated to
// whole seconds). FailedPrecondition when the activation key has expired; InvalidArgument for an
// installation id that is not a valid id.
Result<LicenseDocument> activate(const ActivationKey& key_doc, std::string_view installation_id, TimePoint now);

// A time as the text form writes it: "2025-01-31T12:00:00Z" (UTC, whole seconds).
std::string formatTime(TimePoint t);

}  // namespace kasm::license
