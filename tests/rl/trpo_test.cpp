// TRPO's parts: conjugate gradient, the KL divergences of the heads, the KL Hessian-vector product
// against finite differences of KL gradients, and one trust-region step.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/ssmrl.hpp>

#include <cmath>
#include <optional>
#include <set>
#include <span>
#include <thread>
#include <vector>

#include "support/random.hpp"
#include "support/thread_communicator.hpp"

using namespace ssmrl;
using ad::Matrix;
using test::random_matrix;

TEST_CASE("conjugate gradient solves a symmetric positive definite system") {
  const Matrix<double> m = random_matrix(8, 8, 1);
  const Matrix<double> a = m * m.transpose() + 0.5 * Matrix<double>::Identity(8, 8);
  const Eigen::VectorXd b = random_matrix(8, 1, 2);
  const auto x = optim::conjugate_gradient<double>([&](const Eigen::VectorXd& v) { return Eigen::VectorXd(a * v); }, b, 8,
                                                   1e-30);
  CHECK((a * x - b).norm() < 1e-8 * b.norm());
}

TEST_CASE("the heads' KL divergences match closed forms") {
  ad::Tape<double> tape;
  const policy::GaussianHead<double> gaussian({.input = 1, .actions = 1});
  const auto old_dist = tape.constant((Matrix<double>(2, 1) << 0.3, std::log(0.5)).finished());
  const auto new_dist = tape.constant((Matrix<double>(2, 1) << -0.2, std::log(1.5)).finished());
  const double expected = std::log(1.5 / 0.5) + (0.25 + 0.25) / (2 * 2.25) - 0.5;
  CHECK(gaussian.kl_divergence(old_dist, new_dist).item() == doctest::Approx(expected));
  CHECK(gaussian.kl_divergence(old_dist, old_dist).item() == doctest::Approx(0.0));
  const auto p = tape.constant((Matrix<double>(3, 1) << 1.0, 0.0, -1.0).finished());
  const auto q = tape.constant((Matrix<double>(3, 1) << 0.0, 0.5, 0.0).finished());
  const Eigen::VectorXd pp = ad::softmax(p).value();
  const Eigen::VectorXd qq = ad::softmax(q).value();
  CHECK(policy::CategoricalHead<double>::kl_divergence(p, q).item() ==
        doctest::Approx((pp.array() * (pp.array().log() - qq.array().log())).sum()));
}

namespace {

// Hessian-vector products of the mean KL against finite differences of its gradient.
template <class PolicyT>
void check_kl_hvp(const PolicyT& pi, const Matrix<double>& obs, ad::Index batch) {
  const auto theta0 = pi.params();
  ad::Tape<double> old_tape;
  const Matrix<double> old = pi.distribution(nn::on_tape(old_tape, theta0), old_tape.constant(obs), batch).value();
  auto kl_at = [&](ad::Tape<double>& tape, const typename PolicyT::VarParams& vars) {
    return pi.mean_kl(tape.constant(old), pi.distribution(vars, tape.constant(obs), batch));
  };
  auto gradient_at = [&](const typename PolicyT::Params& p) {
    ad::Tape<double> tape;
    const auto vars = nn::on_tape(tape, p);
    tape.backward(kl_at(tape, vars));
    return nn::flatten<double>(nn::gradients_of<double>(vars));
  };
  const Eigen::VectorXd v = random_matrix(nn::parameter_count(theta0), 1, 9);
  ad::Tape<double> tape;
  const auto vars = nn::on_tape(tape, theta0);
  const auto list = nn::to_list<ad::Var<double>>(vars);
  auto direction = theta0;
  nn::unflatten(direction, v);
  const auto dirs = nn::to_list<Matrix<double>>(direction);
  const auto hv_list = ad::hessian_vector_product(kl_at(tape, vars), std::span<const ad::Var<double>>(list),
                                                  std::span<const Matrix<double>>(dirs));
  const Eigen::VectorXd hv = nn::flatten<double>(nn::from_list(theta0, hv_list));
  const double h = 1e-5;
  auto plus = theta0;
  auto minus = theta0;
  nn::unflatten(plus, Eigen::VectorXd(nn::flatten<double>(theta0) + h * v));
  nn::unflatten(minus, Eigen::VectorXd(nn::flatten<double>(theta0) - h * v));
  const Eigen::VectorXd numeric = (gradient_at(plus) - gradient_at(minus)) / (2 * h);
  CHECK(hv.cwiseAbs().maxCoeff() > 1e-6);
  CHECK((hv - numeric).cwiseAbs().maxCoeff() < 1e-6 * std::max(1.0, numeric.cwiseAbs().maxCoeff()));
  // At the old parameters the KL and its gradient vanish.
  CHECK(gradient_at(theta0).cwiseAbs().maxCoeff() < 1e-12);
}

}  // namespace

