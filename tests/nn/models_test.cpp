// Cells, heads and policies: concepts (compile time), inference steps against the training path,
// the fused scan against the node-per-step path, per-environment state, parameter utilities.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/ssmrl.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "support/errors.hpp"
#include "support/random.hpp"

using namespace ssmrl;
using ad::Matrix;
using ad::Tape;
using ad::Var;
using test::random_matrix;

// ---- compile-time: the right types satisfy the concepts, near misses do not ----

static_assert(Backend<backend::Cpu>);
static_assert(nn::Cell<nn::DenseSsmCell<double>>);
static_assert(nn::Cell<nn::DenseSsmCell<float>>);
static_assert(nn::Cell<nn::DiagSsmCell<double>>);
static_assert(nn::Cell<nn::MlpSsmCell<float>>);
static_assert(nn::Cell<nn::GruCell<double>>);
static_assert(nn::Cell<nn::LstmCell<float>>);
static_assert(nn::Cell<nn::MlpCell<double>>);
using GaussianSsmPolicy = policy::RecurrentPolicy<nn::DiagSsmCell<double>, policy::GaussianHead<double>,
                                                  nn::LayerNorm<double>, policy::ValueHead<double>>;
static_assert(policy::Policy<policy::RecurrentPolicy<nn::GruCell<double>, policy::CategoricalHead<double>>>);
static_assert(policy::Policy<GaussianSsmPolicy>);

namespace near_misses {
// Everything a cell needs but the opt-in: structure alone does not make a Cell.
struct UnregisteredCell : nn::DenseSsmCell<double> {
  using nn::DenseSsmCell<double>::DenseSsmCell;
};
// Registered, but without a training path.
struct NoSequenceCell {
  using scalar_type = double;
  using backend_type = backend::Cpu;
  template <class T>
  using params_type = nn::DenseSsmParams<T>;
  struct workspace_type {};
  ad::Index input_size() const { return 1; }
  ad::Index state_size() const { return 1; }
  ad::Index output_size() const { return 1; }
  params_type<Matrix<double>> init_params(nn::init::Rng&) const { return {}; }
  void check_shapes(const params_type<Matrix<double>>&) const {}
  workspace_type make_workspace(ad::Index) const { return {}; }
  void step(const params_type<Matrix<double>>&, Eigen::Ref<Matrix<double>>, Eigen::Ref<const Matrix<double>>,
            Eigen::Ref<Matrix<double>>, workspace_type&) const {}
};
struct NotABackend {
  static constexpr const char* name = "nowhere";
  template <class S>
  using matrix = Matrix<S>;
};
}  // namespace near_misses
template <>
inline constexpr bool ssmrl::nn::enable_cell<near_misses::NoSequenceCell> = true;
static_assert(!nn::Cell<near_misses::UnregisteredCell>);
static_assert(!nn::Cell<near_misses::NoSequenceCell>);
static_assert(!nn::Cell<int>);
static_assert(!Backend<near_misses::NotABackend>);
static_assert(!policy::Policy<nn::GruCell<double>>);

// ---- runtime ----

