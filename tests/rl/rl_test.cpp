// Rollouts, advantages, the linear feature baseline and the losses.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/ssmrl.hpp>

#include "support/random.hpp"

using namespace ssmrl;
using ad::Matrix;

namespace {

// One environment, four steps, built by hand.
rl::TrajectoryBatch<double> four_steps(bool truncate_instead) {
  rl::TrajectoryBatch<double> t;
  t.envs = 1;
  t.steps = 4;
  t.observations = Matrix<double>::Zero(1, 4);
  t.rewards = (Matrix<double>(1, 4) << 1, 2, 3, 4).finished();
  t.terminated = Matrix<double>::Zero(1, 4);
  t.truncated = Matrix<double>::Zero(1, 4);
  (truncate_instead ? t.truncated : t.terminated)(0, 1) = 1;
  t.bootstrap = Matrix<double>::Zero(1, 4);
  if (truncate_instead) t.bootstrap(0, 1) = 0.7;
  t.keep = (Matrix<double>(1, 4) << 1, 1, 0, 1).finished();
  t.values = (Matrix<double>(1, 4) << 0.5, 0.4, 0.3, 0.2).finished();
  t.last_values = Matrix<double>::Constant(1, 1, 0.1);
  return t;
}

}  // namespace

TEST_CASE("GAE, returns and normalisation against hand computation") {
  const auto terminated = rl::gae(four_steps(false), 0.9, 0.8);
  // delta_3 = 4 + 0.9 * 0.1 - 0.2; delta_2 = 3 + 0.9 * 0.2 - 0.3, A_2 = delta_2 + 0.72 A_3;
  // step 1 terminates: A_1 = 2 - 0.4; A_0 = (1 + 0.9 * 0.4 - 0.5) + 0.72 A_1.
  CHECK(terminated.advantages(0, 3) == doctest::Approx(3.89));
  CHECK(terminated.advantages(0, 2) == doctest::Approx(5.6808));
  CHECK(terminated.advantages(0, 1) == doctest::Approx(1.6));
  CHECK(terminated.advantages(0, 0) == doctest::Approx(2.012));
  CHECK(terminated.returns(0, 0) == doctest::Approx(2.512));
  const auto truncated = rl::gae(four_steps(true), 0.9, 0.8);
  CHECK(truncated.advantages(0, 1) == doctest::Approx(2 + 0.9 * 0.7 - 0.4));
  CHECK(truncated.advantages(0, 0) == doctest::Approx(0.86 + 0.72 * 2.23));
  const auto returns = rl::discounted_returns(four_steps(false), 0.9);
  CHECK(returns(0, 0) == doctest::Approx(2.8));
  CHECK(returns(0, 1) == doctest::Approx(2.0));
  CHECK(returns(0, 2) == doctest::Approx(6.6));
  CHECK(returns(0, 3) == doctest::Approx(4.0));
  const auto z = rl::normalized(returns);
  CHECK(z.mean() == doctest::Approx(0.0).epsilon(1e-12));
  CHECK(std::sqrt(z.array().square().mean()) == doctest::Approx(1.0).epsilon(1e-6));
  CHECK_THROWS_AS(rl::gae(four_steps(false), 1.5, 0.8), InvalidArgument);
  // Values may be Eigen expressions, and normalisation takes them too.
  const auto batch = four_steps(true);
  const ad::Matrix<double> values = ad::Matrix<double>::Constant(1, 4, 0.25);
  const auto from_expression = rl::gae(batch, values * 2.0, ad::Matrix<double>::Zero(1, 1), 0.9, 0.8);
  const auto from_matrix = rl::gae(batch, ad::Matrix<double>(values * 2.0), ad::Matrix<double>(ad::Matrix<double>::Zero(1, 1)), 0.9, 0.8);
  CHECK(from_expression.advantages == from_matrix.advantages);
  CHECK(rl::normalized(returns * 3.0) == rl::normalized(ad::Matrix<double>(returns * 3.0)));
  // A constant batch normalises to zero. Seven entries of 0.1f have a computed mean off by a rounding
  // residual (7.5e-9 in g++ 12's Release build), which the plain formula divided by itself plus 1e-8
  // into -0.43 for every entry.
  CHECK(rl::normalized(ad::Matrix<float>(ad::Matrix<float>::Constant(1, 7, 0.1f))).isZero(0));
  CHECK(rl::normalized(ad::Matrix<double>(ad::Matrix<double>::Constant(3, 2, -4.5))).isZero(0));
}

TEST_CASE("a rollout records what training needs: evaluation reproduces the rollout's log-probabilities") {
  using Policy = policy::RecurrentPolicy<nn::GruCell<double>, policy::CategoricalHead<double>, nn::NoNorm<double>,
                                         policy::ValueHead<double>>;
  Policy pi(nn::GruCell<double>({.input = 4, .hidden = 8}), policy::CategoricalHead<double>(8, 2), {},
            policy::ValueHead<double>(8), 1);
  // Short time limits, so that the rollout holds terminations and truncations.
  env::EnvBatch<env::CartPole> batch(4, env::CartPole({}, 15), 2);
  std::mt19937_64 rng(3);
  for (int round = 0; round < 2; ++round) {  // the second continues from the first's states
    const auto t = rl::collect(pi, batch, 40, policy::ActMode::sample, rng);
    CHECK(t.columns() == 160);
    CHECK(t.truncated.sum() > 0);
    CHECK(t.terminated.sum() + t.truncated.sum() == static_cast<double>(t.finished_returns.size()));
    for (ad::Index c = 0; c < t.columns(); ++c) {
      if (t.truncated(0, c) == 0) CHECK(t.bootstrap(0, c) == 0);
    }
    if (round == 1) CHECK(t.initial_state.cwiseAbs().maxCoeff() > 0);
    ad::Tape<double> tape;
    const auto e = rl::evaluate(pi, tape, nn::on_tape(tape, pi.params()), t);
    CHECK((e.log_prob.value() - t.log_probs).cwiseAbs().maxCoeff() < 1e-10);
    CHECK((e.value.value() - t.values).cwiseAbs().maxCoeff() < 1e-10);
    const auto adv = rl::gae(t, 0.99, 0.95);
    CHECK(adv.advantages.allFinite());
  }
}

