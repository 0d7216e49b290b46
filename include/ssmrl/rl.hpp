// Reinforcement learning parts: rollouts, advantages, baselines and losses.
#pragma once

#include "ssmrl/rl/advantages.hpp"
#include "ssmrl/rl/linear_baseline.hpp"
#include "ssmrl/rl/losses.hpp"
#include "ssmrl/rl/rollout.hpp"
