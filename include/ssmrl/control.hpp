// Hyper-parameter control, the parts without file formats: typed knobs and their layered values,
// telemetry and its running normalisation, MetaController<RNN>, PBT's decisions and the PBT toy.
// The override file, the audit log and controller files are in <ssmrl/control/override_file.hpp>
// and <ssmrl/control/controller_file.hpp> (nlohmann-json; included by <ssmrl/ssmrl.hpp>).
#pragma once

#include "ssmrl/control/knobs.hpp"
#include "ssmrl/control/telemetry.hpp"
#include "ssmrl/control/meta_controller.hpp"
#include "ssmrl/control/pbt.hpp"
#include "ssmrl/control/pbt_toy.hpp"
#include "ssmrl/control/pretraining.hpp"
