#pragma once

#include <string>

#include "kasm/core/clock.hpp"
#include "kasm/core/result.hpp"
#include "kasm/spi/store.hpp"

namespace kasm::license {

// The id of this installation, which licences are bound to: read from the setting
// settings::kInstallationId, or created there on first use (32 hex characters from the OS CSPRNG).
// Every process sharing the store gets the same id: when two create it at once, the first insert
// wins and both return it. Errors are the store's (Unavailable, DataLoss).
Result<std::string> installationId(spi::Store& store, Clock& clock);

}  // namespace kasm::license
