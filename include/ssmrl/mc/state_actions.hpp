// MC actions on a recurrent state (GRU, LSTM, SSM: any cell whose per-environment state is a column
// of a matrix, as RecurrentPolicy keeps it): clear it, or add Gaussian noise at two levels. The
// noise of environment id at its n-th draw comes from (seed, id, n) alone and is recorded per id
// until clear_transient(), so that training can replay what the rollout drew.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string_view>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/core/error.hpp"
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
  static constexpr std::array<std::string_view, 3> mc_actions{"clear_state", "noise_low", "noise_high"};

  //! Acts on `state` (state size x environments; column = environment id), which must outlive it.
  explicit RecurrentStateActions(ad::Matrix<Scalar>& state, StateActionOptions options = {})
      : state_(&state), options_(options), draws_(0), noise_(ad::Matrix<Scalar>()) {
    SSMRL_REQUIRE(std::isfinite(options.low_std) && std::isfinite(options.high_std) && options.low_std >= 0 &&
                      options.high_std >= 0,
                  "mc::RecurrentStateActions: noise std ", options.low_std, " and ", options.high_std,
                  " must be finite and not negative");
  }

  void apply_mc(std::size_t k, std::span<const EnvId> ids) {
    for (const auto id : ids) {
      SSMRL_REQUIRE(id >= 0 && id < state_->cols(), "mc::RecurrentStateActions: environment id ", id,
                    " outside the state's ", state_->cols(), " environments");
    }
    for (const auto id : ids) {
      auto column = state_->col(static_cast<ad::Index>(id));
      if (k == 0) {
        column.setZero();
        continue;
      }
      const double std = k == 1 ? options_.low_std : options_.high_std;
      auto& count = draws_.at(id);
      std::mt19937_64 rng(mix(options_.seed, static_cast<std::uint64_t>(id), count++));
      std::normal_distribution<double> normal(0.0, 1.0);
      auto& drawn = noise_.at(id);
      drawn.resize(column.rows(), 1);
      for (ad::Index i = 0; i < column.rows(); ++i) drawn(i, 0) = static_cast<Scalar>(std * normal(rng));
      column += drawn;
    }
  }

  //! The noise last added to environment id's state since clear_transient() (null if none).
  [[nodiscard]] const ad::Matrix<Scalar>* drawn(EnvId id) const {
    const auto* m = noise_.find(id);
    return m != nullptr && m->size() > 0 ? m : nullptr;
  }
  //! Forgets the recorded noise (transient: never part of a checkpoint); the draw counts stay.
  void clear_transient() { noise_.reset_all(); }
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

  ad::Matrix<Scalar>* state_;
  StateActionOptions options_;
  EnvBuffer<long> draws_;
  EnvBuffer<ad::Matrix<Scalar>> noise_;
};

}  // namespace ssmrl::mc
