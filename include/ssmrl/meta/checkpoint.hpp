// A meta-trained policy and, for Meta-SGD, its learned inner rates in one checkpoint file (the rates
// as inner_lr.NAME beside each parameter NAME): saved atomically, loaded both or neither.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "ssmrl/io/checkpoint.hpp"
#include "ssmrl/meta/trainer.hpp"

namespace ssmrl::meta {

namespace detail {
// The rates seen as a model of their own, for io::load_checkpoint.
template <class Params, class Scalar>
struct RatesModel {
  using scalar_type = Scalar;
  Params rates;
  [[nodiscard]] const Params& params() const { return rates; }
  void set_params(Params p) { rates = std::move(p); }
  friend nlohmann::ordered_json describe(const RatesModel&) { return {{"type", "inner_lr"}}; }
};
inline constexpr const char* rates_prefix = "inner_lr";
}  // namespace detail

//! The checkpoint file of `policy` and, where given, Meta-SGD's rates, in memory.
template <class PolicyT>
io::SafetensorsFile checkpoint_file(const PolicyT& policy, const std::optional<typename PolicyT::Params>& inner_lrs,
                                    const std::map<std::string, std::string>& extra_metadata = {}) {
  using Scalar = typename PolicyT::scalar_type;
  auto file = io::checkpoint_file(policy, extra_metadata);
  if (inner_lrs) {
    nn::for_each_parameter(*inner_lrs, [&](std::string_view name, const ad::Matrix<Scalar>& m) {
      file.tensors.push_back(io::to_tensor(std::string(detail::rates_prefix) + "." + std::string(name), m));
    });
  }
  return file;
}

//! Saves `policy` and, where given, Meta-SGD's rates, atomically.
template <class PolicyT>
void save_checkpoint(const std::filesystem::path& path, const PolicyT& policy,
                     const std::optional<typename PolicyT::Params>& inner_lrs,
                     const std::map<std::string, std::string>& extra_metadata = {}) {
  io::write_safetensors(path, checkpoint_file(policy, inner_lrs, extra_metadata));
}

//! Loads what save_checkpoint() wrote, from a file already read (`origin` names it in errors).
//! `inner_lrs` set: the file must hold rates for every parameter, which are loaded into it; unset:
//! the file must hold none. Nothing changes unless all of it loads. Tensors PREFIX.* for
//! `other_prefixes` belong to something else (an optimiser's state, say).
template <class PolicyT>
std::map<std::string, std::string> load_checkpoint(const io::SafetensorsFile& file, const std::string& origin,
                                                   PolicyT& policy, std::optional<typename PolicyT::Params>& inner_lrs,
                                                   std::vector<std::string> other_prefixes = {}) {
  using Scalar = typename PolicyT::scalar_type;
  PolicyT next = policy;
  const bool want_rates = inner_lrs.has_value();
  if (want_rates) other_prefixes.emplace_back(detail::rates_prefix);
  auto metadata = io::load_checkpoint(file, origin, next, {.other_prefixes = other_prefixes});
  if (want_rates) {
    io::SafetensorsFile rates_file;
    const std::string prefix = std::string(detail::rates_prefix) + ".";
    for (const auto& t : file.tensors) {
      if (t.name.rfind(prefix, 0) != 0) continue;
      auto renamed = t;
      renamed.name = t.name.substr(prefix.size());
      rates_file.tensors.push_back(std::move(renamed));
    }
    detail::RatesModel<typename PolicyT::Params, Scalar> rates{*inner_lrs};
    io::load_checkpoint(rates_file, origin + " (Meta-SGD rates " + prefix + "*)", rates, {.check_model = false});
    inner_lrs = std::move(rates.rates);
  }
  policy = std::move(next);
  return metadata;
}

//! Loads what save_checkpoint() wrote at `path`, as above.
template <class PolicyT>
std::map<std::string, std::string> load_checkpoint(const std::filesystem::path& path, PolicyT& policy,
                                                   std::optional<typename PolicyT::Params>& inner_lrs) {
  return load_checkpoint(io::read_safetensors(path), path.string(), policy, inner_lrs);
}

//! Loads the checkpoint at `path` into `policy` (a policy of the checkpoint's shape) and returns its
//! adaptation curves on the held-out tasks of `tasks`: `steps` inner steps (with the checkpoint's
//! Meta-SGD rates where it has them, else at options.inner_lr), `runs` per task, drawn from `seed`.
template <policy::MetaPolicy PolicyT, env::TaskDistribution Tasks>
HeldOutEvaluation evaluate_checkpoint(const std::filesystem::path& path, PolicyT policy, Tasks tasks,
                                      MetaTrainerOptions options, int steps, std::uint64_t seed, int runs = 1) {
  const auto file = io::read_safetensors(path);
  bool has_rates = false;
  for (const auto& t : file.tensors) has_rates = has_rates || t.name.rfind(std::string(detail::rates_prefix) + ".", 0) == 0;
  if (!has_rates) {
    io::load_checkpoint(file, path.string(), policy);
    return evaluate_held_out(std::move(policy), std::move(tasks), options, steps, seed, runs);
  }
  std::optional<typename PolicyT::Params> rates = policy.params();
  load_checkpoint(file, path.string(), policy, rates);
  options.trpo = false;
  MetaTrainer<PolicyT, Tasks, Maml<AdamOuterStep, LearnedInnerRates>> trainer(std::move(policy), std::move(tasks), options);
  trainer.set_inner_lrs(std::move(*rates));
  return trainer.held_out_curves(steps, seed, runs);
}

}  // namespace ssmrl::meta
