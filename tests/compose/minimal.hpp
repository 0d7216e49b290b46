// A minimal environment, task family, policy and adaptation strategy, written from the concepts
// alone (nothing derives from or wraps the library's classes). compose_test.cpp runs them through
// rl::collect, rl::Trainer, meta::MetaTrainer and adapt::Adapter; near_miss.cpp removes one member
// at a time (NEAR_MISS_*) and expects the compiler to name the concept that says it is missing.
#pragma once

#include <ssmrl/adapt.hpp>
#include <ssmrl/env/env_batch.hpp>
#include <ssmrl/meta.hpp>
#include <ssmrl/rl.hpp>

#include <array>
#include <cmath>
#include <numbers>
#include <random>
#include <span>
#include <string_view>
#include <tuple>
#include <vector>

namespace minimal {

using ssmrl::ad::Index;
using Matrix = ssmrl::ad::Matrix<double>;

// A point on a line that should reach its task's target: x' = x + 0.1 clip(a, -1, 1), reward
// -|x' - target|, 20 steps; it observes x - target.
class Reach {
public:
  struct State {
    double x = 0;
  };
  static constexpr std::size_t observation_size = 1;
  static constexpr std::size_t action_size = 1;

  [[nodiscard]] std::string_view id() const { return "Reach-v0"; }
  [[nodiscard]] ssmrl::env::Space observation_space() const { return ssmrl::env::Space::box({-10.0f}, {10.0f}); }
  [[nodiscard]] ssmrl::env::Space action_space() const { return ssmrl::env::Space::box({-1.0f}, {1.0f}); }
  [[nodiscard]] int max_episode_steps() const { return 20; }
  template <class Rng>
  void reset(Rng& rng) {
    std::uniform_real_distribution<double> start(-0.5, 0.5);
    set_state({start(rng)}, 0);
  }
  ssmrl::env::StepResult step(std::span<const float> action) {
    state_.x += 0.1 * std::clamp(static_cast<double>(action[0]), -1.0, 1.0);
    ++elapsed_;
    const bool truncated = elapsed_ >= max_episode_steps();
    needs_reset_ = truncated;
    return {-std::abs(state_.x - target), false, truncated};
  }
  void observe(std::span<float> out) const { out[0] = static_cast<float>(state_.x - target); }
  [[nodiscard]] const State& state() const { return state_; }
  void set_state(const State& s, int elapsed_steps) {
    state_ = s;
    elapsed_ = elapsed_steps;
    needs_reset_ = false;
  }
  [[nodiscard]] int elapsed_steps() const { return elapsed_; }
  [[nodiscard]] bool needs_reset() const { return needs_reset_; }

  double target = 0;

private:
  State state_{};
  int elapsed_ = 0;
  bool needs_reset_ = true;
};

// Targets uniform in [-1, 1]; two held out.
struct ReachTasks {
  using env_type = Reach;
  using task_type = double;
#ifndef NEAR_MISS_TASKS_WITHOUT_SAMPLE
  template <class Rng>
  [[nodiscard]] double sample(Rng& rng) const {
    std::uniform_real_distribution<double> target(-1.0, 1.0);
    return target(rng);
  }
#endif
  [[nodiscard]] const std::vector<double>& held_out() const { return held; }
  [[nodiscard]] bool is_held_out(double t) const { return std::abs(std::abs(t) - 0.8) < 0.02; }
  static void apply(Reach& env, double t) { env.target = t; }
  std::vector<double> held{-0.8, 0.8};
};

template <class T>
struct LinearGaussianParams {
  T W;        // 1 x 1
  T b;        // 1 x 1
  T log_std;  // 1 x 1
  static constexpr std::array<std::string_view, 3> names{"W", "b", "log_std"};
  auto fields() { return std::tie(W, b, log_std); }
  auto fields() const { return std::tie(W, b, log_std); }
  template <class U>
  using rebind = LinearGaussianParams<U>;
};

// A memoryless Gaussian policy: action ~ N(W obs + b, exp(log_std)^2).
class LinearGaussian {
public:
  using scalar_type = double;
  using Params = LinearGaussianParams<Matrix>;
  using VarParams = LinearGaussianParams<ssmrl::ad::Var<double>>;
  static constexpr bool has_value_head = false;
  static constexpr bool categorical = false;
  struct Step {
#ifndef NEAR_MISS_STEP_WITHOUT_LOG_PROB
    const Matrix& log_prob;
#endif
    const Matrix& actions;
  };
  struct Evaluation {
    ssmrl::ad::Var<double> features;
    ssmrl::ad::Var<double> log_prob;
    ssmrl::ad::Var<double> entropy;
  };

  LinearGaussian() : params_{Matrix::Constant(1, 1, 0.1), Matrix::Zero(1, 1), Matrix::Constant(1, 1, -0.5)} {
    set_num_envs(1);
  }
  [[nodiscard]] Index observation_size() const { return 1; }
  [[nodiscard]] Index action_size() const { return 1; }
  void set_num_envs(Index n) {
    actions_.resize(1, n);
    log_prob_.resize(1, n);
    state_.resize(0, n);
  }
  [[nodiscard]] Index num_envs() const { return actions_.cols(); }
  void reset(Index) {}
  void reset_all() {}
  [[nodiscard]] const Matrix& state() const { return state_; }