TEST_CASE("the KL Hessian-vector product matches finite differences of KL gradients") {
  using namespace ssmrl::policy;
  const auto obs = random_matrix(3, 4 * 6, 10);
  check_kl_hvp(RecurrentPolicy<nn::GruCell<double>, CategoricalHead<double>>(
                   nn::GruCell<double>({.input = 3, .hidden = 4}), CategoricalHead<double>(4, 3), {}, {}, 11),
               obs, 4);
  check_kl_hvp(RecurrentPolicy<nn::MlpCell<double>, GaussianHead<double, GaussianStd::state_dependent>>(
                   nn::MlpCell<double>({.input = 3, .hidden = {5}}),
                   GaussianHead<double, GaussianStd::state_dependent>({.input = 5, .actions = 2}), {}, {}, 12),
               obs, 4);
}

TEST_CASE("a TRPO step lowers the surrogate within the KL limit") {
  using Policy = policy::RecurrentPolicy<nn::DenseSsmCell<double>, policy::CategoricalHead<double>>;
  Policy pi(nn::DenseSsmCell<double>({.input = 3, .state = 4, .output = 5}), policy::CategoricalHead<double>(5, 3), {},
            {}, 13);
  const ad::Index batch = 6;
  const auto obs = random_matrix(3, batch * 10, 14);
  Matrix<double> actions(1, batch * 10);
  for (ad::Index i = 0; i < actions.cols(); ++i) actions(0, i) = static_cast<double>(i % 3);
  const auto advantages = random_matrix(1, batch * 10, 15);
  ad::Tape<double> old_tape;
  const auto old_vars = nn::on_tape(old_tape, pi.params());
  const Matrix<double> old_log_prob = pi.evaluate(old_vars, old_tape.constant(obs), batch, actions).log_prob.value();
  const Matrix<double> old_dist = pi.distribution(old_vars, old_tape.constant(obs), batch).value();
  auto surrogate = [&](ad::Tape<double>& tape, const Policy::VarParams& vars) {
    const auto lp = pi.evaluate(vars, tape.constant(obs), batch, actions).log_prob;
    return -ad::mean(ad::mul(ad::exp(ad::sub(lp, tape.constant(old_log_prob))), tape.constant(advantages)));
  };
  auto kl = [&](ad::Tape<double>& tape, const Policy::VarParams& vars) {
    return pi.mean_kl(tape.constant(old_dist), pi.distribution(vars, tape.constant(obs), batch));
  };
  auto params = pi.params();
  const auto result = optim::trpo_step<double>(params, surrogate, kl, {.max_kl = 0.01});
  CHECK(result.accepted);
  CHECK(result.loss_after < result.loss_before);
  CHECK(result.kl <= 0.01);
  CHECK(result.kl > 0.001);  // the step is scaled to the limit, not timid
  CHECK(nn::flatten<double>(params) != nn::flatten<double>(pi.params()));
}

