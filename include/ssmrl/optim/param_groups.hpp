// Parameter groups, as PyTorch's optimisers have them: consecutive runs of the parameter list, each
// with its own learning rate and weight decay, which may change between steps and take effect at
// the next step (as a changed `param_group["lr"]` does in PyTorch).
#pragma once

#include <cmath>
#include <cstddef>
#include <numeric>
#include <span>
#include <vector>

#include "ssmrl/autodiff/tape.hpp"
#include "ssmrl/core/error.hpp"

namespace ssmrl::optim {

//! One group: `count` consecutive parameter matrices (0 in a single group: all of them).
struct ParamGroup {
  std::size_t count = 0;
  double lr = 0;
  double weight_decay = 0;
};

namespace detail {

template <class Scalar>
void check_lists(const char* op, std::span<ad::Matrix<Scalar>> params, std::span<const ad::Matrix<Scalar>> grads) {
  SSMRL_REQUIRE(params.size() == grads.size(), op, ": ", params.size(), " parameters but ", grads.size(), " gradients");
  for (std::size_t i = 0; i < params.size(); ++i) {
    SSMRL_REQUIRE(params[i].rows() == grads[i].rows() && params[i].cols() == grads[i].cols(), op, ": parameter ", i,
                  " is ", params[i].rows(), "x", params[i].cols(), ", its gradient ", grads[i].rows(), "x",
                  grads[i].cols());
  }
}

//! The groups of one optimiser and the checks on them (a template, as the optimisers are, so that a
//! file that uses no optimiser compiles none of it).
template <class Scalar>
class ParamGroups {
public:
  ParamGroups(const char* owner, double lr, double weight_decay) : owner_(owner) {
    check(lr, weight_decay, "the default group");
    groups_.push_back({0, lr, weight_decay});
  }

  //! Splits the parameter list into groups of the given sizes (all positive), each starting with
  //! its own lr and weight decay. Refused, changing nothing, when a value is out of range.
  void set(const std::vector<ParamGroup>& groups) {
    SSMRL_REQUIRE(!groups.empty(), owner_, "::set_groups: no group");
    for (std::size_t g = 0; g < groups.size(); ++g) {
      SSMRL_REQUIRE(groups[g].count > 0 || groups.size() == 1, owner_, "::set_groups: group ", g,
                    " has no parameters (only a single group may have count 0: all parameters)");
      check(groups[g].lr, groups[g].weight_decay, "a group");
    }
    groups_ = groups;
  }

  [[nodiscard]] std::size_t size() const noexcept { return groups_.size(); }
  [[nodiscard]] const ParamGroup& operator[](std::size_t g) const {
    SSMRL_REQUIRE(g < groups_.size(), owner_, ": group ", g, " of ", groups_.size());
    return groups_[g];
  }
  void set_lr(std::size_t g, double lr) {
    const auto& group = (*this)[g];
    check(lr, group.weight_decay, "set_lr");
    groups_[g].lr = lr;
  }
  void set_weight_decay(std::size_t g, double weight_decay) {
    const auto& group = (*this)[g];
    check(group.lr, weight_decay, "set_weight_decay");
    groups_[g].weight_decay = weight_decay;
  }

  //! The group of each of `n` parameters; the sizes must add up to n.
  [[nodiscard]] std::vector<std::size_t> assignment(std::size_t n) const {
    if (groups_.size() == 1 && groups_[0].count == 0) return std::vector<std::size_t>(n, 0);
    std::size_t total = 0;
    for (const auto& g : groups_) total += g.count;
    SSMRL_REQUIRE(total == n, owner_, "::step: the groups hold ", total, " parameters, the step has ", n);
    std::vector<std::size_t> out;
    for (std::size_t g = 0; g < groups_.size(); ++g) out.insert(out.end(), groups_[g].count, g);
    return out;
  }

private:
  void check(double lr, double weight_decay, const char* where) const {
    SSMRL_REQUIRE(std::isfinite(lr) && lr >= 0 && std::isfinite(weight_decay) && weight_decay >= 0, owner_, ": ",
                  where, ": lr ", lr, " and weight_decay ", weight_decay, " must be finite and not negative");
  }

  const char* owner_;
  std::vector<ParamGroup> groups_;
};

//! Checks that saved per-parameter buffers match the parameters' shapes and are finite.
template <class Scalar>
void check_buffers(const char* op, const char* what, const std::vector<ad::Matrix<Scalar>>& buffers,
                   const std::vector<ad::Matrix<Scalar>>& like) {
  SSMRL_REQUIRE(buffers.size() == like.size(), op, ": ", buffers.size(), " ", what, " for ", like.size(),
                " parameters");
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    SSMRL_REQUIRE(buffers[i].rows() == like[i].rows() && buffers[i].cols() == like[i].cols() && buffers[i].allFinite(),
                  op, ": ", what, " ", i, " is ", buffers[i].rows(), "x", buffers[i].cols(),
                  buffers[i].allFinite() ? "" : " (not finite)", ", the parameter ", like[i].rows(), "x",
                  like[i].cols());
  }
}

}  // namespace detail
}  // namespace ssmrl::optim
