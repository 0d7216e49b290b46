// Population Based Training over the library's trainers: members train side by side on threads,
// and every `interval` steps the bottom quantile copies the policy, optimiser state and steered
// knobs of a random member of the top quantile, then perturbs those knobs (pbt.hpp). Each member's
// step depends on its own state only and the rounds are decided after all threads join, so the
// result does not depend on the number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ssmrl/control/knobs.hpp"
#include "ssmrl/control/pbt.hpp"
#include "ssmrl/control/telemetry.hpp"

namespace ssmrl::control {

//! One training step of a member: update() for rl::Trainer, iteration() for meta::MetaTrainer.
template <class Trainer>
auto train_step(Trainer& t) {
  if constexpr (requires { t.update(); }) {
    return t.update();
  } else {
    return t.iteration();
  }
}

//! What a population needs of a trainer: its knobs, one step reporting telemetry, and a policy and
//! optimiser that can be copied from another member (the exploit).
template <class Trainer>
concept PopulationMember = requires(Trainer& t, const Trainer& other, const std::vector<KnobValue>& values) {
  { other.knob_schema() } -> std::same_as<KnobSchema>;
  { other.knob_values() } -> std::same_as<std::vector<KnobValue>>;
  t.set_knob_values(values);
  t.policy() = other.policy();
  t.optimizer() = other.optimizer();
  { train_step(t).telemetry() } -> std::same_as<Telemetry>;
};

struct PopulationOptions {
  PbtOptions pbt = {};
  long interval = 5;                  //!< steps of every member between two rounds
  std::string score = "return_mean";  //!< the telemetry value ranked (higher is better)
  unsigned threads = 2;               //!< members step on this many threads (member m on thread m % threads)
  std::uint64_t seed = 1;             //!< of the exploits' and explores' draws
};

//! What one step of the population did.
struct PopulationStep {
  long step = 0;                     //!< steps of every member so far, this one included
  std::vector<double> scores;        //!< per member, its score at this step
  std::vector<Telemetry> telemetry;  //!< per member
  std::vector<PbtCopy> copies;       //!< the round's exploits (empty between rounds)
};

template <PopulationMember Trainer>
class Population {
public:
  //! Members of one configuration (at least two); `steered` holds the knobs PBT moves: knobs of
  //! the members, of the same type, with ranges inside theirs (the search may be narrower than the
  //! trainer allows). Their starting values are the members' own.
  Population(std::vector<std::unique_ptr<Trainer>> members, KnobSchema steered, PopulationOptions options = {})
      : members_(std::move(members)), steered_(std::move(steered)), options_(std::move(options)), rng_(options_.seed) {
    const char* fn = "control::Population";
    SSMRL_REQUIRE(members_.size() >= 2 && options_.interval >= 1 && options_.threads >= 1, fn, ": ", members_.size(),
                  " members (at least 2), interval ", options_.interval, " and threads ", options_.threads,
                  " (at least 1)");
    for (std::size_t m = 0; m < members_.size(); ++m) {
      SSMRL_REQUIRE(members_[m] != nullptr, fn, ": member ", m, " is null");
    }
    const auto schema = members_[0]->knob_schema();
    std::vector<std::string> names;
    SSMRL_REQUIRE(steered_.size() > 0, fn, ": no steered knob");
    for (const auto& k : steered_.knobs()) {
      const auto& own = schema.at(k.name, fn);
      SSMRL_REQUIRE(own.type == k.type && own.choices == k.choices && k.lower >= own.lower && k.upper <= own.upper, fn,
                    ": the steered knob '", k.name, "' (", knob_type_name(k.type), " in [", k.lower, ", ", k.upper,
                    "]) must have the members' type and lie in their range (", knob_type_name(own.type), " in [",
                    own.lower, ", ", own.upper, "])");
      names.push_back(k.name);
    }
    for (const auto& member : members_) {
      const auto values = member->knob_values();
      KnobChanges own;
      for (const auto& n : names) own[n] = values[*schema.find(n)];
      knobs_.push_back(std::move(own));
    }
  }

  //! One step of every member (with its steered knobs as set), then a PBT round when `interval`
  //! steps have passed since the last. A member's exception is rethrown after all threads join
  //! (the other members have stepped); the step is not counted and no round is made.
  PopulationStep step() {
    const std::size_t n = members_.size();
    PopulationStep out;
    out.scores.assign(n, NAN);
    out.telemetry.resize(n);
    std::vector<std::exception_ptr> errors(n);
    const auto work = [&](std::size_t first) {
      for (std::size_t m = first; m < n; m += options_.threads) {
        try {
          apply_knobs(m);
          out.telemetry[m] = train_step(*members_[m]).telemetry();
          out.scores[m] = out.telemetry[m][options_.score];
        } catch (...) {
          errors[m] = std::current_exception();
        }
      }
    };
    const auto threads = std::min<std::size_t>(options_.threads, n);
    std::vector<std::thread> pool;
    for (std::size_t w = 1; w < threads; ++w) pool.emplace_back(work, w);
    work(0);
    for (auto& t : pool) t.join();
    for (const auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
    out.step = ++steps_;
    scores_ = out.scores;
    if (steps_ % options_.interval == 0) {
      out.copies = pbt_exploits(scores_, options_.pbt, rng_);
      for (const auto& c : out.copies) exploit(c);
    }
    return out;
  }

  [[nodiscard]] std::size_t size() const noexcept { return members_.size(); }
  [[nodiscard]] Trainer& member(std::size_t m) { return *members_.at(m); }
  [[nodiscard]] const Trainer& member(std::size_t m) const { return *members_.at(m); }
  //! The steered knobs member m trains with from its next step.
  [[nodiscard]] const KnobChanges& knobs(std::size_t m) const { return knobs_.at(m); }
  //! Scores of the last step (NaN before the first).
  [[nodiscard]] const std::vector<double>& scores() const noexcept { return scores_; }
  //! The member with the highest score at the last step (NaN counts as worst).
  [[nodiscard]] std::size_t best() const {
    std::size_t b = 0;
    for (std::size_t m = 1; m < scores_.size(); ++m) {
      if (std::isnan(scores_[b]) || scores_[m] > scores_[b]) b = m;
    }
    return b;
  }
  [[nodiscard]] long steps() const noexcept { return steps_; }
  [[nodiscard]] const KnobSchema& steered() const noexcept { return steered_; }

private:
  // The member's knobs with the steered ones replaced by the population's; a learning rate so set
  // is used as given (rl::Trainer's decay set aside), as an override's is.
  void apply_knobs(std::size_t m) {
    auto& t = *members_[m];
    const auto schema = t.knob_schema();
    auto values = t.knob_values();
    for (const auto& [name, value] : knobs_[m]) values[*schema.find(name)] = value;
    if constexpr (requires { t.set_knob_values(values, true); }) {
      t.set_knob_values(values, true);
    } else {
      t.set_knob_values(values);
    }
  }

  void exploit(const PbtCopy& c) {
    members_[c.to]->policy() = members_[c.from]->policy();
    members_[c.to]->optimizer() = members_[c.from]->optimizer();
    knobs_[c.to] = pbt_explore(steered_, knobs_[c.from], options_.pbt, rng_);
  }

  std::vector<std::unique_ptr<Trainer>> members_;
  KnobSchema steered_;
  PopulationOptions options_;
  std::mt19937_64 rng_;
  std::vector<KnobChanges> knobs_;
  std::vector<double> scores_;
  long steps_ = 0;
};

}  // namespace ssmrl::control
