// ssmrl: meta-reinforcement learning with state space model policies. The umbrella header.
#pragma once

#include "ssmrl/version.hpp"
#include "ssmrl/core/backend.hpp"
#include "ssmrl/core/error.hpp"
#include "ssmrl/core/workers.hpp"
#include "ssmrl/autodiff.hpp"
#include "ssmrl/nn.hpp"
#include "ssmrl/optim/adam.hpp"
#include "ssmrl/optim/clip.hpp"
#include "ssmrl/optim/trpo.hpp"
#include "ssmrl/policy/heads.hpp"
#include "ssmrl/policy/recurrent_policy.hpp"
#include "ssmrl/rl.hpp"
#include "ssmrl/io.hpp"
#include "ssmrl/env.hpp"
#include "ssmrl/meta.hpp"
#include "ssmrl/adapt.hpp"
