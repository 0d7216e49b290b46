// What `ssmrl rsi` improves: a meta-trained MLP policy of a meta configuration (navigation2d), its
// knob values, and the compute it has used. A proposal changes one knob within its bounds (PBT's
// explore), widens one hidden layer by Net2Net (the policy acts as before) or shrinks one, switches
// the LayerNorm of the features on or off, or, for the null trials, only the seed of training.
// Five metrics per evaluation seed, each on the scale of
// docs/reference/self-improvement.md ("The metrics of `ssmrl rsi`").
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <ssmrl/control/override_file.hpp>
#include <ssmrl/control/pbt.hpp>
#include <ssmrl/rsi.hpp>
#include <ssmrl/ssmrl.hpp>

namespace ssmrl::cli {

//! What a subject is evaluated and changed with; fixed for a run (saved in its settings file).
struct SubjectSettings {
  std::vector<std::string> proposal_knobs{"inner_lr", "max_kl", "gamma", "gae_lambda"};
  double widen_probability = 0.3;  //!< of a proposal being a widening
  double shrink_probability = 0;   //!< of a proposal being a shrink
  double normalisation_probability = 0;  //!< of a proposal switching the norm (else, after these, a knob)
  double max_growth = 0.2;         //!< a widening adds, a shrink removes, 1 unit up to this share of the layer
  bool null_trials = false;        //!< every proposal only reseeds training (the test's null)
  int tasks_per_seed = 10;         //!< goals per evaluation seed, from the training distribution and the held-out set
  int trajectories = 20;           //!< per goal and phase of an evaluation
  int adapt_steps = 1;             //!< inner steps before the post-adaptation return
  double return_floor = -40;       //!< about the return of standing still (-100 x the mean goal distance 0.38)
  double return_reference = 0;     //!< the goal reached at once
  double compute_unit = 1;         //!< meta-iterations of the starting policy that are efficiency's unit of compute
};

//! One proposed change: a knob's new value, a layer's new width, the norm on or off, or (null
//! trials) a training seed.
struct Proposal {
  enum class Kind { knob, widen, shrink, normalisation, reseed } kind = Kind::knob;
  std::string knob;
  control::KnobValue value{};
  std::size_t layer = 0;
  ad::Index width = 0;
  bool normalised = false;  //!< whether the norm is to be on
  std::uint64_t seed = 0;   //!< of the widening's copies, the norm's statistics, or the new training seed
};

//! Over `Config`'s trainer with a policy of type `PolicyT` (one with an nn::OptionalLayerNorm can
//! have its norm switched).
template <class Config, class PolicyT = typename Config::Policy>
class MetaSubject {
public:
  using Policy = PolicyT;
  static constexpr bool switchable_norm = requires(const Policy& p) { p.norm().enabled(); };
  using Tasks = typename Config::Tasks;
  using Trainer = meta::MetaTrainer<Policy, Tasks, typename Config::Algorithm>;
  using proposal_type = Proposal;
  using PolicyMaker = Policy (*)(std::uint64_t seed, const std::vector<ad::Index>& hidden);

  //! A subject starting from `make(seed, hidden)` with the configuration's options and `knobs`
  //! (changes from its defaults, checked against its schema).
  MetaSubject(const Config& config, PolicyMaker make, std::uint64_t seed, std::vector<ad::Index> hidden,
              const control::KnobChanges& knobs, int tasks_per_batch, SubjectSettings settings)
      : options_(config.options), settings_(std::move(settings)), make_(make), policy_(make(seed, hidden)),
        training_seed_(seed) {
    options_.seed = seed;
    if (tasks_per_batch > 0) options_.meta_batch = tasks_per_batch;
    options_.threads = 1;
    const auto schema = Trainer::knob_schema(options_);
    schema.check(knobs, "ssmrl rsi: --set");
    for (const auto& n : settings_.proposal_knobs) static_cast<void>(schema.at(n, "ssmrl rsi: --proposal-knobs"));
    knobs_ = schema.defaults();
    for (std::size_t i = 0; i < schema.size(); ++i) {
      if (const auto it = knobs.find(schema[i].name); it != knobs.end()) knobs_[i] = it->second;
    }
    SSMRL_REQUIRE(settings_.compute_unit > 0, "ssmrl rsi: compute_unit ", settings_.compute_unit, " must be positive");
    SSMRL_REQUIRE(switchable_norm || settings_.normalisation_probability == 0, "ssmrl rsi: normalisation_probability ",
                  settings_.normalisation_probability, " needs a policy whose norm can be switched");
    compute_unit_ = cost_per_iteration() * settings_.compute_unit;
  }

