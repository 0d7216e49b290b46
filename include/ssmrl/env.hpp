// Environments: Gymnasium's classic control, meta-RL task families, batches and the registry.
#pragma once

#include "ssmrl/env/classic_control.hpp"
#include "ssmrl/env/env_batch.hpp"
#include "ssmrl/env/memory.hpp"
#include "ssmrl/env/navigation.hpp"
#include "ssmrl/env/one_of.hpp"
#include "ssmrl/env/registry.hpp"
#include "ssmrl/env/tasks.hpp"
