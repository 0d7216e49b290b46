// A meta-optimizer steering a trainer through its knobs: rl::Trainer ("lr", "weight_decay"),
// meta::MetaTrainer ("outer_lr", "outer_weight_decay"), or any type with knob_schema(),
// knob_values() and set_knob_values(). The changes land where a person's --set or a controller's
// would, so they stay within the knobs' ranges and a trainer's schedule steps aside for them.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "ssmrl/control/knobs.hpp"
#include "ssmrl/control/telemetry.hpp"
#include "ssmrl/metaopt/plateau.hpp"

namespace ssmrl::metaopt {

//! The knobs a meta-optimizer sets.
struct SteeredKnobs {
  std::string lr = "lr";
  std::string weight_decay = "weight_decay";
};

template <MetaOptimizer Meta>
class TrainerSteering {
public:
  explicit TrainerSteering(Meta meta, Bounds bounds = {}, SteeredKnobs knobs = {})
      : meta_(std::move(meta)), bounds_(bounds), knobs_(std::move(knobs)) {}

  //! After the trainer's `updates`-th update, with its metrics ("loss", lower is better, such as the
  //! negated mean return; "grad_norm" and the others where there are): every every() updates asks
  //! the meta-optimizer and sets the trainer's knobs, clamped to the bounds and to the knobs'
  //! ranges. Returns the changes applied.
  template <class Trainer>
  Changes after_update(Trainer& trainer, control::Telemetry metrics, long updates) {
    if (updates <= 0 || updates % meta_.every() != 0) return {};
    const auto schema = trainer.knob_schema();
    auto values = trainer.knob_values();
    const auto lr_at = index(schema, knobs_.lr);
    const auto wd_at = index(schema, knobs_.weight_decay);
    SSMRL_REQUIRE(lr_at < schema.size(), "metaopt::TrainerSteering: the trainer has no knob '", knobs_.lr,
                  "'; its knobs are ", schema.names_text());
    metrics.add("lr", std::get<double>(values[lr_at]));
    metrics.add("weight_decay", wd_at < schema.size() ? std::get<double>(values[wd_at]) : 0.0);
    auto c = meta_.update(metrics, updates);
    if (c.lr) {
      c.lr = std::clamp(*c.lr, std::max(bounds_.min_lr, schema[lr_at].lower),
                        std::min(bounds_.max_lr, schema[lr_at].upper));
      values[lr_at] = *c.lr;
    }
    if (c.weight_decay && wd_at < schema.size()) {
      c.weight_decay = std::clamp(*c.weight_decay, std::max(0.0, schema[wd_at].lower),
                                  std::min(bounds_.max_weight_decay, schema[wd_at].upper));
      values[wd_at] = *c.weight_decay;
    } else {
      c.weight_decay.reset();
    }
    if (!c.lr && !c.weight_decay) return c;
    if constexpr (requires { trainer.set_knob_values(values, true); }) {
      trainer.set_knob_values(values, true);  // the learning rate as set, a schedule's decay set aside
    } else {
      trainer.set_knob_values(values);
    }
    return c;
  }

  [[nodiscard]] Meta& meta() noexcept { return meta_; }
  [[nodiscard]] const Meta& meta() const noexcept { return meta_; }

private:
  static std::size_t index(const control::KnobSchema& schema, const std::string& name) {
    for (std::size_t i = 0; i < schema.size(); ++i) {
      if (schema[i].name == name) return i;
    }
    return schema.size();
  }

  Meta meta_;
  Bounds bounds_;
  SteeredKnobs knobs_;
};

}  // namespace ssmrl::metaopt