TEST_CASE("a TRPO step over parts on several threads equals the step over the whole") {
  using Policy = policy::RecurrentPolicy<nn::GruCell<double>, policy::CategoricalHead<double>>;
  Policy pi(nn::GruCell<double>({.input = 3, .hidden = 4}), policy::CategoricalHead<double>(4, 3), {}, {}, 21);
  const ad::Index batch = 6;
  const ad::Index steps = 5;
  const auto obs = random_matrix(3, batch * steps, 22);
  Matrix<double> actions(1, batch * steps);
  for (ad::Index i = 0; i < actions.cols(); ++i) actions(0, i) = static_cast<double>((i * 7) % 3);
  const auto advantages = random_matrix(1, batch * steps, 23);
  ad::Tape<double> old_tape;
  const auto old_vars = nn::on_tape(old_tape, pi.params());
  const Matrix<double> old_log_prob = pi.evaluate(old_vars, old_tape.constant(obs), batch, actions).log_prob.value();
  const Matrix<double> old_dist = pi.distribution(old_vars, old_tape.constant(obs), batch).value();
  // Part p: environments 2p and 2p + 1 (their columns of the time-major matrices).
  auto columns = [&](const Matrix<double>& m, std::size_t p) {
    return rl::select_env_columns(m, batch, {static_cast<ad::Index>(2 * p), static_cast<ad::Index>(2 * p + 1)});
  };
  auto surrogate_part = [&](ad::Tape<double>& tape, const Policy::VarParams& vars, std::size_t p) {
    const auto lp = pi.evaluate(vars, tape.constant(columns(obs, p)), 2, columns(actions, p)).log_prob;
    return -ad::mean(ad::mul(ad::exp(ad::sub(lp, tape.constant(columns(old_log_prob, p)))),
                             tape.constant(columns(advantages, p)))) * (1.0 / 3.0);
  };
  auto kl_part = [&](ad::Tape<double>& tape, const Policy::VarParams& vars, std::size_t p) {
    return pi.mean_kl(tape.constant(columns(old_dist, p)), pi.distribution(vars, tape.constant(columns(obs, p)), 2)) *
           (1.0 / 3.0);
  };
  auto surrogate = [&](ad::Tape<double>& tape, const Policy::VarParams& vars) {
    const auto lp = pi.evaluate(vars, tape.constant(obs), batch, actions).log_prob;
    return -ad::mean(ad::mul(ad::exp(ad::sub(lp, tape.constant(old_log_prob))), tape.constant(advantages)));
  };
  auto kl = [&](ad::Tape<double>& tape, const Policy::VarParams& vars) {
    return pi.mean_kl(tape.constant(old_dist), pi.distribution(vars, tape.constant(obs), batch));
  };
  // Two conjugate-gradient iterations: more amplify rounding in this ill-conditioned Fisher matrix
  // (with ten, summing the same products in another order moves the step by 1e-2).
  const optim::TrpoOptions options{.max_kl = 0.01, .cg_iterations = 2};
  auto whole = pi.params();
  const auto reference = optim::trpo_step<double>(whole, surrogate, kl, options);
  REQUIRE(reference.accepted);
  std::optional<Eigen::VectorXd> one_thread;
  for (const unsigned threads : {1u, 2u, 3u}) {
    CAPTURE(threads);
    std::vector<ad::Tape<double>> tapes(3);
    auto parts = pi.params();
    const auto r = optim::trpo_step_parts<double>(parts, 3, surrogate_part, kl_part, kl_part, options,
                                                  std::span<ad::Tape<double>>(tapes), threads);
    CHECK(r.accepted);
    CHECK(r.loss_before == doctest::Approx(reference.loss_before).epsilon(1e-12));
    CHECK(r.kl == doctest::Approx(reference.kl).epsilon(1e-9));
    CHECK((nn::flatten<double>(parts) - nn::flatten<double>(whole)).cwiseAbs().maxCoeff() < 1e-10);
    // The parts are summed in order whatever the threads: the same step to the last bit.
    if (!one_thread) one_thread = nn::flatten<double>(parts);
    else CHECK(nn::flatten<double>(parts) == *one_thread);
  }
  // The parts spread over ranks (threads standing in for MPI's processes): each rank computes its
  // parts only, and every rank takes the one process's step, to the last bit.
  for (const int ranks : {2, 3}) {
    CAPTURE(ranks);
    auto comms = test::ThreadCommunicator::group(ranks);
    std::vector<Policy::Params> results(static_cast<std::size_t>(ranks), pi.params());
    std::vector<optim::TrpoResult> reports(static_cast<std::size_t>(ranks));
    std::vector<std::set<std::size_t>> called(static_cast<std::size_t>(ranks));
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; ++r) {
      threads.emplace_back([&, r] {
        const auto i = static_cast<std::size_t>(r);
        std::vector<ad::Tape<double>> tapes(3);
        auto counted = [&](ad::Tape<double>& tape, const Policy::VarParams& vars, std::size_t p) {
          called[i].insert(p);
          return surrogate_part(tape, vars, p);
        };
        reports[i] = optim::trpo_step_parts<double>(results[i], 3, counted, kl_part, kl_part, options,
                                                    std::span<ad::Tape<double>>(tapes), 1, comms[i]);
      });
    }
    for (auto& t : threads) t.join();
    for (int r = 0; r < ranks; ++r) {
      CAPTURE(r);
      const auto i = static_cast<std::size_t>(r);
      const auto mine = dist::share(3, r, ranks);
      CHECK(called[i].size() == mine.size());
      CHECK((called[i].empty() || (*called[i].begin() == mine.begin && *called[i].rbegin() == mine.end - 1)));
      CHECK(reports[i].accepted);
      CHECK(nn::flatten<double>(results[i]) == *one_thread);
    }
  }
}

TEST_CASE("dist::owner_of names the rank whose share holds a part; value_hash tells values apart") {
  for (int size = 1; size <= 7; ++size) {
    for (std::size_t parts = 1; parts <= 20; ++parts) {
      for (std::size_t part = 0; part < parts; ++part) {
        CAPTURE(size);
        CAPTURE(parts);
        CAPTURE(part);
        CHECK(dist::share(parts, dist::owner_of(part, parts, size), size).contains(part));
      }
    }
  }
  CHECK_THROWS_WITH_AS(static_cast<void>(dist::owner_of(3, 3, 2)), doctest::Contains("dist::owner_of: part 3 of 3"),
                       ssmrl::InvalidArgument);
  std::vector<double> a{1.0, 2.0, 3.0};
  const double h = dist::value_hash(std::span<const double>(a));
  CHECK(h == dist::value_hash(std::span<const double>(std::vector<double>{1.0, 2.0, 3.0})));
  CHECK(h == std::floor(h));
  CHECK(h < 0x1p52);
  a[1] = std::nextafter(2.0, 3.0);  // one bit of one value
  CHECK(dist::value_hash(std::span<const double>(a)) != h);
}
