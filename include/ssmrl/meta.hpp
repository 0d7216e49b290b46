// Meta-learning: MAML.
#pragma once

#include "ssmrl/meta/maml.hpp"
#include "ssmrl/meta/trainer.hpp"
