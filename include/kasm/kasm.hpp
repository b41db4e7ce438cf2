#pragma once

// The umbrella header of the kasm library core.
#include "kasm/core/clock.hpp"
#include "kasm/core/error.hpp"
#include "kasm/core/id.hpp"
#include "kasm/core/random.hpp"
#include "kasm/core/resources.hpp"
#include "kasm/core/result.hpp"
#include "kasm/model/json.hpp"
#include "kasm/model/model.hpp"
#include "kasm/spi/store.hpp"
#include "kasm/store/memory_store.hpp"
#include "kasm/store/repository.hpp"
#include "kasm/version.hpp"
