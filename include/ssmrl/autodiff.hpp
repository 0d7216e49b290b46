// The reverse-mode autodiff: tape, operations, gradients (first and higher order) and gradcheck.
#pragma once

#include "ssmrl/autodiff/arena.hpp"
#include "ssmrl/autodiff/grad.hpp"
#include "ssmrl/autodiff/gradcheck.hpp"
#include "ssmrl/autodiff/ops/basic.hpp"
#include "ssmrl/autodiff/ops/linalg.hpp"
#include "ssmrl/autodiff/ops/prob.hpp"
#include "ssmrl/autodiff/ops/reduce.hpp"
#include "ssmrl/autodiff/ops/scan.hpp"
#include "ssmrl/autodiff/ops/shape.hpp"
#include "ssmrl/autodiff/ops/unary.hpp"
#include "ssmrl/autodiff/tape.hpp"
