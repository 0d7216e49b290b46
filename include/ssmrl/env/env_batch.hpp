// EnvBatch: N environments stepped together, with observations, rewards and flags in contiguous
// matrices, one generator per environment derived from one seed, and automatic resets.
//
// Automatic reset: when an environment's episode ends in step(), its last observation is kept in
// final_observations() (for bootstrapping a truncated episode's value), the environment is reset
// at once, and observations() holds the first observation of its next episode. The flags of that
// step say which environments ended.
#pragma once

#include <Eigen/Core>

#include <cmath>
#include <concepts>
#include <memory>
#include <type_traits>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "ssmrl/core/workers.hpp"
#include "ssmrl/env/environment.hpp"

namespace ssmrl::env {

//! The generator seed of environment `index` of a batch seeded with `seed` (splitmix64).
inline std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t index) {
  std::uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

//! `Rng`: each environment's generator, any uniform random bit generator seedable from a 64-bit
//! seed (std::mt19937_64 by default).
template <class Env, class Rng = std::mt19937_64>
  requires Environment<Env, Rng> && std::constructible_from<Rng, std::uint64_t>
class EnvBatch {
public:
  using ObservationMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
  using ActionMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
  using rng_type = Rng;

  //! `count` copies of `prototype`, generators derived from `seed`; `threads` > 1 steps chunks of
  //! the batch on worker threads (the results are the same as with one).
  EnvBatch(std::size_t count, const Env& prototype, std::uint64_t seed, unsigned threads = 1)
      : envs_(count, prototype),
        observations_(Env::observation_size, static_cast<Eigen::Index>(count)),
        final_observations_(Env::observation_size, static_cast<Eigen::Index>(count)),
        rewards_(static_cast<Eigen::Index>(count)),
        terminated_(count, 0),
        truncated_(count, 0),
        episode_returns_(count, 0.0),
        finished_returns_(count, 0.0),
        episode_lengths_(count, 0),
        finished_lengths_(count, 0) {
    SSMRL_REQUIRE(count > 0, "EnvBatch: count must be positive");
    SSMRL_REQUIRE(threads >= 1, "EnvBatch: threads must be at least 1");
    const Space action_space = prototype.action_space();
    discrete_ = action_space.kind == Space::Kind::discrete;
    action_count_ = action_space.n;
    for (std::size_t i = 0; i < count; ++i) rngs_.emplace_back(Rng(derive_seed(seed, i)));
    threads_ = static_cast<unsigned>(std::min<std::size_t>(threads, count));
    observations_.setZero();
    final_observations_.setZero();
    rewards_.setZero();
    if (threads_ > 1) workers_ = std::make_unique<WorkerGroup>(threads_);
    reset();
  }
  EnvBatch(const EnvBatch&) = delete;
  EnvBatch& operator=(const EnvBatch&) = delete;
  ~EnvBatch() = default;

  [[nodiscard]] std::size_t size() const { return envs_.size(); }
  [[nodiscard]] Env& env(std::size_t i) { return envs_.at(i); }
  [[nodiscard]] const Env& env(std::size_t i) const { return envs_.at(i); }
  [[nodiscard]] Rng& rng(std::size_t i) { return rngs_.at(i); }

  //! Re-derives every environment's generator from `seed`, as the constructor does.
  void reseed(std::uint64_t seed) {
    for (std::size_t i = 0; i < size(); ++i) rngs_[i] = Rng(derive_seed(seed, i));
  }

  //! Resets every environment.
  void reset() {
    for (std::size_t i = 0; i < size(); ++i) reset_one(i);
  }
  //! Resets one environment (after changing its task, say).
  void reset_one(std::size_t i) {
    envs_.at(i).reset(rngs_[i]);
    envs_[i].observe(column(observations_, i));
    episode_returns_[i] = 0;
    episode_lengths_[i] = 0;
  }

  //! Steps every environment; actions are action_size x size() (discrete actions as indices). All
  //! actions are checked first: a bad one throws and no environment moves. An exception from an
  //! environment's own step (on any thread) reaches the caller once every thread has finished its
  //! share; the environments that did step have moved, so reset() before stepping again.
  void step(const Eigen::Ref<const ActionMatrix>& actions) {
    SSMRL_REQUIRE(actions.rows() == static_cast<Eigen::Index>(Env::action_size) &&
                      actions.cols() == static_cast<Eigen::Index>(size()),
                  "EnvBatch::step: actions are ", actions.rows(), "x", actions.cols(), ", expected ", Env::action_size,
                  "x", size());
    for (std::size_t i = 0; i < size(); ++i) check_action(i, actions);
    actions_ = &actions;
    if (workers_) {
      workers_->run([this](unsigned w) { run_chunk(w); });
    } else {
      run_range(0, size());
    }
  }

  //! Actions of another scalar type (a double policy's): cast to float32, then as above.
  template <class Derived>
    requires(!std::is_same_v<typename Derived::Scalar, float>)
  void step(const Eigen::MatrixBase<Derived>& actions) {
    cast_actions_ = actions.template cast<float>();
    step(Eigen::Ref<const ActionMatrix>(cast_actions_));
  }

  [[nodiscard]] const ObservationMatrix& observations() const { return observations_; }
  [[nodiscard]] const ObservationMatrix& final_observations() const { return final_observations_; }
  [[nodiscard]] const Eigen::VectorXd& rewards() const { return rewards_; }
  [[nodiscard]] const std::vector<std::uint8_t>& terminated() const { return terminated_; }
  [[nodiscard]] const std::vector<std::uint8_t>& truncated() const { return truncated_; }
  //! The return of the episode that ended at the last step, for each environment that ended.
  [[nodiscard]] const std::vector<double>& finished_returns() const { return finished_returns_; }
  //! The length in steps of the episode that ended at the last step, for each environment that ended.
  [[nodiscard]] const std::vector<long>& finished_lengths() const { return finished_lengths_; }

private:
  static std::span<float> column(ObservationMatrix& m, std::size_t i) {
    return {m.data() + static_cast<std::ptrdiff_t>(i * Env::observation_size), Env::observation_size};
  }

  void check_action(std::size_t i, const Eigen::Ref<const ActionMatrix>& actions) const {
    for (Eigen::Index r = 0; r < actions.rows(); ++r) {
      const float a = actions(r, static_cast<Eigen::Index>(i));
      if (discrete_) {
        SSMRL_REQUIRE(a == std::floor(a) && a >= 0 && a < static_cast<float>(action_count_), "EnvBatch::step: action ",
                      a, " of environment ", i, " is not one of 0..", action_count_ - 1);
      } else {
        SSMRL_REQUIRE(!std::isnan(a), "EnvBatch::step: action of environment ", i, " is NaN");
      }
    }
    if (envs_[i].needs_reset()) {
      SSMRL_THROW(::ssmrl::UsageError,
                  ::ssmrl::detail::message("EnvBatch::step: environment ", i, " needs a reset"));
    }
  }

  void run_range(std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      const float* a = actions_->data() + static_cast<std::ptrdiff_t>(i) * actions_->outerStride();
      const StepResult r = envs_[i].step(std::span<const float>(a, Env::action_size));
      rewards_[static_cast<Eigen::Index>(i)] = r.reward;
      terminated_[i] = r.terminated;
      truncated_[i] = r.truncated;
      episode_returns_[i] += r.reward;
      ++episode_lengths_[i];
      if (r.done()) {
        envs_[i].observe(column(final_observations_, i));
        finished_returns_[i] = episode_returns_[i];
        finished_lengths_[i] = episode_lengths_[i];
        reset_one(i);
      } else {
        envs_[i].observe(column(observations_, i));
      }
    }
  }

  void run_chunk(unsigned worker) {
    const std::size_t n = size();
    run_range(n * worker / threads_, n * (worker + 1) / threads_);
  }

  std::vector<Env> envs_;
  std::vector<Rng> rngs_;
  ObservationMatrix observations_;
  ObservationMatrix final_observations_;
  Eigen::VectorXd rewards_;
  std::vector<std::uint8_t> terminated_;
  std::vector<std::uint8_t> truncated_;
  std::vector<double> episode_returns_;
  std::vector<double> finished_returns_;
  std::vector<long> episode_lengths_;
  std::vector<long> finished_lengths_;
  bool discrete_ = false;
  int action_count_ = 0;
  const Eigen::Ref<const ActionMatrix>* actions_ = nullptr;
  ActionMatrix cast_actions_;
  unsigned threads_ = 1;
  std::unique_ptr<WorkerGroup> workers_;
};

}  // namespace ssmrl::env
