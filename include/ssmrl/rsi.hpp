// Self-improvement: the statistics its decisions rest on and function-preserving growth of cells.
#pragma once

#include "ssmrl/rsi/net2net.hpp"
#include "ssmrl/rsi/statistics.hpp"