TEST_CASE("the linear feature baseline solves its regularised least squares") {
  env::EnvBatch<env::Navigation2D> batch(5, env::Navigation2D({.goal = {0.2, -0.3}}), 4);
  using Policy = policy::RecurrentPolicy<nn::DenseSsmCell<double>, policy::GaussianHead<double>>;
  Policy pi(nn::DenseSsmCell<double>({.input = 2, .state = 4, .output = 4}),
            policy::GaussianHead<double>({.input = 4, .actions = 2, .initial_log_std = -2}), {}, {}, 5);
  std::mt19937_64 rng(6);
  const auto t = rl::collect(pi, batch, 120, policy::ActMode::sample, rng);
  rl::LinearFeatureBaseline<double> baseline(1e-5);
  CHECK(baseline.predict(t).isZero());
  baseline.fit(t, 0.99);
  const Matrix<double> f = rl::LinearFeatureBaseline<double>::features(t);
  CHECK(f.rows() == 2 * 2 + 4);
  const Matrix<double> returns = rl::discounted_returns(t, 0.99);
  const Matrix<double> residual = returns - baseline.predict(t);
  // Normal equations: F (R - F^T w) = reg w.
  CHECK((f * residual.transpose() - 1e-5 * baseline.weights()).cwiseAbs().maxCoeff() < 1e-6);
  // With a constant among the features, the fit does better than the mean return.
  CHECK(residual.squaredNorm() < (returns.array() - returns.mean()).matrix().squaredNorm());
}

TEST_CASE("the linear feature baseline in float fits as it does in double (normal equations in double)") {
  // 2000 columns of 2D navigation: a float Gram matrix put the float fit 0.018 away from the double one.
  env::EnvBatch<env::Navigation2D> batch(20, env::Navigation2D({.goal = {0.4, -0.3}}), 4);
  using Policy = policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>>;
  Policy pi(nn::MlpCell<float>({.input = 2, .hidden = {8}}), policy::GaussianHead<float>({.input = 8, .actions = 2}),
            {}, {}, 5);
  std::mt19937_64 rng(6);
  const auto t = rl::collect(pi, batch, 100, policy::ActMode::sample, rng);
  auto td = rl::sized_trajectory_batch<double>(t.observations.rows(), t.actions.rows(), t.envs, t.steps);
  td.observations = t.observations.cast<double>();
  td.rewards = t.rewards.cast<double>();
  td.keep = t.keep.cast<double>();
  td.terminated = t.terminated.cast<double>();
  td.truncated = t.truncated.cast<double>();
  rl::LinearFeatureBaseline<float> in_float;
  in_float.fit(t, 0.99);
  rl::LinearFeatureBaseline<double> in_double;
  in_double.fit(td, 0.99);
  const Matrix<double> expected = in_double.predict(td);
  const double error = (in_float.predict(t).cast<double>() - expected).cwiseAbs().maxCoeff();
  CHECK(error < 5e-6 * expected.cwiseAbs().maxCoeff());
}

TEST_CASE("PPO's clipped surrogate and A2C's loss") {
  ad::Tape<double> tape;
  const auto lp = tape.variable((Matrix<double>(1, 4) << -0.5, -1.0, -0.2, -2.0).finished());
  const auto adv = tape.constant((Matrix<double>(1, 4) << 1.0, -2.0, 0.5, 3.0).finished());
  // Equal to the old log-probabilities: the surrogate is -mean(A).
  CHECK(rl::ppo_clip_loss(lp, tape.constant(lp.value()), adv, 0.2).item() == doctest::Approx(-0.625));
  // Ratios of e^1 and e^-1 are clipped to 1.2 and 0.8 where that lowers the objective.
  const auto old = tape.constant((Matrix<double>(1, 4) << -1.5, -1.0, 0.8, -2.0).finished());
  const double r0 = std::min(std::exp(1.0) * 1.0, 1.2 * 1.0);
  const double r2 = std::min(std::exp(-1.0) * 0.5, 0.8 * 0.5);
  CHECK(rl::ppo_clip_loss(lp, old, adv, 0.2).item() == doctest::Approx(-(r0 - 2.0 + r2 + 3.0) / 4));
  const auto result = ad::gradcheck(
      [&](ad::Tape<double>& t, std::span<const ad::Var<double>> x) {
        return rl::ppo_clip_loss(x[0], t.constant(old.value()), t.constant(adv.value()), 0.2);
      },
      {Matrix<double>(lp.value())}, {.second_order = false});
  INFO(result.report);
  CHECK(result.passed);
  const auto v = tape.constant((Matrix<double>(1, 4) << 1, 2, 3, 4).finished());
  const auto ret = tape.constant((Matrix<double>(1, 4) << 1, 1, 1, 1).finished());
  const auto h = tape.constant((Matrix<double>(1, 4) << 0.5, 0.5, 0.5, 0.5).finished());
  const double pg = -(-0.5 * 1.0 + -1.0 * -2.0 + -0.2 * 0.5 + -2.0 * 3.0) / 4;
  CHECK(rl::a2c_loss(lp, adv, v, ret, h, {.value = 0.5, .entropy = 0.01}).item() ==
        doctest::Approx(pg + 0.5 * (0 + 1 + 4 + 9) / 4.0 - 0.01 * 0.5));
}
