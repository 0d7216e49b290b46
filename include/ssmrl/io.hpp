// Files: safetensors checkpoints with metadata, and .npz export.
#pragma once

#include "ssmrl/io/checkpoint.hpp"
#include "ssmrl/io/file.hpp"
#include "ssmrl/io/npz.hpp"
#include "ssmrl/io/safetensors.hpp"
