// Population Based Training's decisions (Jaderberg et al. 2017, with Ray Tune's defaults): every
// interval the members in the bottom quantile copy a random member of the top quantile (exploit:
// the caller copies weights, optimiser state and knobs) and then perturb each knob (explore).
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "ssmrl/control/knobs.hpp"

namespace ssmrl::control {

struct PbtOptions {
  double quantile = 0.25;              //!< the share of members copied, and of members copied from
  double resample_probability = 0.25;  //!< per knob: drawn afresh from its range instead of perturbed
  double factor_down = 0.8;            //!< a perturbed float or int knob is multiplied by one of these
  double factor_up = 1.2;
};

//! One exploit: member `to` takes the state of member `from`.
struct PbtCopy {
  std::size_t to = 0;
  std::size_t from = 0;
};

//! A value drawn afresh from the knob's range: log-uniform on a log scale, uniform otherwise; ints,
//! bools and choices uniformly among their values.
template <class Rng>
KnobValue resample(const Knob& k, Rng& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  switch (k.type) {
    case KnobType::real:
      if (k.log_scale)
        return k.from_number(std::exp(std::log(k.lower) + u(rng) * (std::log(k.upper) - std::log(k.lower))));
      return k.from_number(k.lower + u(rng) * (k.upper - k.lower));
    case KnobType::integer: {
      std::uniform_int_distribution<std::int64_t> d(static_cast<std::int64_t>(std::ceil(k.lower)),
                                                    static_cast<std::int64_t>(std::floor(k.upper)));
      return d(rng);
    }
    case KnobType::boolean: return u(rng) < 0.5;
    case KnobType::choice: {
      std::uniform_int_distribution<std::size_t> d(0, k.choices.size() - 1);
      return k.choices[d(rng)];
    }
  }
  return k.default_value;
}

//! PBT's explore of one knob: resampled with the options' probability, else floats multiplied by
//! factor_down or factor_up, ints too and cast back, bools and choices moved to a neighbouring
//! value (as Ray Tune moves list-valued knobs); the result clamped to the bounds.
template <class Rng>
KnobValue perturb(const Knob& k, const KnobValue& v, const PbtOptions& o, Rng& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  if (u(rng) < o.resample_probability) return resample(k, rng);
  const bool up = u(rng) < 0.5;
  switch (k.type) {
    case KnobType::real: return k.from_number(std::get<double>(v) * (up ? o.factor_up : o.factor_down));
    case KnobType::integer:
      return k.from_number(
          std::trunc(static_cast<double>(std::get<std::int64_t>(v)) * (up ? o.factor_up : o.factor_down)));
    case KnobType::boolean:
    case KnobType::choice: {
      const double i = k.number(v);
      const double last = k.type == KnobType::boolean ? 1.0 : static_cast<double>(k.choices.size() - 1);
      const double next = i == 0 ? 1.0 : i == last ? last - 1 : i + (up ? 1.0 : -1.0);
      return k.from_number(std::clamp(next, 0.0, last));
    }
  }
  return v;
}

//! The exploits of one PBT round from the members' scores (higher is better; NaN counts as worst):
//! each member of the bottom quantile copies a random member of the top quantile. With fewer than
//! 1 / quantile members, one member at each end.
template <class Rng>
std::vector<PbtCopy> pbt_exploits(const std::vector<double>& scores, const PbtOptions& o, Rng& rng) {
  SSMRL_REQUIRE(o.quantile > 0 && o.quantile <= 0.5 && o.resample_probability >= 0 && o.resample_probability <= 1 &&
                    o.factor_down > 0 && o.factor_up > 0,
                "control::pbt_exploits: quantile ", o.quantile, " must lie in (0, 0.5], resample_probability ",
                o.resample_probability, " in [0, 1], the factors be positive");
  const std::size_t n = scores.size();
  if (n < 2) return {};
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  const auto key = [&](std::size_t i) { return std::isnan(scores[i]) ? -INFINITY : scores[i]; };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  const auto count = std::max<std::size_t>(1, static_cast<std::size_t>(std::floor(static_cast<double>(n) * o.quantile)));
  std::uniform_int_distribution<std::size_t> pick(0, count - 1);
  std::vector<PbtCopy> copies;
  for (std::size_t i = 0; i < count; ++i) copies.push_back({order[i], order[n - 1 - pick(rng)]});
  return copies;
}

//! Explore: every knob of `knobs` (a member's values, by name) perturbed.
template <class Rng>
KnobChanges pbt_explore(const KnobSchema& schema, const KnobChanges& knobs, const PbtOptions& o, Rng& rng) {
  KnobChanges out;
  for (const auto& [name, value] : knobs) out[name] = perturb(schema.at(name, "control::pbt_explore"), value, o, rng);
  return out;
}

}  // namespace ssmrl::control
