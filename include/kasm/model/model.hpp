#pragma once

// The whole domain model.
#include "kasm/model/agent.hpp"
#include "kasm/model/autoscale.hpp"
#include "kasm/model/cluster.hpp"
#include "kasm/model/server.hpp"
#include "kasm/model/session.hpp"
#include "kasm/model/user.hpp"
#include "kasm/model/workspace.hpp"
#include "kasm/model/zone.hpp"
