// Models: parameters, layers, cells.
#pragma once

#include "ssmrl/nn/cells/cell.hpp"
#include "ssmrl/nn/cells/dense_ssm.hpp"
#include "ssmrl/nn/cells/diag_ssm.hpp"
#include "ssmrl/nn/cells/gru.hpp"
#include "ssmrl/nn/cells/mlp.hpp"
#include "ssmrl/nn/cells/mlp_ssm.hpp"
#include "ssmrl/nn/init.hpp"
#include "ssmrl/nn/layer_norm.hpp"
#include "ssmrl/nn/linear.hpp"
#include "ssmrl/nn/parameters.hpp"
