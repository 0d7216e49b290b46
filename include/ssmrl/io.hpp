// Files: safetensors checkpoints with metadata, .npz export and import, tensors by name, PyTorch
// state_dicts, CSV tables, SVG line plots, durable
// atomic writes and directory locks.
#pragma once

#include "ssmrl/io/checkpoint.hpp"
#include "ssmrl/io/csv.hpp"
#include "ssmrl/io/file.hpp"
#include "ssmrl/io/lock.hpp"
#include "ssmrl/io/npz.hpp"
#include "ssmrl/io/safetensors.hpp"
#include "ssmrl/io/svg_plot.hpp"
#include "ssmrl/io/named_tensors.hpp"
#include "ssmrl/io/torch.hpp"
