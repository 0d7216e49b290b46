// Reinforcement learning parts: rollouts, advantages, baselines, losses, and plain policy-gradient training.
#pragma once

#include "ssmrl/rl/advantages.hpp"
#include "ssmrl/rl/linear_baseline.hpp"
#include "ssmrl/rl/losses.hpp"
#include "ssmrl/rl/rollout.hpp"
#include "ssmrl/rl/trainer.hpp"
