#pragma once

// Private to the library: the strict building blocks of the licence text format (see
// kasm/license/text.hpp for the format itself).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"

namespace kasm::license::detail {

// Standard base64 with padding.
std::string base64Encode(std::string_view bytes);
// Canonical base64 only: length a multiple of 4, padding only at the end, unused bits zero. So one
// text decodes to one byte string and no two texts decode to the same bytes.
Result<std::string> base64Decode(std::string_view text);

// "-----BEGIN <label>-----\n" + base64 lines of 64 + "-----END <label>-----\n".
std::string armor(std::string_view label, std::string_view bytes);
// The inverse, strict (see text.hpp). `what` names the thing in messages ("license").
Result<std::string> dearmor(std::string_view text, std::string_view label, std::string_view what);

// The canonical payload: "key: value\n" per field, in order.
using Fields = std::vector<std::pair<std::string, std::string>>;
std::string writeFields(const Fields& fields);
// Splits a payload into fields and checks the keys are exactly `keys`, in order, and values hold no
// control characters. The version line is checked by the caller before.
Result<Fields> readFields(std::string_view payload, const std::vector<std::string_view>& keys, std::string_view what);

// "2025-01-31T12:00:00Z"; whole seconds, UTC.
std::string formatTime(TimePoint t);
Result<TimePoint> parseTime(std::string_view text, std::string_view field);
TimePoint truncateToSeconds(TimePoint t);

// Lowercase hex SHA-256.
std::string sha256Hex(std::string_view bytes);

}  // namespace kasm::license::detail
