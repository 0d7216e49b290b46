// The named configurations of `ssmrl train`: a policy, a task distribution and the meta-training
// options of each. A configuration's name is stored in its checkpoints, so that `eval` and `adapt`
// rebuild the same policy.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ssmrl/ssmrl.hpp>

namespace ssmrl::cli {

using NavigationMlpPolicy = policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>>;
using NavigationSsmPolicy = policy::RecurrentPolicy<nn::DiagSsmCell<float>, policy::GaussianHead<float>>;
using CartPoleSsmPolicy = policy::RecurrentPolicy<nn::DiagSsmCell<float>, policy::CategoricalHead<float>>;

//! Meta-training on a task distribution (MAML, or multi-task pretraining with no inner step).
template <class PolicyT, class TasksT, class AlgorithmT = meta::Maml<>>
struct MetaConfig {
  using Policy = PolicyT;
  using Tasks = TasksT;
  using Algorithm = AlgorithmT;
  std::string name;
  std::string summary;
  PolicyT (*make_policy)(std::uint64_t seed);
  meta::MetaTrainerOptions options;
  long outer_steps;
  //! Dynamics outside the task distribution for `ssmrl adapt --strategy`, where one is named.
  std::optional<typename TasksT::env_type> shifted{};
  std::string shift{};
};

//! Plain policy-gradient training on one environment, until the evaluation reaches `solved`.
template <class PolicyT, class EnvT>
struct PlainConfig {
  using Policy = PolicyT;
  using Env = EnvT;
  std::string name;
  std::string summary;
  PolicyT (*make_policy)(std::uint64_t seed);
  rl::TrainerOptions options;
  long outer_steps;               //!< updates at most (the learning rate decays linearly to 0 over them)
  double solved;                  //!< mean evaluation return that ends training (checked every 25 updates)
  policy::ActMode eval_mode;      //!< sampled actions (CartPole's threshold) or the mean (Pendulum's)
  EnvT shifted;                   //!< held-out dynamics for `ssmrl adapt`
  std::string shift;              //!< what differs in them
  int eval_episodes = 100;
  EnvT env{};                     //!< the environment trained and evaluated on
};

using CartPoleMlpPolicy = policy::RecurrentPolicy<nn::MlpCell<float>, policy::CategoricalHead<float>>;
// The actor-critics normalise their features (LayerNorm), whose affine parameters are what
// entropy-minimising test-time adaptation changes; Pendulum's std depends on the state, so that
// its entropy depends on what the policy sees.
using CartPoleActorCritic = policy::RecurrentPolicy<nn::MlpCell<float>, policy::CategoricalHead<float>,
                                                    nn::LayerNorm<float>, policy::ValueHead<float>>;
using PendulumGaussian = policy::GaussianHead<float, policy::GaussianStd::state_dependent>;
using PendulumActorCritic =
    policy::RecurrentPolicy<nn::MlpCell<float>, PendulumGaussian, nn::LayerNorm<float>, policy::ValueHead<float>>;

// Memory tasks with MC actions: a GRU actor-critic on Regime Switch or a POPGym task whose MC head may clear or
// perturb its state. The same configuration runs with MC actions off (--set mc_<action>=false for
// each: noop alone, the same compute).
using MemoryGru = policy::RecurrentPolicy<nn::GruCell<float>, policy::CategoricalHead<float>, nn::NoNorm<float>,
                                          policy::ValueHead<float>>;
using StateMcPolicy = mc::McPolicy<MemoryGru, mc::RecurrentStateActions<float>>;
// POPGym's memory tasks as one environment type, so that each is a configuration of one compiled
// trainer; observations are 4 values (Position-only CartPole's 2 are followed by zeros).
using PopgymTask = env::OneOf<env::PositionOnlyCartPole, env::RepeatPrevious>;
// Recent Majority's token observations with MC focus: the same GRU, whose input gains the share of
// tokens visible.
using FocusMcPolicy = mc::McPolicy<MemoryGru, mc::ObservationFocus<float>>;

namespace configs {

//! A GRU actor-critic of 64 on `inputs` observations and `actions` actions, with an MC head over the
//! recurrent-state actions (noop at first with probability 0.9).
inline StateMcPolicy memory_gru_mc(std::uint64_t seed, ad::Index inputs, ad::Index actions) {
  MemoryGru base(nn::GruCell<float>({.input = inputs, .hidden = 64}), policy::CategoricalHead<float>(64, actions), {},
                 policy::ValueHead<float>(64), seed);
  return {std::move(base),
          mc::McRegistry<mc::RecurrentStateActions<float>>(mc::RecurrentStateActions<float>({.seed = seed})), seed,
          {.noop_probability = 0.9}};
}

inline StateMcPolicy regime_switch_mc(std::uint64_t seed) { return memory_gru_mc(seed, 2, 2); }

//! The same design on a POPGym task of `actions` actions (4 observations, see PopgymTask).
template <int actions>
StateMcPolicy popgym_mc(std::uint64_t seed) {
  return memory_gru_mc(seed, 4, actions);
}

//! The GRU actor-critic of 64 on Recent Majority's 32 tokens of 3 features (and the share visible),
//! with an MC head over focus_short (the newest 15 tokens) and focus_long (30); noop at first with
//! probability 0.9.
inline FocusMcPolicy recent_majority_mc(std::uint64_t seed) {
  constexpr auto tokens = static_cast<ad::Index>(env::RecentMajority::tokens);
  constexpr auto token_size = static_cast<ad::Index>(env::RecentMajority::token_size);
  const mc::ObservationFocus<float> focus({.tokens = tokens, .token_size = token_size});
  MemoryGru base(nn::GruCell<float>({.input = focus.input_size(), .hidden = 64}), policy::CategoricalHead<float>(64, 2),
                 {}, policy::ValueHead<float>(64), seed);
  return {std::move(base), mc::McRegistry<mc::ObservationFocus<float>>(focus), seed, {.noop_probability = 0.9}};
}

inline CartPoleMlpPolicy cartpole_mlp(std::uint64_t seed) {
  return {nn::MlpCell<float>({.input = 4, .hidden = {64, 64}}), policy::CategoricalHead<float>(64, 2), {}, {}, seed};
}
inline CartPoleActorCritic cartpole_actor_critic(std::uint64_t seed) {
  return {nn::MlpCell<float>({.input = 4, .hidden = {64, 64}}), policy::CategoricalHead<float>(64, 2),
          nn::LayerNorm<float>(64), policy::ValueHead<float>(64), seed};
}
inline PendulumActorCritic pendulum_actor_critic(std::uint64_t seed) {
  return {nn::MlpCell<float>({.input = 3, .hidden = {64, 64}}), PendulumGaussian({.input = 64, .actions = 1}),
          nn::LayerNorm<float>(64), policy::ValueHead<float>(64), seed};
}


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
    f(MetaConfig<NavigationMlpPolicy, Nav>{name, "2D navigation, MLP policy (2x64 tanh), MAML, TRPO outer step",
                                          configs::navigation_mlp, configs::navigation_protocol(), 500});
  } else if (name == "navigation2d-adam") {
    auto options = configs::navigation_protocol();
    options.trpo = false;
    options.outer_lr = 1e-3;
    f(MetaConfig<NavigationMlpPolicy, Nav, meta::Maml<meta::AdamOuterStep>>{
        name, "2D navigation, MLP policy (2x64 tanh), MAML with a fixed inner rate, Adam outer step (lr 1e-3)",
        configs::navigation_mlp, options, 500});
  } else if (name == "navigation2d-metasgd") {
    auto options = configs::navigation_protocol();
    options.trpo = false;
    options.outer_lr = 1e-3;
    f(MetaConfig<NavigationMlpPolicy, Nav, meta::Maml<meta::AdamOuterStep, meta::LearnedInnerRates>>{
        name, "2D navigation, MLP policy (2x64 tanh), Meta-SGD (a learned rate per parameter, from 0.1), Adam outer step (lr 1e-3)",
        configs::navigation_mlp, options, 500});
  } else if (name == "navigation2d-ssm") {
    f(MetaConfig<NavigationSsmPolicy, Nav>{name, "2D navigation, diagonal SSM policy (64 states), MAML, TRPO outer step",
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
        name, "CartPole with varied physics (200-step episodes), diagonal SSM policy, MAML, TRPO outer step",
        configs::cartpole_ssm, options, 200, env::CartPole({.length = 1.0}),
        "pole twice as long as the nominal one (beyond the training range of 0.25 to 0.75 m)"});
  } else if (name == "cartpole-reinforce") {
    f(PlainConfig<CartPoleMlpPolicy, env::CartPole>{
        name, "CartPole-v1, MLP policy (2x64 tanh), REINFORCE with normalised returns (gamma 0.99, gradient clipping 1.0)",
        configs::cartpole_mlp,
        {.algorithm = rl::Algorithm::reinforce, .envs = 8, .steps = 500, .gamma = 0.99, .lr = 1e-3, .max_grad_norm = 1.0},
        400, 475.0, policy::ActMode::sample, env::CartPole({.length = 1.0}), "pole twice as long"});
  } else if (name == "cartpole-a2c") {
    f(PlainConfig<CartPoleActorCritic, env::CartPole>{
        name, "CartPole-v1, MLP actor-critic (shared body, LayerNorm), A2C (8 envs x 8 steps, GAE 0.95, clipping 0.5)",
        configs::cartpole_actor_critic,
        {.algorithm = rl::Algorithm::a2c, .envs = 8, .steps = 8, .gamma = 0.99, .gae_lambda = 0.95, .lr = 7e-4,
         .max_grad_norm = 0.5, .value_coef = 0.02},
        20000, 475.0, policy::ActMode::sample, env::CartPole({.length = 1.0}), "pole twice as long"});
  } else if (name == "cartpole-ppo") {
    f(PlainConfig<CartPoleActorCritic, env::CartPole>{
        name, "CartPole-v1, MLP actor-critic (shared body, LayerNorm), PPO (16 envs x 128 steps, 4 epochs of 4 minibatches, clip 0.2)",
        configs::cartpole_actor_critic,
        {.algorithm = rl::Algorithm::ppo, .envs = 16, .steps = 128, .gamma = 0.99, .gae_lambda = 0.95, .lr = 1e-3,
         .max_grad_norm = 0.5, .epochs = 4, .minibatches = 4, .value_coef = 0.02},
        400, 475.0, policy::ActMode::sample, env::CartPole({.length = 1.0}), "pole twice as long"});
  } else if (name == "pendulum-ppo") {
    f(PlainConfig<PendulumActorCritic, env::Pendulum>{
        name, "Pendulum-v1, MLP actor-critic (LayerNorm, state-dependent std), PPO (16 envs x 200 steps, 10 epochs of 8 minibatches)",
        configs::pendulum_actor_critic,
        {.algorithm = rl::Algorithm::ppo, .envs = 16, .steps = 200, .gamma = 0.9, .gae_lambda = 0.95, .lr = 1e-3,
         .max_grad_norm = 0.5, .epochs = 10, .minibatches = 8, .value_coef = 0.02},
        500, -250.0, policy::ActMode::greedy, env::Pendulum({.m = 2.0}), "pendulum twice as heavy"});
  } else if (name == "regime-switch-mc") {
    f(PlainConfig<StateMcPolicy, env::RegimeSwitch>{
        name, "Regime Switch, GRU actor-critic (64) with MC actions clear_state, noise_low, noise_high, PPO "
              "(16 envs x 200 steps, 4 epochs of 4 minibatches)",
        configs::regime_switch_mc,
        {.algorithm = rl::Algorithm::ppo, .envs = 16, .steps = 200, .gamma = 0.99, .gae_lambda = 0.95, .lr = 1e-3,
         .max_grad_norm = 0.5, .epochs = 4, .minibatches = 4, .value_coef = 0.5},
        300, 1.0, policy::ActMode::greedy, env::RegimeSwitch{}, "the same task (it has no dynamics to shift)"});
  } else if (name == "recent-majority-mc" || name == "cued-majority-mc") {
    const bool cued = name == "cued-majority-mc";
    const std::string task = cued ? "Cued Majority (32 tokens, the majority of the newest 15 or 30, as the episode's cue says)"
                                  : "Recent Majority (32 tokens, the majority of the newest 15)";
    f(PlainConfig<FocusMcPolicy, env::RecentMajority>{
        name, task + ", GRU actor-critic (64) with MC actions focus_short (15 tokens), focus_long (30), PPO (16 envs "
                     "x 200 steps, 4 epochs of 4 minibatches); solved at a mean return of 0.99 of the full 1",
        configs::recent_majority_mc,
        {.algorithm = rl::Algorithm::ppo, .envs = 16, .steps = 200, .gamma = 0.99, .gae_lambda = 0.95, .lr = 1e-3,
         .max_grad_norm = 0.5, .epochs = 4, .minibatches = 4, .value_coef = 0.5},
        300, 0.99, policy::ActMode::greedy, env::RecentMajority(cued), "the same task (it has no dynamics to shift)", 100,
        env::RecentMajority(cued)});
  } else if (name.starts_with("popgym-") && name.ends_with("-mc")) {
    const bool cards = name.starts_with("popgym-repeat-previous");
    const bool medium = name == "popgym-repeat-previous-medium-mc";
    const bool noisy = name == "popgym-noisy-cartpole-mc";
    if (!cards && !noisy && name != "popgym-cartpole-mc") return false;
    if (cards && !medium && name != "popgym-repeat-previous-mc") return false;
    const PopgymTask task =
        cards   ? PopgymTask(env::RepeatPrevious::of(medium ? env::Difficulty::medium : env::Difficulty::easy))
        : noisy ? PopgymTask(env::PositionOnlyCartPole::noisy(env::Difficulty::easy))
                : PopgymTask(env::PositionOnlyCartPole::of(env::Difficulty::easy));
    const std::string what = medium  ? "POPGym's Repeat Previous Medium (2 decks, the suit 32 cards back)"
                             : cards ? "POPGym's Repeat Previous Easy (1 deck, the suit 4 cards back)"
                             : noisy ? "POPGym's Noisy Position-only CartPole Easy (noise std 0.1, 200 steps)"
                                     : "POPGym's Position-only CartPole Easy (200 steps)";
    f(PlainConfig<StateMcPolicy, PopgymTask>{
        name, what + ", GRU actor-critic (64) with MC actions clear_state, noise_low, noise_high, PPO "
                     "(16 envs x 200 steps, 4 epochs of 4 minibatches); solved at a mean return of 0.99 of the full 1",
        cards ? configs::popgym_mc<4> : configs::popgym_mc<2>,
        {.algorithm = rl::Algorithm::ppo, .envs = 16, .steps = 200, .gamma = 0.99, .gae_lambda = 0.95, .lr = 1e-3,
         .max_grad_norm = 0.5, .epochs = 4, .minibatches = 4, .value_coef = 0.5},
        600, 0.99, policy::ActMode::greedy, task, "the same task (it has no dynamics to shift)", 100, task});
  } else {
    return false;
  }
  return true;
}

inline std::vector<std::string> config_names() {
  return {"navigation2d", "navigation2d-adam", "navigation2d-metasgd", "navigation2d-ssm", "navigation2d-pretrained", "cartpole-varied",
          "cartpole-reinforce", "cartpole-a2c", "cartpole-ppo", "pendulum-ppo", "regime-switch-mc", "recent-majority-mc",
          "cued-majority-mc", "popgym-cartpole-mc", "popgym-noisy-cartpole-mc", "popgym-repeat-previous-mc",
          "popgym-repeat-previous-medium-mc"};
}

inline std::string known_configs() {
  std::string s;
  for (const auto& n : config_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace ssmrl::cli