  [[nodiscard]] Proposal propose(std::mt19937_64& rng) const {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    Proposal p;
    if (settings_.null_trials) {
      p.kind = Proposal::Kind::reseed;
      p.seed = rng();
      return p;
    }
    const auto& hidden = policy_.cell().config().hidden;
    const double kind = u(rng);
    const bool widen = kind < settings_.widen_probability;
    if (widen || kind < settings_.widen_probability + settings_.shrink_probability) {
      p.kind = widen ? Proposal::Kind::widen : Proposal::Kind::shrink;
      p.layer = std::uniform_int_distribution<std::size_t>(0, hidden.size() - 1)(rng);
      const auto from = hidden[p.layer];
      const auto most = std::max<ad::Index>(1, static_cast<ad::Index>(std::floor(settings_.max_growth * from)));
      const auto change = std::uniform_int_distribution<ad::Index>(1, most)(rng);
      p.width = widen ? from + change : std::max<ad::Index>(1, from - change);
      p.seed = rng();
      if (p.width != from) return p;  // a layer of one unit cannot shrink: a knob instead
    }
    const double layers = settings_.widen_probability + settings_.shrink_probability;
    if constexpr (switchable_norm) {
      if (kind >= layers && kind < layers + settings_.normalisation_probability) {
        p.kind = Proposal::Kind::normalisation;
        p.normalised = !policy_.norm().enabled();
        p.seed = rng();
        return p;
      }
    }
    p.kind = Proposal::Kind::knob;
    const auto schema = knob_schema();
    const auto& names = settings_.proposal_knobs;
    p.knob = names[std::uniform_int_distribution<std::size_t>(0, names.size() - 1)(rng)];
    const auto i = *schema.find(p.knob);
    // A proposal that changes nothing is drawn again (a knob at its bound, say), a few times.
    for (int attempt = 0; attempt < 8; ++attempt) {
      p.value = control::perturb(schema[i], knobs_[i], control::PbtOptions{}, rng);
      if (p.value != knobs_[i]) break;
    }
    return p;
  }

  //! This subject changed by `p`: it starts from what this one learnt.
  [[nodiscard]] MetaSubject with(const Proposal& p) const {
    MetaSubject out = *this;
    switch (p.kind) {
      case Proposal::Kind::knob: {
        const auto schema = knob_schema();
        const auto i = schema.find(p.knob);
        SSMRL_REQUIRE(i.has_value(), "ssmrl rsi: no knob '", p.knob, "'");
        out.knobs_[*i] = p.value;
        schema.check_values(out.knobs_, "ssmrl rsi: proposal");
        break;
      }
      case Proposal::Kind::widen: {
        std::mt19937_64 rng(p.seed);
        const auto w = rsi::Widening::draw(policy_.cell().config().hidden.at(p.layer), p.width, rng);
        out.policy_ = rsi::widen_layer(policy_, p.layer, w);
        break;
      }
      case Proposal::Kind::shrink: {
        // The units the next layer (or the action head) reads most strongly stay, with their weights.
        const auto& params = policy_.params();
        const bool last = p.layer + 1 == policy_.cell().config().hidden.size();
        const auto& reader = last ? params.head.mean.W : params.cell.layers.at(p.layer + 1).W;
        out.policy_ = rsi::widen_layer(policy_, p.layer, rsi::Widening::keep_strongest(reader, p.width));
        break;
      }
      case Proposal::Kind::normalisation: {
        if constexpr (switchable_norm) {
          // The features' level and spread along one rollout of the policy on a training task.
          std::mt19937_64 rng(p.seed);
          Trainer trainer(policy_, Tasks{}, options_);
          const auto task = trainer.tasks().sample(rng);
          const auto statistics = rsi::feature_statistics(policy_, trainer.sample_trajectories(task, rng()));
          out.policy_ = rsi::with_normalisation(policy_, p.normalised, statistics);
        } else {
          SSMRL_THROW(InvalidArgument, std::string("ssmrl rsi: this policy's norm cannot be switched"));
        }
        break;
      }
      case Proposal::Kind::reseed: out.training_seed_ = p.seed; break;
    }
    return out;
  }

