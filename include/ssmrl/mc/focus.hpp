// MC actions on token observations: an observation is N tokens of d features, newest last; focus
// keeps only the newest K (15 or 30 by default) of one environment for this step, zeroing the
// older ones, and the policy's input gains one feature, the share of tokens visible (1 without
// focus).
#pragma once

#include <algorithm>
#include <array>
#include <span>
#include <string_view>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/core/error.hpp"
#include "ssmrl/mc/effects.hpp"
#include "ssmrl/mc/registry.hpp"

namespace ssmrl::mc {

struct FocusOptions {
  ad::Index tokens = 0;      //!< N: tokens per observation
  ad::Index token_size = 0;  //!< d: features per token
  ad::Index short_keep = 15;
  ad::Index long_keep = 30;
};

template <class Scalar>
class ObservationFocus {
public:
  using scalar_type = Scalar;
  static constexpr std::array<std::string_view, 2> mc_actions{"focus_short", "focus_long"};

  explicit ObservationFocus(FocusOptions options) : options_(options) {
    SSMRL_REQUIRE(options.tokens > 0 && options.token_size > 0 && options.short_keep > 0 && options.long_keep > 0,
                  "mc::ObservationFocus: tokens ", options.tokens, ", token_size ", options.token_size,
                  ", short_keep ", options.short_keep, " and long_keep ", options.long_keep, " must be positive");
  }
  [[nodiscard]] const FocusOptions& options() const noexcept { return options_; }
  //! Features of an observation (N d) and of the policy's input (N d + 1).
  [[nodiscard]] ad::Index observation_size() const noexcept { return options_.tokens * options_.token_size; }
  [[nodiscard]] ad::Index input_size() const noexcept { return observation_size() + 1; }

  void apply_mc(std::size_t k, std::span<const EnvId> ids, McEffects<Scalar>& effects) {
    for (const auto id : ids) (void)effects.column(id);
    const ad::Index keep = std::min(k == 0 ? options_.short_keep : options_.long_keep, options_.tokens);
    for (const auto id : ids) effects.focus(id, keep);
  }

  //! The policy's input for observations (N d x cols) given the tokens kept per column (1 x cols,
  //! 0: all): older tokens zeroed, and the share visible appended as the last row.
  void input_into(Eigen::Ref<const ad::Matrix<Scalar>> observations, const Scalar* tokens,
                  Eigen::Ref<ad::Matrix<Scalar>> input) const {
    const auto size = observation_size();
    input.topRows(size) = observations;
    for (ad::Index j = 0; j < observations.cols(); ++j) {
      const auto kept = tokens == nullptr ? ad::Index{0} : static_cast<ad::Index>(tokens[j]);
      if (kept <= 0 || kept >= options_.tokens) {
        input(size, j) = Scalar(1);
        continue;
      }
      input.col(j).head((options_.tokens - kept) * options_.token_size).setZero();
      input(size, j) = static_cast<Scalar>(kept) / static_cast<Scalar>(options_.tokens);
    }
  }

private:
  FocusOptions options_;
};

}  // namespace ssmrl::mc
