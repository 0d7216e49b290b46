// The named configurations of `ssmrl train`: a policy, a task distribution and the meta-training
// options of each. A configuration's name is stored in its checkpoints, so that `eval` and `adapt`
// rebuild the same policy.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <ssmrl/ssmrl.hpp>

namespace ssmrl::cli {

using NavigationMlpPolicy = policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>>;
using NavigationSsmPolicy = policy::RecurrentPolicy<nn::DiagSsmCell<float>, policy::GaussianHead<float>>;
using CartPoleSsmPolicy = policy::RecurrentPolicy<nn::DiagSsmCell<float>, policy::CategoricalHead<float>>;

//! Meta-training on a task distribution (MAML, or multi-task pretraining with no inner step).
template <class PolicyT, class TasksT>
struct MetaConfig {
  using Policy = PolicyT;
  using Tasks = TasksT;
  std::string name;
  std::string summary;
  PolicyT (*make_policy)(std::uint64_t seed);
  meta::MetaTrainerOptions options;
  long outer_steps;
};

namespace configs {

inline NavigationMlpPolicy navigation_mlp(std::uint64_t seed) {
  return {nn::MlpCell<float>({.input = 2, .hidden = {64, 64}}), policy::GaussianHead<float>({.input = 64, .actions = 2}),
          {}, {}, seed};
}
inline NavigationSsmPolicy navigation_ssm(std::uint64_t seed) {
  return {nn::DiagSsmCell<float>({.input = 2, .state = 64, .output = 64}),
          policy::GaussianHead<float>({.input = 64, .actions = 2}), {}, {}, seed};
}
inline CartPoleSsmPolicy cartpole_ssm(std::uint64_t seed) {
  return {nn::DiagSsmCell<float>({.input = 4, .state = 32, .output = 32}), policy::CategoricalHead<float>(32, 2), {}, {},
          seed};
}

// The MAML paper's 2D navigation protocol.
inline meta::MetaTrainerOptions navigation_protocol() {
  return {.meta_batch = 20, .trajectories = 20, .horizon = 100, .gamma = 0.99, .gae_lambda = 1.0, .inner_lr = 0.1,
          .inner_steps = 1, .trpo = true, .max_kl = 0.01};
}

}  // namespace configs

//! Calls `f` with the configuration named `name` and returns true; false when there is none.
template <class F>
bool visit_config(const std::string& name, F&& f) {
  using Nav = env::Navigation2DTasks;
  if (name == "navigation2d") {
    f(MetaConfig<NavigationMlpPolicy, Nav>{name, "2D navigation, MLP policy (2x64 tanh), second-order MAML, TRPO",
                                          configs::navigation_mlp, configs::navigation_protocol(), 500});
  } else if (name == "navigation2d-ssm") {
    f(MetaConfig<NavigationSsmPolicy, Nav>{name, "2D navigation, diagonal SSM policy (64 states), second-order MAML, TRPO",
                                          configs::navigation_ssm, configs::navigation_protocol(), 500});
  } else if (name == "navigation2d-pretrained") {
    auto options = configs::navigation_protocol();
    options.inner_steps = 0;
    f(MetaConfig<NavigationMlpPolicy, Nav>{name, "2D navigation, MLP policy trained on all goals without adaptation "
                                                 "(the MAML paper's pretrained baseline), TRPO",
                                          configs::navigation_mlp, options, 500});
  } else if (name == "cartpole-varied") {
    auto options = configs::navigation_protocol();
    options.horizon = 200;
    f(MetaConfig<CartPoleSsmPolicy, env::CartPoleTasks>{
        name, "CartPole with varied physics (200-step episodes), diagonal SSM policy, second-order MAML, TRPO",
        configs::cartpole_ssm, options, 200});
  } else {
    return false;
  }
  return true;
}

inline std::vector<std::string> config_names() {
  return {"navigation2d", "navigation2d-ssm", "navigation2d-pretrained", "cartpole-varied"};
}

}  // namespace ssmrl::cli
