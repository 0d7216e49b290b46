// Which parameters test-time adaptation may change: allow and deny lists of name patterns
// (nn::glob_match: '*' any run of characters, '?' one).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ssmrl/nn/parameters.hpp"

namespace ssmrl::adapt {

//! A parameter is adapted when some `allow` pattern matches its name and no `deny` pattern does.
struct ParameterSelection {
  std::vector<std::string> allow{"*"};
  std::vector<std::string> deny{};

  [[nodiscard]] bool selects(std::string_view name) const {
    bool allowed = false;
    for (const auto& a : allow) allowed = allowed || nn::glob_match(a, name);
    for (const auto& d : deny) {
      if (nn::glob_match(d, name)) return false;
    }
    return allowed;
  }
};

//! One flag per parameter of `params`, in their order.
template <class Params>
std::vector<bool> selected(const Params& params, const ParameterSelection& selection) {
  std::vector<bool> out;
  for (const auto& name : nn::parameter_names(params)) out.push_back(selection.selects(name));
  return out;
}

}  // namespace ssmrl::adapt
