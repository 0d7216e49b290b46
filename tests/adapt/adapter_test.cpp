// Test-time adaptation: each guard by a case that fails without it, the strategies, the registry,
// monitoring and the experience buffer.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/ssmrl.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <numeric>

#include "support/errors.hpp"

using namespace ssmrl;
using ad::Matrix;
namespace fs = std::filesystem;

namespace {

using Policy = policy::RecurrentPolicy<nn::GruCell<float>, policy::CategoricalHead<float>, nn::LayerNorm<float>>;

Policy make_policy(std::uint64_t seed) {
  return Policy(nn::GruCell<float>({.input = 4, .hidden = 16}), policy::CategoricalHead<float>(16, 2),
                nn::LayerNorm<float>(16), {}, seed);
}

rl::TrajectoryBatch<float> cartpole_batch(Policy pi, std::uint64_t seed, int envs = 8, int steps = 50) {
  env::EnvBatch<env::CartPole> batch(static_cast<std::size_t>(envs), env::CartPole{}, seed);
  pi.set_num_envs(envs);
  std::mt19937_64 rng(seed);
  return rl::collect(pi, batch, steps, policy::ActMode::sample, rng);
}

std::vector<Matrix<float>> values(const Policy& pi) { return nn::to_list<Matrix<float>>(pi.params()); }

double distance(const std::vector<Matrix<float>>& a, const std::vector<Matrix<float>>& b) {
  double d = 0;
  for (std::size_t i = 0; i < a.size(); ++i) d += static_cast<double>((a[i] - b[i]).squaredNorm());
  return std::sqrt(d);
}

constexpr double off = 0;  // a guard limit that turns it off

}  // namespace

TEST_CASE("the step bound holds under Adam, after the optimiser; without it Adam steps further") {
  const auto data = cartpole_batch(make_policy(1), 2);
  for (const bool guarded : {true, false}) {
    auto pi = make_policy(1);
    adapt::Adapter adapter(pi, adapt::PolicyGradientAdaptation{},
                           {.lr = 0.5, .guards = {.max_grad_norm = off, .max_step = guarded ? 0.01 : off,
                                                  .trust_radius = off}});
    double largest = 0;
    for (int call = 0; call < 5; ++call) {
      const auto before = values(pi);
      const auto report = adapter.adapt(data);
      REQUIRE(report.applied);
      const auto after = values(pi);
      for (std::size_t i = 0; i < after.size(); ++i) largest = std::max(largest, static_cast<double>((after[i] - before[i]).norm()));
    }
    CAPTURE(guarded);
    if (guarded) CHECK(largest <= 0.01 * (1 + 1e-5));
    else CHECK(largest > 0.1);  // the bound is what holds Adam back
  }
}

TEST_CASE("the trust region keeps the parameters within its radius of the EMA anchor") {
  const auto data = cartpole_batch(make_policy(3), 4);
  for (const bool guarded : {true, false}) {
    auto pi = make_policy(3);
    adapt::Adapter adapter(pi, adapt::PolicyGradientAdaptation{},
                           {.lr = 0.05, .guards = {.max_step = off, .ema_decay = 0.99, .trust_radius = guarded ? 0.2 : off}});
    double farthest = 0;
    for (int call = 0; call < 20; ++call) {
      adapter.adapt(data);
      farthest = std::max(farthest, distance(values(pi), nn::to_list<Matrix<float>>(adapter.anchor())));
    }
    CAPTURE(guarded);
    if (guarded) CHECK(farthest <= 0.2 * (1 + 1e-5));
    else CHECK(farthest > 0.2);
  }
}

