// `ssmrl train --optimizer` and `--meta-optimizer`: the optimiser's state in a run's checkpoints
// (tensors optimizer.0, optimizer.1, ... and its step count), and the meta-optimizer that writes the
// learning rate and weight decay into the knobs' controller layer, its state in the metadata.
#pragma once

#include <charconv>
#include <cmath>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <ssmrl/ssmrl.hpp>
#include <ssmrl/metaopt/rl.hpp>

namespace ssmrl::cli {

inline constexpr const char* optimizer_prefix = "optimizer";

//! The optimiser's buffers as tensors optimizer.I of `file`, and its step count in the metadata.
template <class Scalar>
void add_optimizer_state(io::SafetensorsFile& file, const optim::AnyOptimizer<Scalar>& o) {
  file.metadata["ssmrl.optimizer_steps"] = std::to_string(o.steps());
  const auto buffers = o.buffers();
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    file.tensors.push_back(io::to_tensor(std::string(optimizer_prefix) + "." + std::to_string(i), buffers[i]));
  }
}

//! Restores what add_optimizer_state() wrote (a checkpoint without it leaves `o` as it is); the
//! buffers are checked against the optimiser's kind and the shapes of `params`, the values it steps,
//! before anything changes.
template <class Scalar>
void restore_optimizer_state(const io::SafetensorsFile& file, const std::string& origin,
                             optim::AnyOptimizer<Scalar>& o, const std::vector<ad::Matrix<Scalar>>& params) {
  const auto it = file.metadata.find("ssmrl.optimizer_steps");
  if (it == file.metadata.end()) return;
  long steps = -1;
  const auto [end, error] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), steps);
  SSMRL_REQUIRE(error == std::errc{} && end == it->second.data() + it->second.size() && steps >= 0, "ssmrl: '", origin,
                "': metadata ssmrl.optimizer_steps is '", it->second, "', not a count");
  std::map<long, const io::Tensor*> by_index;
  const std::string prefix = std::string(optimizer_prefix) + ".";
  for (const auto& t : file.tensors) {
    if (t.name.rfind(prefix, 0) != 0) continue;
    long i = -1;
    const auto digits = t.name.substr(prefix.size());
    const auto [stop, bad] = std::from_chars(digits.data(), digits.data() + digits.size(), i);
    SSMRL_REQUIRE(bad == std::errc{} && stop == digits.data() + digits.size() && i >= 0, "ssmrl: '", origin,
                  "': tensor ", t.name, " is not optimizer.INDEX");
    by_index[i] = &t;
  }
  std::vector<ad::Matrix<Scalar>> buffers;
  for (const auto& [i, t] : by_index) {
    SSMRL_REQUIRE(i == static_cast<long>(buffers.size()), "ssmrl: '", origin, "': optimiser buffer ",
                  buffers.size(), " is missing");
    SSMRL_REQUIRE(t->dtype == io::dtype_of<Scalar>() && (t->shape.size() == 1 || t->shape.size() == 2), "ssmrl: '",
                  origin, "': optimiser buffer ", t->name, " is not a ", io::dtype_name(io::dtype_of<Scalar>()),
                  " vector or matrix");
    const auto rows = static_cast<ad::Index>(t->shape[0]);
    const auto cols = t->shape.size() == 2 ? static_cast<ad::Index>(t->shape[1]) : ad::Index{1};
    buffers.push_back(io::to_matrix<Scalar>(*t, rows, cols));
  }
  auto next = o;
  next.set_buffers(std::move(buffers), steps, std::span<const ad::Matrix<Scalar>>(params));
  o = std::move(next);
}

//! The meta-optimizers of --meta-optimizer.
using CliMetaOptimizer =
    std::variant<metaopt::PlateauMetaOptimizer, metaopt::AdvancedPlateauMetaOptimizer, metaopt::RLMetaOptimizer>;

inline std::string meta_optimizer_names() { return "none, plateau, advanced-plateau, rl"; }

//! The meta-optimizer named `name` ("none": empty), deciding after every iteration, bounded to
//! [1e-7, 1] for the learning rate and [0, 1e-2] for the weight decay.
inline std::optional<CliMetaOptimizer> make_meta_optimizer(const std::string& name, std::uint64_t seed) {
  if (name.empty() || name == "none") return std::nullopt;
  if (name == "plateau") return CliMetaOptimizer(metaopt::PlateauMetaOptimizer());
  if (name == "advanced-plateau") return CliMetaOptimizer(metaopt::AdvancedPlateauMetaOptimizer());
  if (name == "rl") return CliMetaOptimizer(metaopt::RLMetaOptimizer({.seed = seed}));
  SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message("ssmrl train --meta-optimizer: '", name,
                                                                 "' is not one of ", meta_optimizer_names()));
}

}  // namespace ssmrl::cli
