// Hyper-parameter control, what the trainers need: typed knobs and their layered values, telemetry
// and its running normalisation. The rest has headers of its own, all included by <ssmrl/ssmrl.hpp>
// (kept out of <ssmrl/core.hpp> to keep its compile time down): <ssmrl/control/meta_controller.hpp>,
// <ssmrl/control/pbt.hpp>, <ssmrl/control/pbt_toy.hpp>, <ssmrl/control/pretraining.hpp>, and with
// nlohmann-json <ssmrl/control/override_file.hpp> and <ssmrl/control/controller_file.hpp>.
#pragma once

#include "ssmrl/control/knobs.hpp"
#include "ssmrl/control/telemetry.hpp"