namespace {

// Runs `steps` inference steps and returns the outputs side by side (output x T*batch), resetting
// sample b before step t where keep is 0.
template <class CellT>
Matrix<double> step_by_step(const CellT& cell, const typename CellT::Params& p, const Matrix<double>& inputs,
                            ad::Index batch, const Matrix<double>& initial, const Matrix<double>* keep) {
  const ad::Index steps = inputs.cols() / batch;
  Matrix<double> state = initial;
  Matrix<double> out(cell.output_size(), inputs.cols());
  Matrix<double> y(cell.output_size(), batch);
  auto ws = cell.make_workspace(batch);
  for (ad::Index t = 0; t < steps; ++t) {
    for (ad::Index b = 0; b < batch; ++b) {
      if (keep != nullptr && (*keep)(0, t * batch + b) == 0) state.col(b).setZero();
    }
    cell.step(p, state, inputs.middleCols(t * batch, batch), y, ws);
    out.middleCols(t * batch, batch) = y;
  }
  return out;
}

template <class CellT>
void check_inference_matches_training(const CellT& cell, std::uint64_t seed) {
  nn::init::Rng rng(seed);
  const auto p = cell.init_params(rng);
  const ad::Index batch = 3;
  const ad::Index steps = 6;
  const auto inputs = random_matrix(cell.input_size(), batch * steps, seed + 1);
  const auto initial = random_matrix(cell.state_size(), batch, seed + 2);
  Matrix<double> keep = Matrix<double>::Ones(1, batch * steps);
  keep(0, 2 * batch + 1) = 0;  // sample 1 restarts at step 2
  keep(0, 4 * batch + 0) = 0;  // sample 0 at step 4
  keep(0, 0 * batch + 2) = 0;  // sample 2 ignores its initial state
  Tape<double> tape;
  const auto training = cell.forward_sequence(nn::on_tape(tape, p), tape.constant(inputs), batch,
                                              {.initial_state = tape.constant(initial), .keep = keep.data()});
  const auto inference = step_by_step(cell, p, inputs, batch, initial, &keep);
  CHECK((training.value() - inference).cwiseAbs().maxCoeff() < 1e-12);
  // Without options: a zero initial state and no restarts.
  const auto plain = cell.forward_sequence(nn::on_tape(tape, p), tape.constant(inputs), batch);
  const auto plain_steps = step_by_step(cell, p, inputs, batch, Matrix<double>::Zero(cell.state_size(), batch), nullptr);
  CHECK((plain.value() - plain_steps).cwiseAbs().maxCoeff() < 1e-12);
}

}  // namespace

TEST_CASE("each cell's inference step reproduces its training path, with restarts and an initial state") {
  check_inference_matches_training(nn::DenseSsmCell<double>({.input = 3, .state = 5, .output = 4}), 10);
  check_inference_matches_training(
      nn::DenseSsmCell<double>({.input = 3, .state = 5, .output = 4, .activation = nn::Activation::identity,
                                .readout_bias = false}),
      11);
  check_inference_matches_training(nn::DiagSsmCell<double>({.input = 3, .state = 5, .output = 4}), 12);
  check_inference_matches_training(nn::DiagSsmCell<double>({.input = 3, .state = 5, .output = 4, .scan = false}), 13);
  check_inference_matches_training(nn::MlpSsmCell<double>({.input = 3, .state = 5, .output = 4, .hidden = 7}), 14);
  check_inference_matches_training(nn::GruCell<double>({.input = 3, .hidden = 4}), 15);
  check_inference_matches_training(nn::LstmCell<double>({.input = 3, .hidden = 4}), 16);
  check_inference_matches_training(nn::MlpCell<double>({.input = 3, .hidden = {5, 4}}), 17);
}

TEST_CASE("the diagonal SSM's fused scan agrees with the node-per-step path, values and gradients") {
  for (const auto init : {nn::DiagSsmInit::s4d_real, nn::DiagSsmInit::s4d_lin, nn::DiagSsmInit::s5}) {
    const nn::DiagSsmCell<double> scan({.input = 4, .state = 16, .output = 8, .init = init});
    const nn::DiagSsmCell<double> steps({.input = 4, .state = 16, .output = 8, .init = init, .scan = false});
    nn::init::Rng rng(20);
    const auto p = scan.init_params(rng);
    const ad::Index batch = 4;
    const auto inputs = random_matrix(4, batch * 100, 21);
    Matrix<double> keep = Matrix<double>::Ones(1, batch * 100);
    keep(0, 37 * batch + 2) = 0;
    const auto weights = random_matrix(8, batch * 100, 22);
    auto run = [&](const nn::DiagSsmCell<double>& cell, Tape<double>& tape) {
      const auto vars = nn::on_tape(tape, p);
      const auto y = cell.forward_sequence(vars, tape.constant(inputs), batch, {.keep = keep.data()});
      tape.backward(ad::sum(ad::mul(y, tape.constant(weights))));
      return std::pair{Matrix<double>(y.value()), nn::to_list<Matrix<double>>(nn::gradients_of<double>(vars))};
    };
    Tape<double> t1;
    Tape<double> t2;
    const auto [y_scan, g_scan] = run(scan, t1);
    const auto [y_steps, g_steps] = run(steps, t2);
    CHECK((y_scan - y_steps).cwiseAbs().maxCoeff() <= 1e-10 * y_steps.cwiseAbs().maxCoeff());
    for (std::size_t i = 0; i < g_scan.size(); ++i) {
      CHECK((g_scan[i] - g_steps[i]).cwiseAbs().maxCoeff() <= 1e-10 * g_steps[i].cwiseAbs().maxCoeff());
    }
    CHECK(t1.size() < t2.size() / 10);  // one scan node against hundreds
  }
}

