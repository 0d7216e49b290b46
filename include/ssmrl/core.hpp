// ssmrl without its file formats: autodiff, models, policies, environments, RL, MAML and test-time
// adaptation. It needs Eigen only (no nlohmann-json); <ssmrl/io.hpp> adds checkpoints, .npz, CSV,
// SVG and PyTorch weights, and <ssmrl/ssmrl.hpp> is both.
#pragma once

#include "ssmrl/version.hpp"

#include "ssmrl/core/backend.hpp"
#include "ssmrl/core/error.hpp"
#include "ssmrl/core/workers.hpp"

#include "ssmrl/autodiff.hpp"
#include "ssmrl/control.hpp"
#include "ssmrl/nn.hpp"
#include "ssmrl/optim/adam.hpp"
#include "ssmrl/optim/clip.hpp"
#include "ssmrl/optim/trpo.hpp"
#include "ssmrl/policy/concepts.hpp"
#include "ssmrl/policy/heads.hpp"
#include "ssmrl/policy/recurrent_policy.hpp"
#include "ssmrl/rl.hpp"

#include "ssmrl/env.hpp"
#include "ssmrl/meta.hpp"
#include "ssmrl/adapt.hpp"
