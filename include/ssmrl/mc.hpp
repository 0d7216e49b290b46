// Meta-cognitive actions: the McAction registry, its components and the two-pass MC policy (their
// checkpoint description, which needs the I/O, is <ssmrl/mc/checkpoint.hpp>, in <ssmrl/ssmrl.hpp>).
#pragma once

#include "ssmrl/mc/effects.hpp"
#include "ssmrl/mc/focus.hpp"
#include "ssmrl/mc/mc_policy.hpp"
#include "ssmrl/mc/registry.hpp"
#include "ssmrl/mc/state_actions.hpp"
#include "ssmrl/mc/timing.hpp"
