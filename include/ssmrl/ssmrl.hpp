// ssmrl: meta-reinforcement learning with state space model policies. The umbrella header.
#pragma once

#include "ssmrl/version.hpp"
#include "ssmrl/core/error.hpp"
#include "ssmrl/autodiff.hpp"
#include "ssmrl/nn/dense_ssm.hpp"
#include "ssmrl/rl/losses.hpp"
#include "ssmrl/optim/adam.hpp"