TEST_CASE("the diagonal SSM's input matrix keeps its digits in float where dt * a is tiny (expm1)") {
  // dt * a = -1e-6: (exp(dt a) - 1) / a in float cancels to about 5% of dt; expm1 keeps 1e-6.
  const nn::DiagSsmCell<float> cell({.input = 1, .state = 1, .output = 1, .activation = nn::Activation::identity,
                                     .readout_bias = false});
  nn::init::Rng rng(3);
  auto p = cell.init_params(rng);
  p.log_a.setConstant(0.0f);                        // a = -1
  p.log_dt.setConstant(std::log(1e-6f));           // dt = 1e-6
  p.B.setConstant(1.0f);
  p.C.setConstant(1.0f);
  p.D.setConstant(0.0f);
  const double exact = -std::expm1(-1e-6);         // h_1 = bbar * x with x = 1, a = -1
  // the inference step
  Matrix<float> state = Matrix<float>::Zero(1, 1);
  Matrix<float> out(1, 1);
  auto ws = cell.make_workspace(1);
  cell.step(p, state, Matrix<float>::Ones(1, 1), out, ws);
  CHECK(out(0, 0) == doctest::Approx(exact).epsilon(1e-5));
  // the training path
  Tape<float> tape;
  const auto y = cell.forward_sequence(nn::on_tape(tape, p), tape.constant(Matrix<float>::Ones(1, 1)), 1);
  CHECK(y.value()(0, 0) == doctest::Approx(exact).epsilon(1e-5));
}

TEST_CASE("cells pass gradcheck on short sequences, first and second order") {
  auto check = [](const auto& cell, std::uint64_t seed) {
    using CellT = std::remove_cvref_t<decltype(cell)>;
    nn::init::Rng rng(seed);
    const auto p = cell.init_params(rng);
    const auto params = nn::to_list<Matrix<double>>(p);
    std::vector<Matrix<double>> inputs = params;
    inputs.push_back(random_matrix(cell.input_size(), 2 * 3, seed + 1));
    Matrix<double> keep = Matrix<double>::Ones(1, 6);
    keep(0, 4) = 0;
    const auto result = ad::gradcheck(
        [&](Tape<double>&, std::span<const Var<double>> x) {
          const std::vector<Var<double>> param_vars(x.begin(), x.end() - 1);
          return cell.forward_sequence(nn::from_list(nn::on_tape(x[0].tape(), p), param_vars), x.back(), 2,
                                       {.keep = keep.data()});
        },
        inputs);
    INFO(typeid(CellT).name() << ": " << result.report);
    CHECK(result.passed);
  };
  check(nn::DenseSsmCell<double>({.input = 2, .state = 3, .output = 2}), 30);
  check(nn::DiagSsmCell<double>({.input = 2, .state = 3, .output = 2}), 31);
  check(nn::MlpSsmCell<double>({.input = 2, .state = 3, .output = 2, .hidden = 4}), 32);
  check(nn::GruCell<double>({.input = 2, .hidden = 3}), 33);
  check(nn::LstmCell<double>({.input = 2, .hidden = 3}), 34);
  check(nn::MlpCell<double>({.input = 2, .hidden = {3, 2}}), 35);
}

