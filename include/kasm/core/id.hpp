#pragma once

#include <compare>
#include <functional>
#include <string>
#include <string_view>

#include "kasm/core/result.hpp"

namespace kasm {

// Generates a new identifier: 32 lowercase hex characters, 128 bits from the OS CSPRNG (ids such as
// session ids act as capabilities, so they must not be predictable), the shape Kasm uses.
std::string generateIdString();

// True when `s` is a well-formed identifier: 1..64 characters of [A-Za-z0-9_.-].
bool isValidIdString(std::string_view s) noexcept;

// A typed identifier so a SessionId cannot be passed where an AgentId is expected.
template <class Tag>
class Id {
 public:
  Id() = default;
  explicit Id(std::string value) : value_(std::move(value)) {}

  static Id generate() { return Id(generateIdString()); }
  // Parses an id coming from outside (API, files); InvalidArgument names `field`.
  static Result<Id> parse(std::string_view s, std::string_view field = "id") {
    if (!isValidIdString(s)) {
      return invalidArgument(std::string(field) + ": '" + std::string(s.substr(0, 80)) +
                             "' is not a valid id (1-64 characters of letters, digits, '_', '.', '-')");
    }
    return Id(std::string(s));
  }

  const std::string& str() const noexcept { return value_; }
  bool empty() const noexcept { return value_.empty(); }

  friend auto operator<=>(const Id&, const Id&) = default;
  friend bool operator==(const Id&, const Id&) = default;

 private:
  std::string value_;
};

using WorkspaceId = Id<struct WorkspaceTag>;
using SessionId = Id<struct SessionTag>;
using AgentId = Id<struct AgentTag>;
using ZoneId = Id<struct ZoneTag>;
using UserId = Id<struct UserTag>;
using GroupId = Id<struct GroupTag>;
using ApiKeyId = Id<struct ApiKeyTag>;
using ServerId = Id<struct ServerTag>;
using ServerPoolId = Id<struct ServerPoolTag>;
using StagingConfigId = Id<struct StagingConfigTag>;
using AutoscaleConfigId = Id<struct AutoscaleConfigTag>;
using AutoscaleVmId = Id<struct AutoscaleVmTag>;
using AutoscaleDecisionId = Id<struct AutoscaleDecisionTag>;
using ManagerNodeId = Id<struct ManagerNodeTag>;
using LicenseId = Id<struct LicenseTag>;

}  // namespace kasm

template <class Tag>
struct std::hash<kasm::Id<Tag>> {
  std::size_t operator()(const kasm::Id<Tag>& id) const noexcept { return std::hash<std::string>{}(id.str()); }
};