  //! A copy that trains from stream k of its training seed (a changed copy's stream k is the same).
  [[nodiscard]] MetaSubject replicate(int k) const {
    MetaSubject out = *this;
    out.training_seed_ = env::derive_seed(training_seed_, static_cast<std::uint64_t>(k));
    return out;
  }

  [[nodiscard]] nlohmann::json describe(const Proposal& p) const {
    switch (p.kind) {
      case Proposal::Kind::knob: {
        const auto i = *knob_schema().find(p.knob);
        return {{"kind", "knob"}, {"knob", p.knob}, {"from", control::knob_text(knobs_[i])},
                {"to", control::knob_text(p.value)}};
      }
      case Proposal::Kind::widen:
        return {{"kind", "widen"}, {"layer", p.layer}, {"from", policy_.cell().config().hidden.at(p.layer)},
                {"to", p.width}, {"function_preserving", true}};
      case Proposal::Kind::shrink:
        return {{"kind", "shrink"}, {"layer", p.layer}, {"from", policy_.cell().config().hidden.at(p.layer)},
                {"to", p.width}, {"function_preserving", false},
                {"start", "the units read most strongly by the next layer keep their weights"}};
      case Proposal::Kind::normalisation:
        return {{"kind", "normalisation"}, {"from", p.normalised ? "off" : "on"}, {"to", p.normalised ? "on" : "off"},
                {"function_preserving", false},
                {"start", p.normalised ? "scale and shift at the features' mean spread and level along a rollout"
                                       : "the heads absorb the norm at the features' mean level and spread along "
                                         "a rollout"}};
      case Proposal::Kind::reseed:
        return {{"kind", "reseed"}, {"from", training_seed_}, {"to", p.seed}};
    }
    return {};
  }

  //! `budget` meta-iterations from the iterations done; their randomness comes from the training
  //! seed and the iteration's index, so a subject and its changed copy see the same tasks.
  void train(long budget) {
    auto options = options_;
    options.seed = training_seed_;
    Trainer trainer(policy_, Tasks{}, options);
    trainer.set_knob_values(knobs_);
    trainer.set_iterations_done(iterations_);
    for (long b = 0; b < budget; ++b) {
      const double cost = cost_per_iteration(trainer.options());
      static_cast<void>(trainer.iteration());
      compute_ += cost;
    }
    policy_ = trainer.policy();
    iterations_ += budget;
  }

  //! The five metrics on each seed: the primary "heldout_return" (after adaptation on held-out
  //! goals) and return, adaptation, efficiency and stability.
  [[nodiscard]] rsi::Evaluation evaluate(std::span<const std::uint64_t> seeds) const {
    const rsi::ScoreScale returns{settings_.return_floor, settings_.return_reference};
    const double width = settings_.return_reference - settings_.return_floor;
    auto options = options_;
    options.trajectories = settings_.trajectories;
    Trainer trainer(policy_, Tasks{}, options);
    trainer.set_knob_values(knobs_);
    const int k = settings_.adapt_steps;
    rsi::MetricSample heldout{"heldout_return", {}, 0}, ret{"return", {}, 0.05}, adaptation{"adaptation", {}, 0.05},
        efficiency{"efficiency", {}, 0.05}, stability{"stability", {}, 0.05};
    const auto& held = trainer.tasks().held_out();
    for (const auto seed : seeds) {
      std::mt19937_64 rng(env::derive_seed(seed, 0));
      double post = 0, gain = 0, held_post = 0;
      for (int i = 0; i < settings_.tasks_per_seed; ++i) {
        const auto task = trainer.tasks().sample(rng);
        const auto curve = trainer.adaptation_curve(task, k, env::derive_seed(seed, 1 + static_cast<std::uint64_t>(i)));
        post += curve.back();
        gain += curve.back() - curve.front();
      }
      std::vector<std::size_t> order(held.size());
      std::iota(order.begin(), order.end(), std::size_t{0});
      std::shuffle(order.begin(), order.end(), rng);
      const auto n_held = std::min<std::size_t>(order.size(), static_cast<std::size_t>(settings_.tasks_per_seed));
      for (std::size_t i = 0; i < n_held; ++i) {
        held_post += trainer.adaptation_curve(held[order[i]], k, env::derive_seed(seed, 1000 + i)).back();
      }
      const double n = settings_.tasks_per_seed;
      heldout.per_seed.push_back(returns.normalise(held_post / static_cast<double>(n_held)));
      ret.per_seed.push_back(returns.normalise(post / n));
      adaptation.per_seed.push_back(gain / n / width);
      const auto before = scores_before_.find(seed);
      const double spent = before == scores_before_.end() ? 0.0 : (compute_ - before->second.second) / compute_unit_;
      efficiency.per_seed.push_back(spent <= 0 ? 0.0 : (ret.per_seed.back() - before->second.first) / spent);
    }
    auto sorted = ret.per_seed;
    std::sort(sorted.begin(), sorted.end());
    const auto m = sorted.size();
    const double median = m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
    for (const double r : ret.per_seed) stability.per_seed.push_back(-std::abs(r - median));
    // What efficiency is measured from next: these scores, at this compute.
    for (std::size_t i = 0; i < seeds.size(); ++i) scores_before_[seeds[i]] = {ret.per_seed[i], compute_};
    return {heldout, {ret, adaptation, efficiency, stability}};
  }

