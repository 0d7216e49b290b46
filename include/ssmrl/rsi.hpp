// Self-improvement: the statistics its decisions rest on, how a proposal is judged and watched, and
// function-preserving growth of cells and policies, and normalisation switched on or off.
#pragma once

#include "ssmrl/rsi/decision.hpp"
#include "ssmrl/rsi/net2net.hpp"
#include "ssmrl/rsi/normalisation.hpp"
#include "ssmrl/rsi/policy_growth.hpp"
#include "ssmrl/rsi/statistics.hpp"