namespace {

// A loss linear in the parameters: the sum of the first matrix's entries for the first `alone`
// calls, then of every matrix's: constant gradients, so that every SGD step hits the bound.
struct LinearLoss {
  std::shared_ptr<int> calls = std::make_shared<int>(0);
  int alone = 6;
  [[nodiscard]] std::string name() const { return "linear"; }
  [[nodiscard]] adapt::ParameterSelection default_selection() const { return {}; }
  template <class PolicyT, class Scalar>
  ad::Var<Scalar> loss(const PolicyT&, ad::Tape<Scalar>&, const typename PolicyT::VarParams& vars,
                       const adapt::AdaptationData<Scalar>&) const {
    const auto list = nn::to_list<ad::Var<Scalar>>(vars);
    const bool all = (*calls)++ >= alone;
    ad::Var<Scalar> total = ad::sum(list[0]);
    for (std::size_t i = 1; all && i < list.size(); ++i) total = ad::add(total, ad::sum(list[i]));
    return total;
  }
};

}  // namespace

TEST_CASE("the step bound holds for the step applied after the trust region's projection, and is what is reported") {
  // One matrix is driven to the trust radius alone, then all 41 step together: the projection pulls
  // that matrix back towards the anchor by more than the bound (0.076 against 0.05 before the fix).
  using Deep = policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>>;
  Deep pi(nn::MlpCell<float>({.input = 2, .hidden = std::vector<ad::Index>(19, 2)}),
          policy::GaussianHead<float>({.input = 2, .actions = 2}), {}, {}, 5);
  REQUIRE(nn::to_list<Matrix<float>>(pi.params()).size() == 41);
  env::Navigation2D prototype;
  env::EnvBatch<env::Navigation2D> batch(4, prototype, 6);
  std::mt19937_64 rng(7);
  Deep acting = pi;
  acting.set_num_envs(4);
  const auto data = rl::collect(acting, batch, 10, policy::ActMode::sample, rng);
  adapt::Adapter adapter(pi, LinearLoss{},
                         {.lr = 1.0, .optimizer = adapt::OptimizerKind::sgd,
                          .guards = {.max_grad_norm = off, .max_step = 0.05, .ema_decay = 0.99, .trust_radius = 0.2}});
  auto list = [&] { return nn::to_list<Matrix<float>>(pi.params()); };
  double largest = 0;
  for (int call = 0; call < 12; ++call) {
    const auto before = list();
    const auto report = adapter.adapt(data);
    REQUIRE(report.applied);
    const auto after = list();
    double step = 0;
    for (std::size_t i = 0; i < after.size(); ++i) step = std::max(step, static_cast<double>((after[i] - before[i]).norm()));
    CAPTURE(call);
    CHECK(report.largest_step == doctest::Approx(step).epsilon(1e-5));
    CHECK(report.distance_to_anchor <= 0.2 * (1 + 1e-5));
    CHECK(distance(after, nn::to_list<Matrix<float>>(adapter.anchor())) <= 0.2 * (1 + 1e-5));
    largest = std::max(largest, step);
  }
  CHECK(largest <= 0.05 * (1 + 1e-5));
  CHECK(largest >= 0.05 * (1 - 1e-3));  // the bound was reached
}

TEST_CASE("a non-finite loss rolls back: the parameters stay finite and bit-identical") {
  auto pi = make_policy(5);
  auto data = cartpole_batch(pi, 6);
  data.rewards(0, 7) = std::numeric_limits<float>::quiet_NaN();
  adapt::Adapter adapter(pi, adapt::PolicyGradientAdaptation{}, {.lr = 0.01, .steps_per_call = 3});
  const auto before = values(pi);
  const auto report = adapter.adapt(data);
  CHECK_FALSE(report.applied);
  CHECK(report.rolled_back);
  CHECK(report.reason == "non-finite loss");
  const auto after = values(pi);
  for (std::size_t i = 0; i < after.size(); ++i) {
    CHECK(after[i].allFinite());
    CHECK(std::memcmp(after[i].data(), before[i].data(), sizeof(float) * static_cast<std::size_t>(after[i].size())) == 0);
  }
  // A finite batch afterwards adapts as usual.
  data.rewards(0, 7) = 1.0f;
  CHECK(adapter.adapt(data).applied);
}

