// ssmrl: meta-reinforcement learning with state space model policies. The umbrella header: the
// library (<ssmrl/core.hpp>) and its file formats (<ssmrl/io.hpp>, which needs nlohmann-json).
#pragma once

#include "ssmrl/core.hpp"
#include "ssmrl/io.hpp"
#include "ssmrl/adapt/buffer_checkpoint.hpp"
#include "ssmrl/control/controller_file.hpp"
#include "ssmrl/control/meta_controller.hpp"
#include "ssmrl/control/override_file.hpp"
#include "ssmrl/control/pbt.hpp"
#include "ssmrl/control/pbt_toy.hpp"
#include "ssmrl/control/population.hpp"
#include "ssmrl/metaopt/plateau.hpp"
#include "ssmrl/metaopt/rl.hpp"
#include "ssmrl/metaopt/steering.hpp"
#include "ssmrl/optim/plateau.hpp"
#include "ssmrl/control/pretraining.hpp"
#include "ssmrl/meta/checkpoint.hpp"
#include "ssmrl/mc.hpp"
#include "ssmrl/mc/checkpoint.hpp"
#include "ssmrl/rsi.hpp"
#include "ssmrl/rsi/history.hpp"
#include "ssmrl/rsi/loop.hpp"
