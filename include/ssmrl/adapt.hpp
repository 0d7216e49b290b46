// Test-time adaptation: Adapter<Strategy, Policy> with guards, strategies and their registry,
// monitoring (MetaFeatures), and the ExperienceBuffer for replay.
#pragma once

#include "ssmrl/adapt/adapter.hpp"
#include "ssmrl/adapt/experience_buffer.hpp"
#include "ssmrl/adapt/meta_features.hpp"
#include "ssmrl/adapt/online.hpp"
#include "ssmrl/adapt/selection.hpp"
#include "ssmrl/adapt/strategies.hpp"