  //! The policy, knobs and counters in one checkpoint, written atomically.
  void save(const std::filesystem::path& path) const {
    nlohmann::json before = nlohmann::json::object();
    for (const auto& entry : scores_before_) {
      before[std::to_string(entry.first)] = {entry.second.first, entry.second.second};
    }
    control::KnobChanges knobs;
    const auto schema = knob_schema();
    for (std::size_t i = 0; i < schema.size(); ++i) knobs[schema[i].name] = knobs_[i];
    nlohmann::json hidden = policy_.cell().config().hidden;
    std::map<std::string, std::string> metadata{
        {"rsi.hidden", hidden.dump()},
        {"rsi.knobs", control::knob_changes_json(knobs)},
        {"rsi.iterations", std::to_string(iterations_)},
        {"rsi.training_seed", std::to_string(training_seed_)},
        {"rsi.compute", io::detail::number(compute_, "%.17g")},
        {"rsi.scores_before", before.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict)}};
    if constexpr (switchable_norm) metadata["rsi.normalisation"] = policy_.norm().enabled() ? "on" : "off";
    meta::save_checkpoint(path, policy_, std::nullopt, metadata);
  }

  //! All of what save() wrote, or nothing (a bad file throws and leaves this subject as it was).
  void load(const std::filesystem::path& path) {
    const auto file = io::read_safetensors(path);
    const auto origin = path.string();
    const auto value = [&](const std::string& key) {
      const auto it = file.metadata.find(key);
      SSMRL_REQUIRE(it != file.metadata.end(), "ssmrl rsi: '", origin, "' has no metadata '", key, "'");
      return it->second;
    };
    const auto json = [&](const std::string& key) {
      auto j = nlohmann::json::parse(value(key), nullptr, false);
      SSMRL_REQUIRE(!j.is_discarded(), "ssmrl rsi: '", origin, "': metadata '", key, "' is not JSON");
      return j;
    };
    const nlohmann::json hidden_json = json("rsi.hidden");
    SSMRL_REQUIRE(hidden_json.is_array() && !hidden_json.empty() && hidden_json.size() <= 16, "ssmrl rsi: '", origin,
                  "': rsi.hidden ", hidden_json.dump(), " is not a list of layer widths");
    std::vector<ad::Index> hidden;
    for (const nlohmann::json& h : hidden_json) {
      SSMRL_REQUIRE(h.is_number_integer() && h.get<long>() > 0 && h.get<long>() <= 65536, "ssmrl rsi: '", origin,
                    "': rsi.hidden ", hidden_json.dump(), " holds a width that is not from 1 to 65536");
      hidden.push_back(h.get<ad::Index>());
    }
    const auto schema = knob_schema();
    const auto changes = control::parse_knob_changes(value("rsi.knobs"), schema, origin + " (rsi.knobs)");
    auto knobs = schema.defaults();
    for (std::size_t i = 0; i < schema.size(); ++i) {
      const auto it = changes.find(schema[i].name);
      SSMRL_REQUIRE(it != changes.end(), "ssmrl rsi: '", origin, "': rsi.knobs lacks '", schema[i].name, "'");
      knobs[i] = it->second;
    }
    const auto number = [&](const std::string& key) {
      const auto text = value(key);
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      SSMRL_REQUIRE(!text.empty() && end == text.c_str() + text.size() && std::isfinite(v) && v >= 0, "ssmrl rsi: '",
                    origin, "': metadata '", key, "' = '", text, "' is not a finite number >= 0");
      return v;
    };
    const auto iterations = static_cast<long>(number("rsi.iterations"));
    const auto seed_text = value("rsi.training_seed");
    SSMRL_REQUIRE(!seed_text.empty() && seed_text.size() <= 20 &&
                      seed_text.find_first_not_of("0123456789") == std::string::npos,
                  "ssmrl rsi: '", origin, "': rsi.training_seed '", seed_text, "' is not a whole number");
    const nlohmann::json before_json = json("rsi.scores_before");
    SSMRL_REQUIRE(before_json.is_object(), "ssmrl rsi: '", origin, "': rsi.scores_before is not an object");
    std::map<std::uint64_t, std::pair<double, double>> before;
    for (const auto& item : before_json.items()) {
      const std::string& key = item.key();
      const nlohmann::json& v = item.value();
      const bool pair = v.is_array() && v.size() == 2 && v[0].is_number() && v[1].is_number() &&
                        std::isfinite(v[0].get<double>()) && std::isfinite(v[1].get<double>());
      const bool digits = !key.empty() && key.size() <= 20 && key.find_first_not_of("0123456789") == std::string::npos;
      SSMRL_REQUIRE(pair && digits,
                    "ssmrl rsi: '", origin, "': rsi.scores_before holds '", key, "': ", v.dump());
      before[std::stoull(key)] = {v[0].get<double>(), v[1].get<double>()};
    }
    Policy policy = make_(0, hidden);
    if constexpr (switchable_norm) {
      // Absent from the checkpoints of runs from before the norm could be switched: off.
      const auto it = file.metadata.find("rsi.normalisation");
      const std::string norm = it == file.metadata.end() ? "off" : it->second;
      SSMRL_REQUIRE(norm == "on" || norm == "off", "ssmrl rsi: '", origin, "': rsi.normalisation '", norm,
                    "' is neither on nor off");
      if ((norm == "on") != policy.norm().enabled()) policy = rsi::with_normalisation(policy, norm == "on");
    }
    io::load_checkpoint(file, origin, policy);
    policy_ = std::move(policy);
    knobs_ = std::move(knobs);
    iterations_ = iterations;
    training_seed_ = std::stoull(seed_text);
    compute_ = number("rsi.compute");
    scores_before_ = std::move(before);
  }