TEST_CASE("diverging monitored signals roll the step back") {
  auto pi = make_policy(7);
  const auto data = cartpole_batch(pi, 8);
  // Any entropy is below a limit of 10 nats for two actions, so every step is undone.
  adapt::Adapter adapter(pi, adapt::EntropyMinimization{}, {.lr = 0.05, .guards = {.min_entropy = 10.0}});
  const auto before = values(pi);
  const auto report = adapter.adapt(data);
  CHECK(report.rolled_back);
  CHECK(report.reason.find("monitored signals out of bounds") != std::string::npos);
  CHECK(distance(values(pi), before) == 0.0);
}

TEST_CASE("deny lists leave those parameters bit-identical; the entropy strategy adapts only norm.* by default") {
  auto pi = make_policy(9);
  const auto data = cartpole_batch(pi, 10);
  const auto names = nn::parameter_names(pi.params());
  const auto before = values(pi);
  adapt::Adapter adapter(pi, adapt::PolicyGradientAdaptation{},
                         {.lr = 0.05, .parameters = adapt::ParameterSelection{{"*"}, {"cell.*", "norm.shift"}}});
  REQUIRE(adapter.adapt(data).applied);
  const auto after = values(pi);
  int changed = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    CAPTURE(names[i]);
    const bool denied = names[i].rfind("cell.", 0) == 0 || names[i] == "norm.shift";
    if (denied) CHECK(after[i] == before[i]);
    else changed += after[i] != before[i];
  }
  CHECK(changed > 0);
  auto pi2 = make_policy(9);
  adapt::Adapter tent(pi2, adapt::EntropyMinimization{});
  CHECK(tent.adapted_parameters() == std::vector<std::string>{"norm.scale", "norm.shift"});
}

TEST_CASE("the entropy strategy lowers the entropy on a fixed batch") {
  auto pi = make_policy(11);
  // A policy with decided preferences, as a trained one has (the initial head is nearly uniform).
  auto params = pi.params();
  params.head.W *= 100.0f;
  pi.set_params(params);
  const auto data = cartpole_batch(pi, 12);
  adapt::Adapter adapter(pi, adapt::EntropyMinimization{}, {.lr = 0.01, .steps_per_call = 5});
  const double first = adapter.adapt(data).features.entropy;
  double last = first;
  for (int call = 0; call < 10; ++call) last = adapter.adapt(data).features.entropy;
  MESSAGE("entropy " << first << " -> " << last);
  CHECK(last < first - 0.02);
}

TEST_CASE("the policy-gradient strategy raises the return on a new navigation goal") {
  using Nav = policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>>;
  Nav pi(nn::MlpCell<float>({.input = 2, .hidden = {32, 32}}), policy::GaussianHead<float>({.input = 32, .actions = 2}), {},
         {}, 13);
  env::Navigation2D prototype;
  prototype.set_task({{0.4, -0.3}});
  env::EnvBatch<env::Navigation2D> batch(16, prototype, 14);
  std::mt19937_64 rng(15);
  auto rollout = [&] {
    batch.reset();
    pi.set_num_envs(16);
    pi.reset_all();
    return rl::collect(pi, batch, 100, policy::ActMode::sample, rng);
  };
  auto mean = [](const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); };
  adapt::Adapter adapter(pi, adapt::PolicyGradientAdaptation{}, {.lr = 0.01, .guards = {.max_step = 0.2, .trust_radius = 2.0}});
  auto data = rollout();
  const double before = mean(rl::first_episode_returns(data));
  for (int call = 0; call < 30; ++call) {
    adapter.adapt(data);
    data = rollout();
  }
  const double after = mean(rl::first_episode_returns(data));
  MESSAGE("navigation return " << before << " -> " << after);
  CHECK(after > before + 10);
}

