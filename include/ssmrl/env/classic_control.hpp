// The classic-control environments of Gymnasium.
#pragma once

#include "ssmrl/env/acrobot.hpp"
#include "ssmrl/env/cartpole.hpp"
#include "ssmrl/env/environment.hpp"
#include "ssmrl/env/mountain_car.hpp"
#include "ssmrl/env/pendulum.hpp"