TEST_CASE("layer norm matches its definition and passes gradcheck") {
  const nn::LayerNorm<double> norm(5);
  nn::init::Rng rng(40);
  auto p = norm.init_params(rng);
  p.scale = random_matrix(5, 1, 41, 0.5, 1.5);
  p.shift = random_matrix(5, 1, 42);
  const auto x = random_matrix(5, 3, 43);
  Tape<double> tape;
  const Matrix<double> y = norm.forward(nn::on_tape(tape, p), tape.constant(x)).value();
  Matrix<double> in_place = x;
  norm.apply(p, in_place);
  CHECK((y - in_place).cwiseAbs().maxCoeff() < 1e-12);
  const Eigen::VectorXd col = x.col(1);
  const double mean = col.mean();
  const double var = (col.array() - mean).square().mean();
  CHECK(y(2, 1) == doctest::Approx((col(2) - mean) / std::sqrt(var + 1e-5) * p.scale(2, 0) + p.shift(2, 0)));
  const auto result = ad::gradcheck(
      [&](Tape<double>&, std::span<const Var<double>> v) { return norm.forward({v[0], v[1]}, v[2]); },
      {p.scale, p.shift, x});
  INFO(result.report);
  CHECK(result.passed);
}

TEST_CASE("a batched rollout with per-environment resets acts as each environment alone") {
  auto make = [] {
    return GaussianSsmPolicy(nn::DiagSsmCell<double>({.input = 3, .state = 8, .output = 6}),
                             policy::GaussianHead<double>({.input = 6, .actions = 2}), nn::LayerNorm<double>(6),
                             policy::ValueHead<double>(6), 50);
  };
  constexpr ad::Index envs = 3;
  constexpr int steps = 12;
  auto batched = make();
  batched.set_num_envs(envs);
  std::vector<GaussianSsmPolicy> alone;
  for (ad::Index e = 0; e < envs; ++e) {
    alone.push_back(make());
    alone.back().set_num_envs(1);
  }
  const auto observations = random_matrix(3, envs * steps, 51);
  const std::vector<std::pair<int, ad::Index>> resets{{3, 0}, {5, 2}, {5, 1}, {9, 0}};
  std::mt19937_64 rng(52);
  for (int t = 0; t < steps; ++t) {
    for (const auto& [when, env] : resets) {
      if (when == t) {
        batched.reset(env);
        alone[static_cast<std::size_t>(env)].reset(0);
      }
    }
    const Matrix<double> obs = observations.middleCols(t * envs, envs);
    const auto step = batched.act(obs, policy::ActMode::greedy, rng);
    for (ad::Index e = 0; e < envs; ++e) {
      const auto single = alone[static_cast<std::size_t>(e)].act(obs.col(e), policy::ActMode::greedy, rng);
      CHECK((step.actions.col(e) - single.actions.col(0)).cwiseAbs().maxCoeff() < 1e-12);
      CHECK(std::abs(step.log_prob(0, e) - single.log_prob(0, 0)) < 1e-12);
      CHECK(std::abs(step.value(0, e) - single.value(0, 0)) < 1e-12);
    }
  }
  CHECK_THROWS_AS(batched.reset(envs), InvalidArgument);
}

TEST_CASE("the log-probabilities of acting and of evaluation agree") {
  auto check = [](auto policy, ad::Index obs_size) {
    const ad::Index envs = 4;
    const int steps = 5;
    policy.set_num_envs(envs);
    std::mt19937_64 rng(60);
    const auto observations = random_matrix(obs_size, envs * steps, 61);
    Matrix<double> actions(policy.action_size(), envs * steps);
    Matrix<double> log_probs(1, envs * steps);
    for (int t = 0; t < steps; ++t) {
      const auto step = policy.act(observations.middleCols(t * envs, envs), policy::ActMode::sample, rng);
      actions.middleCols(t * envs, envs) = step.samples.size() > 0 ? step.samples : step.actions;
      log_probs.middleCols(t * envs, envs) = step.log_prob;
    }
    Tape<double> tape;
    const auto e = policy.evaluate(nn::on_tape(tape, policy.params()), tape.constant(observations), envs, actions);
    CHECK((e.log_prob.value() - log_probs).cwiseAbs().maxCoeff() < 1e-9);
  };
  using namespace ssmrl::policy;
  check(RecurrentPolicy<nn::GruCell<double>, CategoricalHead<double>>(nn::GruCell<double>({.input = 3, .hidden = 5}),
                                                                      CategoricalHead<double>(5, 4), {}, {}, 1),
        3);
  check(RecurrentPolicy<nn::DenseSsmCell<double>, GaussianHead<double, GaussianStd::state_dependent>>(
            nn::DenseSsmCell<double>({.input = 2, .state = 4, .output = 5}),
            GaussianHead<double, GaussianStd::state_dependent>({.input = 5, .actions = 2, .squash = true}), {}, {}, 2),
        2);
  check(RecurrentPolicy<nn::LstmCell<double>, GaussianHead<double>>(
            nn::LstmCell<double>({.input = 2, .hidden = 3}),
            GaussianHead<double>({.input = 3, .actions = 2, .initial_log_std = -0.5}), {}, {}, 3),
        2);
}