  template <class Rng>
  Step act(Eigen::Ref<const Matrix> observations, ssmrl::policy::ActMode mode, Rng& rng) {
    std::normal_distribution<double> normal(0.0, 1.0);
    const double log_std = params_.log_std(0, 0);
    for (Index j = 0; j < observations.cols(); ++j) {
      const double z = mode == ssmrl::policy::ActMode::sample ? normal(rng) : 0.0;
      actions_(0, j) = params_.W(0, 0) * observations(0, j) + params_.b(0, 0) + std::exp(log_std) * z;
      log_prob_(0, j) = -0.5 * z * z - log_std - 0.5 * std::log(2 * std::numbers::pi);
    }
#ifndef NEAR_MISS_STEP_WITHOUT_LOG_PROB
    return {log_prob_, actions_};
#else
    return {actions_};
#endif
  }

  [[nodiscard]] const Params& params() const { return params_; }
  void set_params(Params p) { params_ = std::move(p); }

#ifndef NEAR_MISS_POLICY_WITHOUT_EVALUATE
  [[nodiscard]] Evaluation evaluate(const VarParams& v, const ssmrl::ad::Var<double>& observations, Index,
                                    const Matrix& samples, const ssmrl::nn::SequenceOptions<double>& = {}) const {
    const auto mean = ssmrl::ad::add(ssmrl::ad::matmul(v.W, observations), v.b);
    const double half_log_two_pi_e = 0.5 * std::log(2 * std::numbers::pi * std::numbers::e);
    return {observations, ssmrl::ad::gaussian_log_prob(mean, v.log_std, observations.tape().constant(samples)),
            ssmrl::ad::broadcast_to(v.log_std, 1, observations.cols()) + half_log_two_pi_e};
  }
#endif
#ifndef NEAR_MISS_POLICY_WITHOUT_DISTRIBUTION
  [[nodiscard]] ssmrl::ad::Var<double> distribution(const VarParams& v, const ssmrl::ad::Var<double>& observations, Index,
                                                    const ssmrl::nn::SequenceOptions<double>& = {}) const {
    return distribution_of(v, observations);
  }
#endif
  // Mean over columns of KL(old || new) of two Gaussians stacked as [mean; log_std].
  [[nodiscard]] ssmrl::ad::Var<double> mean_kl(const ssmrl::ad::Var<double>& old_dist, const ssmrl::ad::Var<double>& new_dist) const {
    namespace ad = ssmrl::ad;
    const auto m0 = ad::slice_rows(old_dist, 0, 1);
    const auto s0 = ad::slice_rows(old_dist, 1, 1);
    const auto m1 = ad::slice_rows(new_dist, 0, 1);
    const auto s1 = ad::slice_rows(new_dist, 1, 1);
    const auto var_ratio = ad::exp(ad::affine(ad::sub(s0, s1), 2.0, 0.0));
    const auto mean_term = ad::mul(ad::square(ad::sub(m0, m1)), ad::exp(ad::affine(s1, -2.0, 0.0)));
    return ad::mean(ad::sub(ad::add(s1, ad::affine(ad::add(var_ratio, mean_term), 0.5, -0.5)), s0));
  }
  // The features are the observations.
  [[nodiscard]] ssmrl::ad::Var<double> distribution_of(const VarParams& v, const ssmrl::ad::Var<double>& features) const {
    const auto mean = ssmrl::ad::add(ssmrl::ad::matmul(v.W, features), v.b);
    return ssmrl::ad::concat_rows({mean, ssmrl::ad::broadcast_to(v.log_std, 1, features.cols())});
  }

private:
  Params params_;
  Matrix actions_;
  Matrix log_prob_;
  Matrix state_;
};

// Adaptation: lower the mean squared action (a stand-in for any loss of the user's).
struct QuietActions {
  [[nodiscard]] std::string name() const { return "quiet"; }
  [[nodiscard]] ssmrl::adapt::ParameterSelection default_selection() const { return {{"b"}, {}}; }
#ifndef NEAR_MISS_STRATEGY_WITHOUT_LOSS
  template <class PolicyT, class Scalar>
  ssmrl::ad::Var<Scalar> loss(const PolicyT&, ssmrl::ad::Tape<Scalar>& tape, const typename PolicyT::VarParams& vars,
                              const ssmrl::adapt::AdaptationData<Scalar>& data) const {
    const auto mean = ssmrl::ad::add(ssmrl::ad::matmul(vars.W, tape.constant(data.recent.observations)), vars.b);
    return ssmrl::ad::mean(ssmrl::ad::square(mean));
  }
#endif
};

}  // namespace minimal

template <>
inline constexpr bool ssmrl::env::enable_environment<minimal::Reach> = true;
