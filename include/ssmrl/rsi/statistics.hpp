// The statistics self-improvement decides by: the interquartile mean, rliable's stratified bootstrap
// interval, and a paired one-sided sign-flip test with its non-inferiority form.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <vector>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/core/error.hpp"

namespace ssmrl::rsi {

namespace detail {
inline void require_finite(const char* function, const char* argument, std::span<const double> values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    SSMRL_REQUIRE(std::isfinite(values[i]), function, ": ", argument, "[", i, "] is ", values[i], ", not finite");
  }
}
}  // namespace detail

[[nodiscard]] inline double mean(std::span<const double> values) {
  SSMRL_REQUIRE(!values.empty(), "rsi::mean: values is empty");
  double sum = 0;
  for (const double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

//! The interquartile mean as rliable computes it (scipy.stats.trim_mean(x, 0.25)): the mean of the
//! sorted values less floor(n / 4) from each end.
[[nodiscard]] inline double interquartile_mean(std::span<const double> values) {
  SSMRL_REQUIRE(!values.empty(), "rsi::interquartile_mean: values is empty");
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const std::size_t cut = sorted.size() / 4;
  return mean(std::span<const double>(sorted).subspan(cut, sorted.size() - 2 * cut));
}

//! An estimate and its confidence interval.
struct Interval {
  double estimate = 0;
  double low = 0;
  double high = 0;
};

struct BootstrapOptions {
  double confidence = 0.95;
  int resamples = 2000;
  std::uint64_t seed = 0;
};

//! rliable's stratified bootstrap: `scores` is runs x tasks; each resample draws, for every task on
//! its own, as many runs as there are with replacement, and aggregates all the drawn scores; the
//! interval is the percentile interval of the resampled aggregates. `aggregate` takes a span of
//! scores (`interquartile_mean` or `mean`).
template <class Aggregate>
[[nodiscard]] Interval stratified_bootstrap(const ad::Matrix<double>& scores, Aggregate&& aggregate,
                                            const BootstrapOptions& options = {}) {
  SSMRL_REQUIRE(scores.size() > 0, "rsi::stratified_bootstrap: scores is empty (", scores.rows(), " runs x ",
                scores.cols(), " tasks)");
  SSMRL_REQUIRE(options.confidence > 0 && options.confidence < 1 && options.resamples >= 10,
                "rsi::stratified_bootstrap: confidence ", options.confidence, " must be in (0, 1) and resamples ",
                options.resamples, " at least 10");
  detail::require_finite("rsi::stratified_bootstrap", "scores", std::span<const double>(scores.data(), scores.size()));
  const auto runs = scores.rows();
  const auto tasks = scores.cols();
  std::vector<double> drawn(static_cast<std::size_t>(scores.size()));
  for (ad::Index j = 0; j < tasks; ++j)
    for (ad::Index i = 0; i < runs; ++i) drawn[static_cast<std::size_t>(j * runs + i)] = scores(i, j);
  Interval interval;
  interval.estimate = aggregate(std::span<const double>(drawn));
  std::mt19937_64 rng(options.seed);
  std::uniform_int_distribution<ad::Index> pick(0, runs - 1);
  std::vector<double> aggregates(static_cast<std::size_t>(options.resamples));
  for (auto& a : aggregates) {
    for (ad::Index j = 0; j < tasks; ++j)
      for (ad::Index i = 0; i < runs; ++i) drawn[static_cast<std::size_t>(j * runs + i)] = scores(pick(rng), j);
    a = aggregate(std::span<const double>(drawn));
  }
  std::sort(aggregates.begin(), aggregates.end());
  // numpy.percentile's linear interpolation between the order statistics.
  const auto percentile = [&](double q) {
    const double position = q * static_cast<double>(aggregates.size() - 1);
    const auto below = static_cast<std::size_t>(std::floor(position));
    const auto above = std::min(below + 1, aggregates.size() - 1);
    return aggregates[below] + (position - static_cast<double>(below)) * (aggregates[above] - aggregates[below]);
  };
  const double tail = (1 - options.confidence) / 2;
  interval.low = percentile(tail);
  interval.high = percentile(1 - tail);
  return interval;
}

//! A paired one-sided test's result: the mean of candidate - baseline, and the p-value of "the
//! candidate is no better" (exact over all 2^n sign patterns up to n = 20, else Monte Carlo).
struct PairedTest {
  double mean_difference = 0;
  double p_value = 1;
  bool exact = true;
  std::size_t pairs = 0;
  [[nodiscard]] bool significant(double alpha = 0.05) const noexcept { return p_value < alpha; }
};

struct SignFlipOptions {
  int resamples = 100000;  //!< sign patterns drawn beyond 20 pairs
  std::uint64_t seed = 0;
};

//! The paired sign-flip (permutation) test of H0: the differences candidate[i] - baseline[i] - shift
//! are symmetric about 0, against H1: their mean is greater. Under H0 each difference is as likely
//! negated, so the p-value is the share of sign patterns whose mean is at least the observed one.
//! No distribution is assumed; with n pairs the smallest p-value is 2^-n (n = 5: 0.031, so at
//! least 5 pairs are needed to accept at 5%). `shift` > 0 tests superiority by more than shift;
//! `shift` = -margin tests non-inferiority within margin.
[[nodiscard]] inline PairedTest paired_sign_flip_test(std::span<const double> candidate,
                                                      std::span<const double> baseline, double shift = 0,
                                                      const SignFlipOptions& options = {}) {
  SSMRL_REQUIRE(!candidate.empty() && candidate.size() == baseline.size(), "rsi::paired_sign_flip_test: candidate has ",
                candidate.size(), " values and baseline ", baseline.size(), "; they must pair up, at least one");
  SSMRL_REQUIRE(std::isfinite(shift) && options.resamples >= 100, "rsi::paired_sign_flip_test: shift ", shift,
                " must be finite and resamples ", options.resamples, " at least 100");
  detail::require_finite("rsi::paired_sign_flip_test", "candidate", candidate);
  detail::require_finite("rsi::paired_sign_flip_test", "baseline", baseline);
  const std::size_t n = candidate.size();
  std::vector<double> d(n);
  double observed = 0;
  double scale = 0;
  for (std::size_t i = 0; i < n; ++i) {
    d[i] = candidate[i] - baseline[i] - shift;
    observed += d[i];
    scale += std::abs(d[i]);
  }
  // Sums of the same terms in another order may differ by rounding: a tie counts as at least.
  const double tolerance = 1e-12 * std::max(scale, std::numeric_limits<double>::min());
  PairedTest test;
  test.pairs = n;
  test.mean_difference = observed / static_cast<double>(n) + shift;
  long at_least = 0;
  long patterns = 0;
  const auto count = [&](auto sign_of) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += sign_of(i) ? -d[i] : d[i];
    if (sum >= observed - tolerance) ++at_least;
    ++patterns;
  };
  if (n <= 20) {
    for (std::uint64_t pattern = 0; pattern < (std::uint64_t{1} << n); ++pattern)
      count([pattern](std::size_t i) { return ((pattern >> i) & 1U) != 0; });
    test.p_value = static_cast<double>(at_least) / static_cast<double>(patterns);
  } else {
    test.exact = false;
    std::mt19937_64 rng(options.seed);
    std::vector<bool> flips(n);
    for (int r = 0; r < options.resamples; ++r) {
      for (std::size_t i = 0; i < n; ++i) flips[i] = (rng() >> 63) != 0;
      count([&flips](std::size_t i) { return flips[i]; });
    }
    // The observed pattern counts once more, so that the p-value is never 0 (Phipson and Smyth).
    test.p_value = static_cast<double>(at_least + 1) / static_cast<double>(patterns + 1);
  }
  return test;
}

}  // namespace ssmrl::rsi
