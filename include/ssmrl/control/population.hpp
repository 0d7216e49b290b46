// Population Based Training over the library's trainers: members train side by side on threads,
// and every `interval` steps the bottom quantile copies the policy, optimiser state and steered
// knobs of a random member of the top quantile, then perturbs those knobs (pbt.hpp). Each member's
// step depends on its own state only and the rounds are decided after all threads join, so the
// result does not depend on the number of threads, nor on the number of ranks of a communicator
// (dist/communicator.hpp) over which the members are spread.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "ssmrl/control/knobs.hpp"
#include "ssmrl/control/pbt.hpp"
#include "ssmrl/control/telemetry.hpp"
#include "ssmrl/dist/communicator.hpp"
#include "ssmrl/nn/parameters.hpp"

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

namespace detail {
template <class T>
concept ParameterMember = requires(T& t, const T& c) {
  c.policy().params();
  t.policy().set_params(c.policy().params());
  { c.optimizer().buffers() } -> std::same_as<std::vector<ad::Matrix<typename T::Scalar>>>;
  { c.optimizer().steps() } -> std::convertible_to<long>;
};
}  // namespace detail

//! What an exploit copies (policy parameters and optimiser state) as numbers, for members that
//! live on another rank: for trainers with an nn parameter struct and an optim::AnyOptimizer.
//! Other members define member_state() and set_member_state() of their own (found by ADL).
template <detail::ParameterMember Trainer>
std::vector<double> member_state(const Trainer& t) {
  const auto params = nn::to_list<ad::Matrix<typename Trainer::Scalar>>(t.policy().params());
  const auto buffers = t.optimizer().buffers();
  std::vector<double> out{static_cast<double>(t.optimizer().steps()), static_cast<double>(buffers.size())};
  for (const auto* list : {&params, &buffers}) {
    for (const auto& m : *list) {
      for (Eigen::Index i = 0; i < m.size(); ++i) out.push_back(static_cast<double>(m.data()[i]));
    }
  }
  return out;
}
template <detail::ParameterMember Trainer>
void set_member_state(Trainer& t, std::span<const double> state) {
  using Scalar = typename Trainer::Scalar;
  auto params = nn::to_list<ad::Matrix<Scalar>>(t.policy().params());
  SSMRL_REQUIRE(state.size() >= 2, "control::set_member_state: ", state.size(), " numbers");
  std::vector<ad::Matrix<Scalar>> buffers(static_cast<std::size_t>(state[1]));
  std::size_t at = 2;
  auto fill = [&](ad::Matrix<Scalar>& m) {
    SSMRL_REQUIRE(at + static_cast<std::size_t>(m.size()) <= state.size(), "control::set_member_state: ",
                  state.size(), " numbers are fewer than the member's parameters and optimiser state");
    for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<Scalar>(state[at++]);
  };
  for (auto& m : params) fill(m);
  for (std::size_t i = 0; i < buffers.size(); ++i) {
    const auto& shape = params[i % params.size()];
    buffers[i].resize(shape.rows(), shape.cols());
    fill(buffers[i]);
  }
  SSMRL_REQUIRE(at == state.size(), "control::set_member_state: ", state.size(), " numbers, the member has ", at);
  auto optimizer = t.optimizer();
  optimizer.set_buffers(std::move(buffers), static_cast<long>(state[0]),
                        std::span<const ad::Matrix<Scalar>>(params));
  t.policy().set_params(nn::from_list(t.policy().params(), params));
  t.optimizer() = std::move(optimizer);
}

