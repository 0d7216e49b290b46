// Meta-cognitive actions: the McAction registry, its components and the two-pass MC policy.
#pragma once

#include "ssmrl/mc/effects.hpp"
#include "ssmrl/mc/focus.hpp"
#include "ssmrl/mc/mc_policy.hpp"
#include "ssmrl/mc/registry.hpp"
#include "ssmrl/mc/state_actions.hpp"