TEST_CASE("a squashed Gaussian's rollout log-probabilities survive replay for means up to 20, in float") {
  using Head = policy::GaussianHead<float>;
  using Squashed = policy::RecurrentPolicy<nn::MlpCell<float>, Head>;
  const ad::Index envs = 64;
  for (const float mean : {0.0f, 2.0f, 8.0f, 20.0f, -20.0f}) {
    Squashed pi(nn::MlpCell<float>({.input = 3, .hidden = {4}}), Head({.input = 4, .actions = 2, .squash = true}), {}, {}, 7);
    pi.params().head.mean.W.setZero();
    pi.params().head.mean.b.setConstant(mean);  // every action's mean, whatever the observation
    pi.set_num_envs(envs);
    std::mt19937_64 rng(8);
    const ad::Matrix<float> observations = random_matrix(3, envs, 9).cast<float>();
    const auto step = pi.act(observations, policy::ActMode::sample, rng);
    REQUIRE(step.samples.cols() == envs);
    CHECK(step.actions.cwiseAbs().maxCoeff() <= 1.0f);
    ad::Tape<float> tape;
    const auto e = pi.evaluate(nn::on_tape(tape, pi.params()), tape.constant(observations), envs, step.samples);
    CAPTURE(mean);
    CHECK(step.log_prob.allFinite());
    CHECK((e.log_prob.value() - step.log_prob).cwiseAbs().maxCoeff() < 1e-5);
  }
  // log(1 - tanh(u)^2) neither overflows nor loses the tail, in float, far beyond u = -44.
  for (const double u : {-200.0, -44.5, -9.0, 0.0, 9.0, 44.5, 200.0}) {
    const double exact = 2 * (std::log(2.0) - std::abs(u) - std::log1p(std::exp(-2 * std::abs(u))));
    CAPTURE(u);
    CHECK(Head::log_squash_derivative(static_cast<float>(u)) == doctest::Approx(exact).epsilon(1e-6));
  }
}

TEST_CASE("a Gaussian head's log-std is clamped to its range: acting and evaluation agree, no gradient beyond it") {
  using Head = policy::GaussianHead<double>;
  policy::RecurrentPolicy<nn::MlpCell<double>, Head> pi(nn::MlpCell<double>({.input = 2, .hidden = {3}}),
                                                        Head({.input = 3, .actions = 1, .log_std_min = -5, .log_std_max = 1}),
                                                        {}, {}, 4);
  const ad::Matrix<double> observations = random_matrix(2, 1, 5);
  for (const double log_std : {7.0, -9.0, 0.5}) {
    pi.params().head.log_std.setConstant(log_std);
    std::mt19937_64 rng(6);
    const auto step = pi.act(observations, policy::ActMode::sample, rng);
    ad::Tape<double> tape;
    const auto vars = nn::on_tape(tape, pi.params());
    const auto e = pi.evaluate(vars, tape.constant(observations), 1, step.actions);
    CHECK(std::abs(e.log_prob.value()(0, 0) - step.log_prob(0, 0)) < 1e-12);
    const double used = std::clamp(log_std, -5.0, 1.0);
    CHECK(e.entropy.item() == doctest::Approx(used + 0.5 * std::log(2 * M_PI * M_E)));
    tape.backward(ad::sum(e.log_prob));
    CAPTURE(log_std);
    CHECK((vars.head.log_std.grad()(0, 0) == 0.0) == (used != log_std));
  }
  CHECK(test::message_of<InvalidArgument>([] { Head({.input = 3, .actions = 1, .initial_log_std = 3}); })
            .find("initial_log_std 3 must lie in [log_std_min, log_std_max] = [-20, 2]") != std::string::npos);
}