  [[nodiscard]] const Policy& policy() const noexcept { return policy_; }
  [[nodiscard]] long iterations() const noexcept { return iterations_; }
  [[nodiscard]] double compute() const noexcept { return compute_; }
  [[nodiscard]] control::KnobSchema knob_schema() const { return Trainer::knob_schema(options_); }
  [[nodiscard]] const std::vector<control::KnobValue>& knob_values() const noexcept { return knobs_; }

private:
  // Parameter-steps of one meta-iteration: environment steps of the support and query rollouts
  // times the parameters that act on each.
  [[nodiscard]] double cost_per_iteration(const meta::MetaTrainerOptions& o) const {
    return static_cast<double>(o.meta_batch) * o.trajectories * o.horizon * (o.inner_steps + 1) *
           static_cast<double>(nn::parameter_count(policy_.params()));
  }
  [[nodiscard]] double cost_per_iteration() const { return cost_per_iteration(options_); }

  meta::MetaTrainerOptions options_;
  SubjectSettings settings_;
  PolicyMaker make_;
  Policy policy_;
  std::vector<control::KnobValue> knobs_;
  std::uint64_t training_seed_;
  long iterations_ = 0;
  double compute_ = 0;
  double compute_unit_ = 1;  //!< one meta-iteration of the starting policy
  // Per seed, the return score of its last evaluation and the compute then: efficiency's start.
  // An evaluation is const for the loop; it records these for the copies trained next.
  mutable std::map<std::uint64_t, std::pair<double, double>> scores_before_;
};

}  // namespace ssmrl::cli
