// What a trainer reports after each iteration, as named numbers, and a running per-feature
// normalisation of them (Welford's mean and variance) for a controller's input.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "ssmrl/core/error.hpp"

namespace ssmrl::control {

//! Named values of one iteration; NaN where a quantity does not apply (no value head, no episode
//! finished yet).
struct Telemetry {
  std::vector<std::string> names;
  std::vector<double> values;

  void add(std::string name, double value) {
    names.push_back(std::move(name));
    values.push_back(value);
  }
  [[nodiscard]] double operator[](std::string_view name) const {
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) return values[i];
    }
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message("control::Telemetry: no value '", name,
                                                                      "'; there are ", known));
  }
  [[nodiscard]] bool has(std::string_view name) const {
    return std::find(names.begin(), names.end(), name) != names.end();
  }
};

//! Running mean and variance per feature; normalize() maps a vector to (x - mean) / sqrt(var + eps),
//! clipped to [-clip, clip], with 0 for features not finite. Non-finite values are not counted.
class RunningNormalizer {
public:
  RunningNormalizer() = default;
  explicit RunningNormalizer(std::size_t features, double clip = 5.0, double eps = 1e-8)
      : count_(features, 0.0), mean_(features, 0.0), m2_(features, 0.0), clip_(clip), eps_(eps) {
    SSMRL_REQUIRE(clip > 0 && eps > 0, "control::RunningNormalizer: clip ", clip, " and eps ", eps, " must be positive");
  }

  [[nodiscard]] std::size_t features() const noexcept { return mean_.size(); }
  void update(const std::vector<double>& x) {
    check(x, "control::RunningNormalizer::update");
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!std::isfinite(x[i])) continue;
      count_[i] += 1;
      const double delta = x[i] - mean_[i];
      mean_[i] += delta / count_[i];
      m2_[i] += delta * (x[i] - mean_[i]);
    }
  }
  [[nodiscard]] std::vector<double> normalize(const std::vector<double>& x) const {
    check(x, "control::RunningNormalizer::normalize");
    std::vector<double> out(x.size(), 0.0);
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!std::isfinite(x[i])) continue;
      out[i] = std::clamp((x[i] - mean_[i]) / std::sqrt(variance(i) + eps_), -clip_, clip_);
    }
    return out;
  }
  [[nodiscard]] double variance(std::size_t i) const { return count_[i] > 1 ? m2_[i] / count_[i] : 1.0; }

  //! The statistics as one list (counts, means, sums of squared deviations), for saving.
  [[nodiscard]] std::vector<double> state() const {
    std::vector<double> s = count_;
    s.insert(s.end(), mean_.begin(), mean_.end());
    s.insert(s.end(), m2_.begin(), m2_.end());
    return s;
  }
  //! Restores state(); nothing changes unless it has 3 x features finite entries, counts and sums not negative.
  void set_state(const std::vector<double>& s) {
    const std::size_t n = features();
    SSMRL_REQUIRE(s.size() == 3 * n, "control::RunningNormalizer::set_state: ", s.size(), " numbers for ", n,
                  " features (3 per feature expected)");
    for (std::size_t i = 0; i < s.size(); ++i) {
      SSMRL_REQUIRE(std::isfinite(s[i]) && (i >= n && i < 2 * n ? true : s[i] >= 0),
                    "control::RunningNormalizer::set_state: entry ", i, " is ", s[i]);
    }
    count_.assign(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
    mean_.assign(s.begin() + static_cast<std::ptrdiff_t>(n), s.begin() + static_cast<std::ptrdiff_t>(2 * n));
    m2_.assign(s.begin() + static_cast<std::ptrdiff_t>(2 * n), s.end());
  }
  [[nodiscard]] const std::vector<double>& means() const noexcept { return mean_; }
  [[nodiscard]] const std::vector<double>& counts() const noexcept { return count_; }

private:
  void check(const std::vector<double>& x, const char* caller) const {
    SSMRL_REQUIRE(x.size() == features(), caller, ": ", x.size(), " values for ", features(), " features");
  }
  std::vector<double> count_, mean_, m2_;
  double clip_ = 5.0;
  double eps_ = 1e-8;
};

}  // namespace ssmrl::control
