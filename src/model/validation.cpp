#include "model/validation.hpp"

#include "kasm/core/id.hpp"

namespace kasm::detail {

Result<void> requireNonEmpty(std::string_view value, std::string_view field) {
  if (value.empty()) return invalidArgument(std::string(field) + " must not be empty");
  return {};
}

Result<void> requireText(std::string_view value, std::string_view field, std::size_t max_len) {
  if (value.size() > max_len) {
    return invalidArgument(std::string(field) + " is too long (" + std::to_string(value.size()) + " bytes, at most " +
                           std::to_string(max_len) + ")");
  }
  for (unsigned char c : value) {
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      return invalidArgument(std::string(field) + " contains a control character");
    }
  }
  return {};
}

Result<void> requireId(std::string_view value, std::string_view field) {
  if (!isValidIdString(value)) {
    return invalidArgument(std::string(field) + ": '" + std::string(value.substr(0, 80)) +
                           "' is not a valid id (1-64 characters of letters, digits, '_', '.', '-')");
  }
  return {};
}

Result<void> requireOptionalId(std::string_view value, std::string_view field) {
  if (value.empty()) return {};
  return requireId(value, field);
}

Result<void> requireHttpUrl(std::string_view value, std::string_view field) {
  std::string_view rest;
  if (value.starts_with("https://"))
    rest = value.substr(8);
  else if (value.starts_with("http://"))
    rest = value.substr(7);
  else
    return invalidArgument(std::string(field) + " must start with http:// or https://");
  if (rest.empty() || rest.front() == '/') return invalidArgument(std::string(field) + " has no host");
  return requireText(value, field, 4096);
}

Result<void> requireFileName(std::string_view value, std::string_view field) {
  if (value.empty() || value.size() > 255) {
    return invalidArgument(std::string(field) + " must be 1 to 255 bytes long");
  }
  if (value == "." || value == "..") return invalidArgument(std::string(field) + " must not be . or ..");
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f) return invalidArgument(std::string(field) + " contains a control character");
    if (c == '/') return invalidArgument(std::string(field) + " must be a file name, without '/'");
  }
  return {};
}

Result<void> requireAbsolutePath(std::string_view value, std::string_view field) {
  if (value.empty() || value.front() != '/') {
    return invalidArgument(std::string(field) + " must be an absolute path, got '" + std::string(value.substr(0, 200)) +
                           "'");
  }
  if (value.find('\0') != std::string_view::npos) return invalidArgument(std::string(field) + " contains NUL");
  std::size_t pos = 0;
  while (pos <= value.size()) {
    std::size_t next = value.find('/', pos);
    if (next == std::string_view::npos) next = value.size();
    std::string_view seg = value.substr(pos, next - pos);
    if (seg == "." || seg == "..") {
      return invalidArgument(std::string(field) + " must not contain '.' or '..' segments");
    }
    pos = next + 1;
  }
  return requireText(value, field, 4096);
}

Result<void> requireLabelKey(std::string_view key, std::string_view field) {
  if (key.empty()) return invalidArgument(std::string(field) + " has an empty label key");
  return requireText(key, field, 256);
}

}  // namespace kasm::detail