//! A member whose exploit can cross ranks: member_state(c) and set_member_state(t, numbers).
template <class Trainer>
concept TransferableMember =
    PopulationMember<Trainer> && requires(Trainer& t, const Trainer& c, std::span<const double> state) {
      { member_state(c) } -> std::same_as<std::vector<double>>;
      set_member_state(t, state);
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

//! Over a communicator of several ranks every rank constructs the same members; each steps its
//! share (dist::share, one member at least), the telemetry is gathered, every rank decides the same
//! rounds, and an exploit's state travels from the rank that steps the member copied from. A member
//! is current on the rank that steps it (owner()); elsewhere it holds what it last received.
template <PopulationMember Trainer, dist::Communicator Comm = dist::SingleProcess>
  requires(std::is_same_v<Comm, dist::SingleProcess> || TransferableMember<Trainer>)
class Population {
public:
  //! Members of one configuration (at least two); `steered` holds the knobs PBT moves: knobs of
  //! the members, of the same type, with ranges inside theirs (the search may be narrower than the
  //! trainer allows). Their starting values are the members' own.
  Population(std::vector<std::unique_ptr<Trainer>> members, KnobSchema steered, PopulationOptions options = {},
             Comm comm = {})
      : members_(std::move(members)), steered_(std::move(steered)), options_(std::move(options)), rng_(options_.seed),
        comm_(std::move(comm)) {
    const char* fn = "control::Population";
    SSMRL_REQUIRE(members_.size() >= static_cast<std::size_t>(comm_.size()), fn, ": ", members_.size(),
                  " members for ", comm_.size(), " ranks; each rank steps one member at least");
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
    const auto mine = dist::share(n, comm_);
    const auto work = [&](std::size_t first) {
      for (std::size_t m = mine.begin + first; m < mine.end; m += options_.threads) {
        try {
          apply_knobs(m);
          out.telemetry[m] = train_step(*members_[m]).telemetry();
          out.scores[m] = out.telemetry[m][options_.score];
        } catch (...) {
          errors[m] = std::current_exception();
        }
      }
    };
    const auto threads = std::min<std::size_t>(options_.threads, mine.size());
    std::vector<std::thread> pool;
    for (std::size_t w = 1; w < threads; ++w) pool.emplace_back(work, w);
    work(0);
    for (auto& t : pool) t.join();
    if (comm_.size() > 1) gather_step(out, errors);
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

  //! The rank that steps member m.
  [[nodiscard]] int owner(std::size_t m) const { return dist::owner_of(m, members_.size(), comm_.size()); }

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
    if (comm_.size() == 1) {
      members_[c.to]->policy() = members_[c.from]->policy();
      members_[c.to]->optimizer() = members_[c.from]->optimizer();
    } else if constexpr (!std::is_same_v<Comm, dist::SingleProcess>) {
      const int from = owner(c.from);
      std::vector<double> state;
      if (comm_.rank() == from) state = member_state(std::as_const(*members_[c.from]));
      std::vector<double> length{static_cast<double>(state.size())};
      comm_.broadcast(std::span<double>(length), from);
      state.resize(static_cast<std::size_t>(length[0]));
      comm_.broadcast(std::span<double>(state), from);
      set_member_state(*members_[c.to], std::span<const double>(state));
    }
    knobs_[c.to] = pbt_explore(steered_, knobs_[c.from], options_.pbt, rng_);
  }

  // After a step of this rank's members: every rank gets every member's telemetry, and every rank
  // fails when any member failed (an error of another rank's member by its index and rank).
  void gather_step(PopulationStep& out, std::vector<std::exception_ptr>& errors) const {
    const std::size_t n = members_.size();
    const auto mine = dist::share(n, comm_);
    std::vector<double> heads(2 * n, 0.0);  // per member: failed, and its count of telemetry values
    for (std::size_t m = mine.begin; m < mine.end; ++m) {
      heads[2 * m] = errors[m] ? 1.0 : 0.0;
      heads[2 * m + 1] = static_cast<double>(out.telemetry[m].values.size());
    }
    dist::allgather_parts(comm_, std::span<double>(heads), n, 2);
    for (std::size_t m = 0; m < n; ++m) {
      if (errors[m]) return;  // the first failure is this rank's own: rethrown by the caller
      if (heads[2 * m] != 0) {
        SSMRL_THROW(std::runtime_error, ::ssmrl::detail::message("control::Population: member ", m, " failed on rank ",
                                                                owner(m)));
      }
    }
    const auto& names = out.telemetry[mine.begin].names;
    for (std::size_t m = 0; m < n; ++m) {
      SSMRL_REQUIRE(heads[2 * m + 1] == static_cast<double>(names.size()), "control::Population: member ", m,
                    " reports ", heads[2 * m + 1], " telemetry values, member ", mine.begin, " ", names.size());
    }
    std::vector<double> values(n * names.size());
    for (std::size_t m = mine.begin; m < mine.end; ++m) {
      std::copy(out.telemetry[m].values.begin(), out.telemetry[m].values.end(),
                values.begin() + static_cast<std::ptrdiff_t>(m * names.size()));
    }
    dist::allgather_parts(comm_, std::span<double>(values), n, names.size());
    for (std::size_t m = 0; m < n; ++m) {
      if (mine.contains(m)) continue;
      out.telemetry[m].names = names;
      out.telemetry[m].values.assign(values.begin() + static_cast<std::ptrdiff_t>(m * names.size()),
                                     values.begin() + static_cast<std::ptrdiff_t>((m + 1) * names.size()));
      out.scores[m] = out.telemetry[m][options_.score];
    }
  }

  std::vector<std::unique_ptr<Trainer>> members_;
  KnobSchema steered_;
  PopulationOptions options_;
  std::mt19937_64 rng_;
  std::vector<KnobChanges> knobs_;
  std::vector<double> scores_;
  long steps_ = 0;
  Comm comm_;
};

}  // namespace ssmrl::control