TEST_CASE("parameters are named, filtered, flattened and checked") {
  auto policy = GaussianSsmPolicy(nn::DiagSsmCell<double>({.input = 3, .state = 8, .output = 6}),
                                  policy::GaussianHead<double>({.input = 6, .actions = 2}), nn::LayerNorm<double>(6),
                                  policy::ValueHead<double>(6), 70);
  const std::vector<std::string> expected{"cell.log_a", "cell.log_dt", "cell.B",      "cell.C",
                                          "cell.D",     "cell.c",      "norm.scale",  "norm.shift",
                                          "head.mean.W", "head.mean.b", "head.log_std", "value.W",
                                          "value.b"};
  CHECK(nn::parameter_names(policy.params()) == expected);
  const auto norm_only = nn::select_parameters<double>(policy.params(), {"norm.*"});
  REQUIRE(norm_only.size() == 2);
  CHECK(norm_only[0].name == "norm.scale");
  const auto no_cell = nn::select_parameters<double>(policy.params(), {}, {"cell.*", "*.b"});
  CHECK(no_cell.size() == 5);
  CHECK(nn::glob_match("head.*.W", "head.mean.W"));
  CHECK_FALSE(nn::glob_match("head.?.W", "head.mean.W"));

  const auto flat = nn::flatten<double>(policy.params());
  CHECK(flat.size() == nn::parameter_count(policy.params()));
  auto copy = policy.params();
  nn::unflatten(copy, Eigen::VectorXd(flat * 2.0));
  CHECK(copy.cell.B.isApprox(2.0 * policy.params().cell.B));
  CHECK_THROWS_AS(nn::unflatten(copy, Eigen::VectorXd(flat.head(3))), InvalidArgument);

  auto wrong = policy.params();
  wrong.head.mean.W.resize(3, 3);
  const auto before = policy.params().head.mean.W;
  try {
    policy.set_params(wrong);
    FAIL("set_params accepted a wrong shape");
  } catch (const InvalidArgument& e) {
    CHECK(std::string(e.what()).find("head.mean.W is 3x3, expected 2x6") != std::string::npos);
  }
  CHECK(policy.params().head.mean.W == before);
}

TEST_CASE("orthogonal initialisation is orthogonal") {
  nn::init::Rng rng(80);
  const auto tall = nn::init::orthogonal<double>(7, 4, rng);
  CHECK((tall.transpose() * tall - Matrix<double>::Identity(4, 4)).cwiseAbs().maxCoeff() < 1e-12);
  const auto wide = nn::init::orthogonal<double>(3, 6, rng, 2.0);
  CHECK((wide * wide.transpose() - 4.0 * Matrix<double>::Identity(3, 3)).cwiseAbs().maxCoeff() < 1e-12);
}

TEST_CASE("cells reject bad input with the shapes in the message") {
  const nn::GruCell<double> gru({.input = 3, .hidden = 4});
  Tape<double> tape;
  nn::init::Rng rng(90);
  const auto p = nn::on_tape(tape, gru.init_params(rng));
  try {
    (void)gru.forward_sequence(p, tape.constant(Matrix<double>::Zero(2, 6)), 2);
    FAIL("accepted 2 input rows");
  } catch (const InvalidArgument& e) {
    CHECK(std::string(e.what()) == "GruCell::forward_sequence: inputs have 2 rows, the cell expects 3 (input_size)");
  }
  CHECK_THROWS_AS((void)gru.forward_sequence(p, tape.constant(Matrix<double>::Zero(3, 7)), 2), InvalidArgument);
  CHECK_THROWS_AS(nn::DenseSsmCell<double>({.input = 0, .state = 1, .output = 1}), InvalidArgument);
}
