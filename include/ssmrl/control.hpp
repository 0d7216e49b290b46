// Hyper-parameter control, the parts without file formats: typed knobs and their layered values,
// telemetry and its running normalisation. The override file and the audit log are in
// <ssmrl/control/override_file.hpp> (nlohmann-json; included by <ssmrl/ssmrl.hpp>).
#pragma once

#include "ssmrl/control/knobs.hpp"
#include "ssmrl/control/telemetry.hpp"