TEST_CASE("the registry makes strategies by name and rejects unknown names, listing the known ones") {
  adapt::StrategyRegistry<Policy> registry;
  CHECK(registry.names() == std::vector<std::string>{"entropy", "hybrid", "maml_step", "none", "policy_gradient"});
  const auto message = test::message_of<InvalidArgument>([&] { (void)registry.make("tent"); });
  CHECK(message ==
        "adapt::StrategyRegistry::make: unknown strategy 'tent'; known: entropy, hybrid, maml_step, none, policy_gradient");
  // A user's strategy: minimise the squared logits of the first action (an arbitrary loss).
  registry.add("mine", [] {
    return adapt::DynamicStrategy<Policy>("mine", {}, [](const Policy& pi, ad::Tape<float>& tape, const Policy::VarParams& vars,
                                                         const adapt::AdaptationData<float>& data) {
      const auto dist = pi.distribution(vars, tape.constant(data.recent.observations), data.recent.envs,
                                        {.initial_state = tape.constant(data.recent.initial_state), .keep = data.recent.keep.data()});
      return ad::mean(ad::square(dist));
    });
  });
  auto pi = make_policy(16);
  const auto data = cartpole_batch(pi, 17);
  adapt::Adapter adapter(pi, registry.make("mine"), {.lr = 0.01});
  CHECK(adapter.adapt(data).applied);
  auto pi2 = make_policy(16);
  const auto before = values(pi2);
  adapt::Adapter none(pi2, registry.make("none"));
  CHECK_FALSE(none.adapt(data).applied);
  CHECK(distance(values(pi2), before) == 0.0);
}

TEST_CASE("the process-wide strategy registry works as env::make does; a local one keeps its additions") {
  adapt::add_strategy<Policy>("quiet", adapt::NoAdaptation{});
  CHECK(adapt::make_strategy<Policy>("quiet").name() == "none");
  adapt::StrategyRegistry<Policy> local;
  CHECK_THROWS_AS((void)local.make("quiet"), InvalidArgument);
  CHECK_THROWS_AS((void)adapt::make_strategy<Policy>("tent"), InvalidArgument);
}

TEST_CASE("maml_step is the meta-training inner step: one SGD call at inner_lr equals MetaTrainer's update") {
  using Nav = policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>>;
  Nav pi(nn::MlpCell<float>({.input = 2, .hidden = {16}}), policy::GaussianHead<float>({.input = 16, .actions = 2}), {},
         {}, 21);
  env::Navigation2D prototype;
  prototype.set_task({{0.3, 0.2}});
  env::EnvBatch<env::Navigation2D> batch(10, prototype, 22);
  std::mt19937_64 rng(23);
  Nav acting = pi;
  const auto data = rl::collect(acting, batch, 100, policy::ActMode::sample, rng);
  // What MetaTrainer's inner step does: a clone adapted once on the default algorithm's loss.
  meta::MamlLearner<float, Nav::Params> learner(pi.params(), {.inner_lr = 0.1, .first_order = true});
  ad::Tape<float> tape;
  const auto meta_vars = learner.meta_variables(tape);
  auto clone = learner.clone(meta_vars);
  const meta::Maml<> maml;
  clone.adapt(maml.loss(rl::evaluate(pi, tape, clone.params(), data), tape.constant(maml.advantages(data, 0.99, 1.0))));
  const auto expected = nn::flatten<float>(nn::values_of<float>(clone.params()));
  // The adapter with the strategy, plain SGD at the same rate, no guards.
  adapt::Adapter adapter(pi, adapt::MamlInnerStep{}, {.lr = 0.1, .optimizer = adapt::OptimizerKind::sgd,
                                                      .guards = {.max_grad_norm = off, .max_step = off, .trust_radius = off}});
  REQUIRE(adapter.adapt(data).applied);
  const auto adapted = nn::flatten<float>(pi.params());
  CHECK((adapted - expected).cwiseAbs().maxCoeff() <= 1e-6f * (1 + expected.cwiseAbs().maxCoeff()));
  CHECK((adapted - nn::flatten<float>(learner.params())).cwiseAbs().maxCoeff() > 1e-4f);  // it moved
}

TEST_CASE("episodic mode restores the initial parameters at the end of each episode") {
  auto pi = make_policy(18);
  const auto data = cartpole_batch(pi, 19);
  const auto initial = values(pi);
  adapt::Adapter adapter(pi, adapt::PolicyGradientAdaptation{}, {.lr = 0.05, .episodic = true});
  adapter.adapt(data);
  CHECK(distance(values(pi), initial) > 0);
  adapter.end_episode();
  CHECK(distance(values(pi), initial) == 0.0);
}

