// MC actions on a recurrent state (GRU, LSTM, SSM: any cell whose per-environment state is a column
// of a matrix, as RecurrentPolicy keeps it): clear it, or add Gaussian noise at two levels, written
// as McEffects. The noise of environment id at its n-th draw comes from (seed, id, n) alone and is
// also kept per id until clear_transient(); training replays what the rollout recorded.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string_view>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/core/error.hpp"
#include "ssmrl/mc/effects.hpp"
#include "ssmrl/mc/registry.hpp"

namespace ssmrl::mc {

struct StateActionOptions {
  double low_std = 0.1;
  double high_std = 0.5;
  std::uint64_t seed = 0;
};

template <class Scalar>
class RecurrentStateActions {
public:
  using scalar_type = Scalar;
  static constexpr std::array<std::string_view, 3> mc_actions{"clear_state", "noise_low", "noise_high"};

  explicit RecurrentStateActions(StateActionOptions options = {})
      : options_(options), draws_(0), noise_(ad::Matrix<Scalar>()) {
    SSMRL_REQUIRE(std::isfinite(options.low_std) && std::isfinite(options.high_std) && options.low_std >= 0 &&
                      options.high_std >= 0,
                  "mc::RecurrentStateActions: noise std ", options.low_std, " and ", options.high_std,
                  " must be finite and not negative");
  }
  [[nodiscard]] const StateActionOptions& options() const noexcept { return options_; }

  //! Writes action k for the environments `ids` into `effects` (checked whole first).
  void apply_mc(std::size_t k, std::span<const EnvId> ids, McEffects<Scalar>& effects) {
    for (const auto id : ids) (void)effects.column(id);
    for (const auto id : ids) {
      if (k == 0) {
        effects.clear_state(id);
        continue;
      }
      const double std = k == 1 ? options_.low_std : options_.high_std;
      auto& count = draws_.at(id);
      std::mt19937_64 rng(mix(options_.seed, static_cast<std::uint64_t>(id), count++));
      std::normal_distribution<double> normal(0.0, 1.0);
      auto offset = effects.state_offset(id);
      auto& drawn = noise_.at(id);
      drawn.resize(offset.rows(), 1);
      for (ad::Index i = 0; i < offset.rows(); ++i) drawn(i, 0) = static_cast<Scalar>(std * normal(rng));
      offset = drawn;
      noise_set_.at(id) = 1;
    }
  }

  //! Makes room for environments `ids` (their draw counts and noise records).
  void prepare_mc(std::span<const EnvId> ids, McEffects<Scalar>& effects) {
    for (const auto id : ids) {
      (void)draws_.at(id);
      noise_.at(id).resize(effects.state_size(), 1);
      (void)noise_set_.at(id);
    }
    clear_transient();
  }

  //! The noise last added to environment id's state since clear_transient() (null if none).
  [[nodiscard]] const ad::Matrix<Scalar>* drawn(EnvId id) const {
    const auto* set = noise_set_.find(id);
    return set != nullptr && *set != 0 ? noise_.find(id) : nullptr;
  }
  //! Forgets the recorded noise (transient: never part of a checkpoint); the draw counts stay.
  void clear_transient() { noise_set_.reset_all(); }
  [[nodiscard]] long draws(EnvId id) const {
    const auto* n = draws_.find(id);
    return n ? *n : 0;
  }

private:
  static std::uint64_t mix(std::uint64_t seed, std::uint64_t id, long n) {
    std::uint64_t z =
        seed ^ (0x9e3779b97f4a7c15ULL * (id + 1)) ^ (0xbf58476d1ce4e5b9ULL * static_cast<std::uint64_t>(n + 1));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  StateActionOptions options_;
  EnvBuffer<long> draws_;
  EnvBuffer<ad::Matrix<Scalar>> noise_;
  EnvBuffer<char> noise_set_{0};
};

}  // namespace ssmrl::mc
