#pragma once

#include <string>
#include <string_view>

#include "kasm/core/result.hpp"

namespace kasm {

// JSON form of the model types (Workspace, Zone, Agent, Session, User, Group, ApiKey, Server,
// ServerPool, StagingConfig, AutoscaleConfig, AutoscaleVm, AutoscaleDecision, LicenseRecord, Setting). Field names are
// the member names; enums use their EnumNames; times are Unix milliseconds; durations are milliseconds. fromJson
// tolerates missing fields (defaults apply) and rejects wrong types and unknown enum names with InvalidArgument naming
// the field. It does not call validate().
template <class T>
std::string toJson(const T& value);
template <class T>
Result<T> fromJson(std::string_view json);

// JSON Schema (2020-12, as used by OpenAPI 3.1) of what toJson writes for T: an object with every
// field's type; optional fields also allow null. For API documents and response validation.
template <class T>
std::string jsonSchema();

}  // namespace kasm