TEST_CASE("meta-features of known distributions") {
  adapt::MetaFeatures<double> monitor;
  const Matrix<double> uniform = Matrix<double>::Zero(4, 10);
  const Matrix<double> features = Matrix<double>::Ones(3, 10);
  const auto v = monitor.measure(uniform, true, features);
  CHECK(v.entropy == doctest::Approx(std::log(4.0)));
  CHECK(v.confidence == doctest::Approx(0.25));
  CHECK(v.variance == doctest::Approx(0.0));
  CHECK(v.feature_shift == 0.0);  // no statistics before the first batch
  const auto shifted = monitor.measure(uniform, true, Matrix<double>::Constant(3, 10, 3.0));
  // A constant feature is measured against std_floor x (1 + |mean|) = 2e-3: a move from 1 to 3 is
  // 1000 such spreads, a rounding-sized move almost nothing.
  CHECK(shifted.feature_shift == doctest::Approx(2.0 / 2e-3));
  adapt::MetaFeatures<double> still;
  (void)still.measure(uniform, true, features);
  CHECK(still.measure(uniform, true, Matrix<double>::Constant(3, 10, 1.0 + 1e-12)).feature_shift < 1e-8);
  CHECK(test::message_of<InvalidArgument>([] { adapt::MetaFeatures<double> bad(0.99, 0.0); }).find("std_floor 0") !=
        std::string::npos);
  Matrix<double> gaussian(2, 5);
  gaussian.row(0).setZero();
  gaussian.row(1).setConstant(std::log(2.0));
  const auto g = monitor.measure(gaussian, false, Matrix<double>::Ones(3, 5));
  CHECK(g.entropy == doctest::Approx(std::log(2.0) + 0.5 * std::log(2 * M_PI * M_E)));
  CHECK(g.variance == doctest::Approx(4.0));
  CHECK(g.confidence == doctest::Approx(1.0 / 3.0));
}

TEST_CASE("the experience buffer: ring and reservoir, uniform samples, a fixed memory bound") {
  const auto data = cartpole_batch(make_policy(20), 21, 4, 40);  // 4 envs x 40 steps: 40 segments of 4
  adapt::ExperienceBuffer<float> ring(4, 1, 16, {.capacity = 10, .segment_length = 4, .mode = adapt::BufferMode::ring});
  const auto bytes = ring.bytes();
  CHECK(bytes == sizeof(float) * 10 * (4 * (4 + 1 + 5) + 16));
  ring.add(data);
  CHECK(ring.size() == 10);
  CHECK(ring.segments_seen() == 40);
  CHECK(ring.bytes() == bytes);
  const auto s = ring.sample(3);
  CHECK(s.envs == 3);
  CHECK(s.steps == 4);
  CHECK(s.observations.cols() == 12);
  // The ring keeps the last 10 segments added: those of the fourth environment (added last).
  for (ad::Index c = 0; c < s.observations.cols(); ++c) {
    bool found = false;
    for (ad::Index k = 0; k < data.steps; ++k) found = found || s.observations.col(c) == data.observations.col(k * 4 + 3);
    CHECK(found);
  }
  adapt::ExperienceBuffer<float> reservoir(4, 1, 16, {.capacity = 10, .segment_length = 4, .mode = adapt::BufferMode::reservoir, .seed = 3});
  reservoir.add(data);
  CHECK(reservoir.size() == 10);
  CHECK(test::message_of<InvalidArgument>([] {
          adapt::ExperienceBuffer<float> empty(4, 1, 0);
          (void)empty.sample(1);
        }).find("must be positive and the buffer not empty") != std::string::npos);
}

