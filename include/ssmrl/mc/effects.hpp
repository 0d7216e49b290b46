// What the MC actions chosen at one step do, per environment: an affine edit of the recurrent state
// (keep * state + offset: clear is keep 0, noise is an offset) and how many observation tokens stay
// visible. Components write them; the policy applies them in the rollout and replays the same
// numbers in training, so that both compute the same thing by construction.
#pragma once

#include <span>
#include <unordered_map>
#include <vector>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/core/error.hpp"
#include "ssmrl/mc/registry.hpp"

namespace ssmrl::mc {

template <class Scalar>
class McEffects {
public:
  //! Sizes the effects for environments `ids` (column j is environment ids[j]) and clears them.
  void resize(ad::Index state_size, std::span<const EnvId> ids) {
    const auto n = static_cast<ad::Index>(ids.size());
    state_keep_.setOnes(1, n);
    state_offset_.setZero(state_size, n);
    state_edited_.setZero(1, n);
    tokens_.setZero(1, n);
    columns_.clear();
    for (ad::Index j = 0; j < n; ++j) {
      const auto [it, inserted] = columns_.try_emplace(ids[static_cast<std::size_t>(j)], j);
      SSMRL_REQUIRE(inserted, "mc::McEffects::resize: environment id ", it->first, " given twice");
    }
  }
  //! Every environment back to no effect (what noop means).
  void clear() {
    state_keep_.setOnes();
    state_offset_.setZero();
    state_edited_.setZero();
    tokens_.setZero();
  }

  //! The column of environment id; an id the effects were not sized for is refused.
  [[nodiscard]] ad::Index column(EnvId id) const {
    const auto it = columns_.find(id);
    SSMRL_REQUIRE(it != columns_.end(), "mc::McEffects: environment id ", id, " is not among the ", columns_.size(),
                  " environments of this step");
    return it->second;
  }
  [[nodiscard]] ad::Index state_size() const noexcept { return state_offset_.rows(); }

  //! The state of environment id becomes zero.
  void clear_state(EnvId id) {
    const auto j = column(id);
    state_keep_(0, j) = 0;
    state_offset_.col(j).setZero();
    state_edited_(0, j) = 1;
  }
  //! The offset added to environment id's state, for a component to fill (the state is kept).
  auto state_offset(EnvId id) {
    const auto j = column(id);
    state_edited_(0, j) = 1;
    return state_offset_.col(j);
  }
  //! Only the newest `tokens` observation tokens of environment id stay visible this step.
  void focus(EnvId id, ad::Index tokens) {
    SSMRL_REQUIRE(tokens > 0, "mc::McEffects::focus: tokens ", tokens, " must be positive");
    tokens_(0, column(id)) = static_cast<Scalar>(tokens);
  }

  //! 1 x N: the state's multiplier; S x N: its offset; 1 x N: 1 where the state is edited; 1 x N:
  //! the tokens kept (0: all).
  [[nodiscard]] const ad::Matrix<Scalar>& state_keep() const noexcept { return state_keep_; }
  [[nodiscard]] const ad::Matrix<Scalar>& state_offset() const noexcept { return state_offset_; }
  [[nodiscard]] const ad::Matrix<Scalar>& state_edited() const noexcept { return state_edited_; }
  [[nodiscard]] const ad::Matrix<Scalar>& tokens() const noexcept { return tokens_; }

  //! state.col(j) = keep_j * state.col(j) + offset.col(j) where column j is edited; the others
  //! are not touched (bit-identical).
  void apply_to_state(Eigen::Ref<ad::Matrix<Scalar>> state) const {
    for (ad::Index j = 0; j < state.cols(); ++j) {
      if (state_edited_(0, j) != 0) state.col(j) = state.col(j) * state_keep_(0, j) + state_offset_.col(j);
    }
  }

private:
  ad::Matrix<Scalar> state_keep_;
  ad::Matrix<Scalar> state_offset_;
  ad::Matrix<Scalar> state_edited_;
  ad::Matrix<Scalar> tokens_;
  std::unordered_map<EnvId, ad::Index> columns_;
};

//! What a rollout records of the MC head, per column (T blocks of N, as TrajectoryBatch): the
//! chosen action (its index among all the registry's actions), its log-probability, and the effects.
template <class Scalar>
struct McRecord {
  ad::Matrix<Scalar> choices;       //!< 1 x (T N)
  ad::Matrix<Scalar> log_probs;     //!< 1 x (T N)
  ad::Matrix<Scalar> state_keep;    //!< 1 x (T N)
  ad::Matrix<Scalar> state_offset;  //!< state x (T N)
  ad::Matrix<Scalar> state_edited;  //!< 1 x (T N)
  ad::Matrix<Scalar> tokens;        //!< 1 x (T N), 0: every token visible
  //! 1 x (T N): the value before the MC action (the value head on pass 1's features, as though noop),
  //! the baseline of the MC head's advantage; empty for a policy without a value head
  ad::Matrix<Scalar> values;
  [[nodiscard]] bool empty() const noexcept { return choices.size() == 0; }
};

}  // namespace ssmrl::mc