TEST_CASE("a checkpoint with an experience buffer round-trips; a bad one changes neither") {
  const auto dir = fs::temp_directory_path() / "ssmrl_adapter_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto pi = make_policy(22);
  adapt::ExperienceBuffer<float> buffer(4, 1, 16, {.capacity = 6, .segment_length = 5});
  buffer.add(cartpole_batch(pi, 23, 3, 20));
  adapt::save_checkpoint(dir / "with_buffer.safetensors", pi, buffer, {{"note", "x"}});
  auto other = make_policy(24);
  adapt::ExperienceBuffer<float> restored(4, 1, 16, {.capacity = 6, .segment_length = 5, .seed = 99});
  const auto metadata = adapt::load_checkpoint(dir / "with_buffer.safetensors", other, restored);
  CHECK(metadata.at("note") == "x");
  CHECK(values(other) == values(pi));
  CHECK(restored.size() == buffer.size());
  CHECK(restored.segments_seen() == buffer.segments_seen());
  // A buffer of another shape: the load fails and leaves policy and buffer as they were.
  auto third = make_policy(25);
  adapt::ExperienceBuffer<float> wrong(4, 1, 16, {.capacity = 7, .segment_length = 5});
  const auto before = values(third);
  const auto message = test::message_of<InvalidArgument>(
      [&] { (void)adapt::load_checkpoint(dir / "with_buffer.safetensors", third, wrong); });
  CHECK(message.find("holds a buffer of capacity 6") != std::string::npos);
  CHECK(values(third) == before);
  CHECK(wrong.size() == 0);
  // A plain load of the same file reads the policy and leaves the buffer's tensors alone only when told.
  auto fourth = make_policy(26);
  CHECK(test::message_of<InvalidArgument>([&] { (void)io::load_checkpoint(dir / "with_buffer.safetensors", fourth); })
            .find("has tensor experience.") != std::string::npos);
  io::load_checkpoint(dir / "with_buffer.safetensors", fourth, {.other_prefixes = {"experience"}});
  CHECK(values(fourth) == values(pi));
}

TEST_CASE("the experience buffer keeps a squashing policy's samples apart from its actions, through a checkpoint") {
  auto t = cartpole_batch(make_policy(27), 28, 3, 20);
  t.samples = t.actions * 7.0f + Matrix<float>::Constant(1, t.columns(), 0.5f);  // stands for u before tanh
  adapt::ExperienceBuffer<float> buffer(4, 1, 16, {.capacity = 6, .segment_length = 5, .seed = 4});
  buffer.add(t);
  CHECK(buffer.holds_samples());
  auto check_pairs = [&](const rl::TrajectoryBatch<float>& s) {
    REQUIRE(s.samples.cols() == s.actions.cols());
    CHECK(s.samples == s.actions * 7.0f + Matrix<float>::Constant(1, s.columns(), 0.5f));
    CHECK(&s.sampled() == &s.samples);
  };
  check_pairs(buffer.sample(4));
  io::SafetensorsFile file;
  buffer.write_into(file);
  adapt::ExperienceBuffer<float> restored(4, 1, 16, {.capacity = 6, .segment_length = 5, .seed = 4});
  restored.read_from(file, "memory");
  CHECK(restored.holds_samples());
  check_pairs(restored.sample(4));
  // Batches with and without samples do not mix.
  auto plain = t;
  plain.samples.resize(0, 0);
  CHECK(test::message_of<InvalidArgument>([&] { buffer.add(plain); }).find("do not record samples") != std::string::npos);
  CHECK(buffer.size() == 6);
}

TEST_CASE("an experience buffer read from a hostile file is refused and left as it was") {
  auto pi = make_policy(31);
  adapt::ExperienceBuffer<float> buffer(4, 1, 16, {.capacity = 6, .segment_length = 5});
  buffer.add(cartpole_batch(pi, 32, 3, 20));
  io::SafetensorsFile file;
  buffer.write_into(file);
  auto refused = [&](const io::SafetensorsFile& f, const std::string& fragment) {
    adapt::ExperienceBuffer<float> target(4, 1, 16, {.capacity = 6, .segment_length = 5});
    const auto message = test::message_of<InvalidArgument>([&] { target.read_from(f, "hostile"); });
    INFO(message);
    CHECK(message.find(fragment) != std::string::npos);
    CHECK(target.size() == 0);
    CHECK(target.segments_seen() == 0);
  };
  // Bytes that disagree with the shape (a heap overflow before): in memory nothing else checks them.
  auto oversized = file;
  oversized.tensors[0].bytes.append(4096, '\0');
  refused(oversized, "holds " + std::to_string(oversized.tensors[0].bytes.size()) + " bytes of F32");
  auto words = file;
  words.metadata["ssmrl.buffer.size"] = "three";
  refused(words, "metadata ssmrl.buffer.size is 'three', not a count");
  auto inconsistent = file;
  inconsistent.metadata["ssmrl.buffer.seen"] = "0";
  refused(inconsistent, "do not fit a buffer of capacity 6");
  auto nan = file;
  for (auto& t : nan.tensors) {
    if (t.name == "experience.rewards") {
      const float bad = std::numeric_limits<float>::quiet_NaN();
      std::memcpy(t.bytes.data(), &bad, sizeof bad);
    }
  }
  refused(nan, "experience.rewards holds NaN or infinite values");
  auto flags = file;
  for (auto& t : flags.tensors) {
    if (t.name == "experience.keep") {
      const float two = 2;
      std::memcpy(t.bytes.data(), &two, sizeof two);
    }
  }
  refused(flags, "flags must be 0 or 1");
  adapt::ExperienceBuffer<float> fine(4, 1, 16, {.capacity = 6, .segment_length = 5});
  fine.read_from(file, "good");
  CHECK(fine.size() == buffer.size());
}

TEST_CASE("online adaptation: chunks joined in time equal one rollout; adapting every k steps on a window") {
  // Two chunks of 30 steps joined equal one rollout of 60 with the same seeds (GRU state carried,
  // episode starts at the boundary marked).
  auto one = make_policy(30);
  auto two = make_policy(30);
  env::EnvBatch<env::CartPole> batch_one(3, env::CartPole{}, 31);
  env::EnvBatch<env::CartPole> batch_two(3, env::CartPole{}, 31);
  one.set_num_envs(3);
  two.set_num_envs(3);
  std::mt19937_64 rng_one(32);
  std::mt19937_64 rng_two(32);
  const auto whole = rl::collect(one, batch_one, 60, policy::ActMode::sample, rng_one);
  const auto first = rl::collect(two, batch_two, 30, policy::ActMode::sample, rng_two);
  const auto second = rl::collect(two, batch_two, 30, policy::ActMode::sample, rng_two);
  const auto joined = adapt::concat_in_time(first, second);
  CHECK(joined.steps == 60);
  CHECK(joined.observations == whole.observations);
  CHECK(joined.actions == whole.actions);
  CHECK(joined.keep == whole.keep);
  CHECK(joined.initial_state == whole.initial_state);
  // Without adaptation, the online run is the plain rollout; with it, the policy changes on the way.
  for (const bool adapting : {false, true}) {
    auto pi = make_policy(33);
    auto reference = make_policy(33);
    env::EnvBatch<env::CartPole> batch(4, env::CartPole{}, 34);
    env::EnvBatch<env::CartPole> reference_batch(4, env::CartPole{}, 34);
    pi.set_num_envs(4);
    reference.set_num_envs(4);
    std::mt19937_64 rng(35);
    std::mt19937_64 reference_rng(35);
    adapt::StrategyRegistry<Policy> registry;
    adapt::Adapter adapter(pi, registry.make(adapting ? "policy_gradient" : "none"), {.lr = 0.01});
    const auto online = adapt::run_online(adapter, pi, batch, {.steps = 100, .every = 20, .window = 40},
                                          policy::ActMode::sample, rng);
    const auto plain = rl::collect(reference, reference_batch, 100, policy::ActMode::sample, reference_rng);
    CHECK(adapter.log().size() == 5);
    CAPTURE(adapting);
    CHECK(online.steps == 100);
    if (adapting) {
      CHECK(values(pi) != values(reference));
      CHECK(online.actions != plain.actions);
    } else {
      CHECK(online.actions == plain.actions);
      CHECK(values(pi) == values(reference));
    }
  }
}
