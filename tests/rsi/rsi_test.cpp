// Self-improvement's foundations: the interquartile mean and stratified bootstrap as rliable
// computes them, the paired sign-flip test's exact p-values, Net2Net growth that leaves a cell's
// outputs (and a head reading them) equal to the original's to 1e-6 in float32, and the history
// and checkpoint ring a crash cannot tear.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/env/env_batch.hpp>
#include <ssmrl/io/checkpoint.hpp>
#include <ssmrl/nn.hpp>
#include <ssmrl/policy/recurrent_policy.hpp>
#include <ssmrl/rsi.hpp>
#include <ssmrl/rsi/history.hpp>
#include <ssmrl/rsi/loop.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "support/errors.hpp"

using namespace ssmrl;
using test::message_of;

TEST_CASE("interquartile mean: scipy's trim_mean(x, 0.25), floor(n / 4) cut from each end") {
  CHECK(rsi::interquartile_mean(std::vector<double>{4, 1, 3, 2}) == 2.5);           // cut 1: {2, 3}
  CHECK(rsi::interquartile_mean(std::vector<double>{5, 1, 100, 2, 3}) == 10.0 / 3);  // cut 1: {2, 3, 5}
  CHECK(rsi::interquartile_mean(std::vector<double>{7, 1, 2}) == 10.0 / 3);         // cut 0
  // 8 values: cut 2, the mean of the middle 4.
  CHECK(rsi::interquartile_mean(std::vector<double>{-50, 8, 1, 2, 3, 4, 5, 90}) == 3.5);
  CHECK_THROWS_AS((void)rsi::interquartile_mean(std::vector<double>{}), InvalidArgument);
}

TEST_CASE("stratified bootstrap: resamples runs within each task; percentile interval; refusals") {
  // Task 0 has runs 0 and 1, task 1 runs 10 and 30: the mean of a resample is (a + b) / 4 + (c + d) / 4
  // with a, b drawn from task 0 and c, d from task 1, so it lies in [5, 15.5]; without strata a
  // resample could draw four runs of task 1 (mean 30) or of task 0 (mean 0).
  ad::Matrix<double> scores(2, 2);
  scores << 0, 10, 1, 30;
  const auto mean_of = [](std::span<const double> v) { return rsi::mean(v); };
  const auto ci = rsi::stratified_bootstrap(scores, mean_of, {.confidence = 0.95, .resamples = 4000, .seed = 3});
  CHECK(ci.estimate == 10.25);
  CHECK(ci.low >= 5.0);
  CHECK(ci.high <= 15.5);
  CHECK(ci.low < ci.estimate);
  CHECK(ci.high > ci.estimate);
  // The same seed gives the same interval; a wider confidence a wider one.
  const auto again = rsi::stratified_bootstrap(scores, mean_of, {.confidence = 0.95, .resamples = 4000, .seed = 3});
  CHECK(again.low == ci.low);
  CHECK(again.high == ci.high);
  const auto narrow = rsi::stratified_bootstrap(scores, mean_of, {.confidence = 0.5, .resamples = 4000, .seed = 3});
  CHECK(narrow.low >= ci.low);
  CHECK(narrow.high <= ci.high);
  // Constant runs: the interval is the point.
  const ad::Matrix<double> flat = ad::Matrix<double>::Constant(5, 3, 0.25);
  const auto point = rsi::stratified_bootstrap(flat, [](std::span<const double> v) {
    return rsi::interquartile_mean(v);
  });
  CHECK(point.low == 0.25);
  CHECK(point.high == 0.25);
  ad::Matrix<double> bad = scores;
  bad(1, 1) = std::nan("");
  CHECK(message_of<InvalidArgument>([&] { (void)rsi::stratified_bootstrap(bad, mean_of); }).find("scores[3]") !=
        std::string::npos);
  CHECK_THROWS_AS((void)rsi::stratified_bootstrap(scores, mean_of, {.confidence = 1.0}), InvalidArgument);
  CHECK_THROWS_AS((void)rsi::stratified_bootstrap(ad::Matrix<double>(0, 2), mean_of), InvalidArgument);
}

TEST_CASE("paired sign-flip test: exact p-values by enumeration, non-inferiority by a shift, Monte Carlo") {
  // Every difference positive: only the observed pattern is as large, p = 2^-n.
  const std::vector<double> base{1, 2, 3, 4, 5};
  const std::vector<double> better{1.5, 2.1, 3.7, 4.2, 5.3};
  const auto t = rsi::paired_sign_flip_test(better, base);
  CHECK(t.exact);
  CHECK(t.pairs == 5);
  CHECK(t.p_value == 1.0 / 32);
  CHECK(t.significant());
  CHECK(t.mean_difference == doctest::Approx(0.36));
  // Four pairs can never reach 5%: the smallest p is 1/16.
  CHECK(rsi::paired_sign_flip_test(std::span(better).first(4), std::span(base).first(4)).p_value == 1.0 / 16);
  // Differences 3, -1, 2 (sum 4): of the eight sign patterns only (3, -1, 2) and (3, 1, 2) sum to at
  // least 4 (the others: 2, 0, 0, -2, -4, -6).
  const std::vector<double> zeros{0, 0, 0};
  const std::vector<double> mixed{3, -1, 2};
  CHECK(rsi::paired_sign_flip_test(mixed, zeros).p_value == 2.0 / 8);
  // A worse candidate: p near 1; equal ones: every pattern ties, p = 1.
  CHECK(rsi::paired_sign_flip_test(base, better).p_value == 1.0);
  CHECK(rsi::paired_sign_flip_test(base, base).p_value == 1.0);
  // Non-inferiority within a margin: the candidate 0.1 worse on every pair is not inferior by more
  // than 0.2 (shift -0.2: differences +0.1 each), but is by more than 0.05.
  std::vector<double> slightly_worse = base;
  for (auto& v : slightly_worse) v -= 0.1;
  CHECK(rsi::paired_sign_flip_test(slightly_worse, base, -0.2).p_value == 1.0 / 32);
  CHECK(rsi::paired_sign_flip_test(slightly_worse, base, -0.05).p_value == 1.0);
  // Beyond 20 pairs, Monte Carlo: 30 positive differences give p = 1 / (resamples + 1).
  std::vector<double> a(30), b(30, 0.0);
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = 0.1 + 0.01 * static_cast<double>(i);
  const auto mc = rsi::paired_sign_flip_test(a, b, 0, {.resamples = 2000, .seed = 1});
  CHECK_FALSE(mc.exact);
  CHECK(mc.p_value == 1.0 / 2001);
  // Under the null (symmetric differences) p-values of the Monte Carlo and exact paths agree.
  std::mt19937_64 rng(4);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<double> n20(20), n22(22), z20(20, 0.0), z22(22, 0.0);
  for (auto& v : n20) v = noise(rng);
  for (std::size_t i = 0; i < 22; ++i) n22[i] = i < 20 ? n20[i] : 0.0;  // two zero differences change nothing
  const double exact = rsi::paired_sign_flip_test(n20, z20).p_value;
  const double sampled = rsi::paired_sign_flip_test(n22, z22, 0, {.resamples = 200000, .seed = 2}).p_value;
  CHECK(std::abs(sampled - exact) < 0.005);  // 4.5 standard errors of 200,000 draws at worst
  CHECK(message_of<InvalidArgument>([&] { (void)rsi::paired_sign_flip_test(base, mixed); }).find("candidate has 5") !=
        std::string::npos);
  std::vector<double> with_nan = base;
  with_nan[2] = std::nan("");
  CHECK(message_of<InvalidArgument>([&] { (void)rsi::paired_sign_flip_test(with_nan, base); })
            .find("candidate[2] is nan") != std::string::npos);
}

namespace {

// Outputs of `cell` over `steps` steps of `inputs` (input x steps*batch) from a zero state, each
// step's output read by `head` if given.
template <class Cell>
ad::Matrix<float> run(const Cell& cell, const typename Cell::Params& p, const ad::Matrix<float>& inputs,
                      ad::Index batch, const nn::LinearParams<ad::Matrix<float>>* head = nullptr) {
  auto ws = cell.make_workspace(batch);
  ad::Matrix<float> state = ad::Matrix<float>::Zero(cell.state_size(), batch);
  ad::Matrix<float> out(cell.output_size(), batch);
  const ad::Index steps = inputs.cols() / batch;
  ad::Matrix<float> all(head ? head->W.rows() : cell.output_size(), inputs.cols());
  for (ad::Index t = 0; t < steps; ++t) {
    cell.step(p, state, inputs.middleCols(t * batch, batch), out, ws);
    if (head) {
      all.middleCols(t * batch, batch) = head->W * out;
      all.middleCols(t * batch, batch).colwise() += head->b.col(0);
    } else {
      all.middleCols(t * batch, batch) = out;
    }
  }
  return all;
}

constexpr float tolerance = 1e-6f;

}  // namespace

TEST_CASE("Net2Net growth preserves the function in float32 to 1e-6: GRU, LSTM, diagonal SSM, MLP, and heads") {
  nn::init::Rng rng(7);
  std::mt19937_64 map_rng(11);
  const ad::Index batch = 3;
  const ad::Index steps = 20;
  ad::Matrix<float> inputs = nn::init::normal<float>(4, steps * batch, 1.0, rng);

  SUBCASE("the map: old units first, copies counted; bad maps refused") {
    const auto w = rsi::Widening::draw(5, 9, map_rng);
    CHECK(w.to() == 9);
    int total = 0;
    for (ad::Index i = 0; i < 5; ++i) {
      CHECK(w.source(i) == i);
      total += w.copies(i);
    }
    CHECK(total == 9);
    CHECK(message_of<InvalidArgument>([] { rsi::Widening(3, {0, 2, 1}); }).find("new unit 1 copies 2") !=
          std::string::npos);
    CHECK_THROWS_AS(rsi::Widening(3, {0, 1, 2, 3}), InvalidArgument);
    CHECK_THROWS_AS((void)rsi::Widening::draw(5, 4, map_rng), InvalidArgument);  // shrinking is not growth
  }
  SUBCASE("GRU hidden 8 -> 10 and LSTM 6 -> 8, with a head on h") {
    const nn::GruCell<float> gru({.input = 4, .hidden = 8});
    const auto p = gru.init_params(rng);
    const auto head = nn::init_linear<float>(8, 2, rng, nn::LinearInit::xavier);
    const auto w = rsi::Widening(8, {0, 1, 2, 3, 4, 5, 6, 7, 3, 3});  // unit 3 three times
    const auto grown = rsi::widen_hidden(gru, p, w);
    const auto grown_head = rsi::widen_input(head, w);
    CHECK(grown.cell.config().hidden == 10);
    grown.cell.check_shapes(grown.params);
    const auto before = run(gru, p, inputs, batch, &head);
    const auto after = run(grown.cell, grown.params, inputs, batch, &grown_head);
    CHECK((before - after).cwiseAbs().maxCoeff() <= tolerance);
    // The copies of a unit hold its value at every step (to rounding: the split recurrent columns
    // sum in another order).
    const auto h = run(grown.cell, grown.params, inputs, batch);
    CHECK((h.row(8) - h.row(3)).cwiseAbs().maxCoeff() <= tolerance);
    CHECK((h.row(9) - h.row(3)).cwiseAbs().maxCoeff() <= tolerance);

    const nn::LstmCell<float> lstm({.input = 4, .hidden = 6});
    const auto q = lstm.init_params(rng);
    const auto lhead = nn::init_linear<float>(6, 3, rng, nn::LinearInit::xavier);
    const auto lw = rsi::Widening::draw(6, 8, map_rng);
    const auto lgrown = rsi::widen_hidden(lstm, q, lw);
    const auto lgrown_head = rsi::widen_input(lhead, lw);
    CHECK((run(lstm, q, inputs, batch, &lhead) - run(lgrown.cell, lgrown.params, inputs, batch, &lgrown_head))
              .cwiseAbs()
              .maxCoeff() <= tolerance);
    CHECK(message_of<InvalidArgument>([&] { (void)rsi::widen_hidden(lstm, q, w); }).find("from 8 units") !=
          std::string::npos);
  }
  SUBCASE("diagonal SSM: state 8 -> 10 (same output), output 5 -> 6 (a head reads it)") {
    const nn::DiagSsmCell<float> ssm({.input = 4, .state = 8, .output = 5});
    const auto p = ssm.init_params(rng);
    const auto by_state = rsi::widen_state(ssm, p, rsi::Widening::draw(8, 10, map_rng));
    CHECK(by_state.cell.config().state == 10);
    CHECK((run(ssm, p, inputs, batch) - run(by_state.cell, by_state.params, inputs, batch)).cwiseAbs().maxCoeff() <=
          tolerance);
    const auto head = nn::init_linear<float>(5, 2, rng, nn::LinearInit::xavier);
    const auto w = rsi::Widening::draw(5, 6, map_rng);
    const auto by_output = rsi::widen_output(ssm, p, w);
    const auto grown_head = rsi::widen_input(head, w);
    CHECK((run(ssm, p, inputs, batch, &head) - run(by_output.cell, by_output.params, inputs, batch, &grown_head))
              .cwiseAbs()
              .maxCoeff() <= tolerance);
  }
  SUBCASE("MLP: the first of two hidden layers 16 -> 19, then the last 12 -> 14 with a head") {
    const nn::MlpCell<float> mlp({.input = 4, .hidden = {16, 12}});
    const auto p = mlp.init_params(rng);
    const auto head = nn::init_linear<float>(12, 2, rng, nn::LinearInit::xavier);
    const auto first = rsi::widen_layer(mlp, p, 0, rsi::Widening::draw(16, 19, map_rng));
    CHECK(first.cell.config().hidden == std::vector<ad::Index>{19, 12});
    const auto w = rsi::Widening::draw(12, 14, map_rng);
    const auto both = rsi::widen_layer(first.cell, first.params, 1, w);
    const auto grown_head = rsi::widen_input(head, w);
    CHECK((run(mlp, p, inputs, batch, &head) - run(both.cell, both.params, inputs, batch, &grown_head))
              .cwiseAbs()
              .maxCoeff() <= tolerance);
    CHECK(message_of<InvalidArgument>([&] { (void)rsi::widen_layer(mlp, p, 2, w); }).find("layer 2 of 2 layers does not exist") !=
          std::string::npos);
  }
}

namespace {

// Greedy actions, log-probabilities and values of `policy` over `steps` steps of `inputs`.
template <class Policy>
std::vector<ad::Matrix<float>> act_over(Policy policy, const ad::Matrix<float>& inputs, ad::Index batch) {
  policy.set_num_envs(batch);
  std::mt19937_64 rng(1);
  std::vector<ad::Matrix<float>> out;
  for (ad::Index t = 0; t < inputs.cols() / batch; ++t) {
    const auto s = policy.act(inputs.middleCols(t * batch, batch), policy::ActMode::greedy, rng);
    out.push_back(s.actions);
    out.push_back(s.log_prob);
    if constexpr (Policy::has_value_head) out.push_back(s.value);
  }
  return out;
}

float max_difference(const std::vector<ad::Matrix<float>>& a, const std::vector<ad::Matrix<float>>& b) {
  REQUIRE(a.size() == b.size());
  float worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, (a[i] - b[i]).cwiseAbs().maxCoeff());
  return worst;
}

}  // namespace

TEST_CASE("a grown policy acts as the original: GRU actor-critic, SSM and MLP Gaussian policies; LayerNorm does not") {
  nn::init::Rng rng(3);
  std::mt19937_64 map_rng(5);
  const ad::Index batch = 4;
  const ad::Matrix<float> inputs = nn::init::normal<float>(3, 20 * batch, 1.0, rng);
  using GruActorCritic = policy::RecurrentPolicy<nn::GruCell<float>, policy::CategoricalHead<float>, nn::NoNorm<float>,
                                                 policy::ValueHead<float>>;
  const GruActorCritic gru(nn::GruCell<float>({.input = 3, .hidden = 10}), policy::CategoricalHead<float>(10, 3), {},
                           policy::ValueHead<float>(10), 2);
  const auto grown = rsi::widen_hidden(gru, rsi::Widening::draw(10, 12, map_rng));
  CHECK(grown.cell().config().hidden == 12);
  CHECK(grown.head().input_size() == 12);
  CHECK(max_difference(act_over(gru, inputs, batch), act_over(grown, inputs, batch)) <= 1e-6f);

  using SsmGaussian = policy::RecurrentPolicy<nn::DiagSsmCell<float>, policy::GaussianHead<float>>;
  const SsmGaussian ssm(nn::DiagSsmCell<float>({.input = 3, .state = 8, .output = 6}),
                        policy::GaussianHead<float>({.input = 6, .actions = 2}), {}, {}, 4);
  const auto wider_state = rsi::widen_state(ssm, rsi::Widening::draw(8, 9, map_rng));
  CHECK(wider_state.cell().config().state == 9);
  CHECK(max_difference(act_over(ssm, inputs, batch), act_over(wider_state, inputs, batch)) <= 1e-6f);

  using MlpGaussian = policy::RecurrentPolicy<nn::MlpCell<float>,
                                              policy::GaussianHead<float, policy::GaussianStd::state_dependent>>;
  const MlpGaussian mlp(nn::MlpCell<float>({.input = 3, .hidden = {8, 8}}),
                        policy::GaussianHead<float, policy::GaussianStd::state_dependent>({.input = 8, .actions = 2}),
                        {}, {}, 6);
  const auto inner = rsi::widen_layer(mlp, 0, rsi::Widening::draw(8, 9, map_rng));
  const auto outer = rsi::widen_layer(inner, 1, rsi::Widening::draw(8, 10, map_rng));
  CHECK(outer.head().input_size() == 10);
  CHECK(max_difference(act_over(mlp, inputs, batch), act_over(outer, inputs, batch)) <= 1e-6f);

  // Shrinking keeps the units the next layer reads most strongly, with their weights; the readers
  // drop the others' columns. Not function-preserving, so only the weights are compared.
  const auto keep = rsi::Widening::keep_strongest(mlp.params().cell.layers[1].W, 6);
  CHECK(keep.shrinks());
  const auto narrow = rsi::widen_layer(mlp, 0, keep);
  CHECK(narrow.cell().config().hidden == std::vector<ad::Index>{6, 8});
  const auto& next = mlp.params().cell.layers[1].W;
  for (ad::Index j = 0; j < 6; ++j) {
    const auto old = keep.source(j);
    CHECK(narrow.params().cell.layers[0].W.row(j) == mlp.params().cell.layers[0].W.row(old));
    CHECK(narrow.params().cell.layers[1].W.col(j) == next.col(old));
    if (j > 0) CHECK(old > keep.source(j - 1));
  }
  double weakest_kept = 1e30, strongest_dropped = 0;
  for (ad::Index u = 0; u < 8; ++u) {
    bool kept = false;
    for (ad::Index j = 0; j < 6; ++j) kept = kept || keep.source(j) == u;
    const double norm = next.col(u).squaredNorm();
    if (kept) weakest_kept = std::min(weakest_kept, norm);
    else strongest_dropped = std::max(strongest_dropped, norm);
  }
  CHECK(weakest_kept >= strongest_dropped);
  const auto last = rsi::widen_layer(mlp, 1, rsi::Widening::keep(8, {0, 2, 3, 5, 6, 7}));
  CHECK(last.head().input_size() == 6);
  CHECK(last.params().head.mean.W.col(1) == mlp.params().head.mean.W.col(2));
  CHECK(message_of<InvalidArgument>([] { (void)rsi::Widening::keep(4, {0, 2, 2}); }).find("after the previous one") !=
        std::string::npos);
  CHECK_THROWS_AS((void)rsi::Widening::keep(4, {0, 1, 2, 3}), InvalidArgument);
  CHECK_THROWS_AS((void)rsi::Widening::keep(4, {}), InvalidArgument);
  CHECK_THROWS_AS((void)rsi::Widening::keep(4, {1, 4}), InvalidArgument);

  // Under a LayerNorm the copies change the mean and variance: the grown policy only starts near.
  using NormedGru = policy::RecurrentPolicy<nn::GruCell<float>, policy::CategoricalHead<float>, nn::LayerNorm<float>>;
  const NormedGru normed(nn::GruCell<float>({.input = 3, .hidden = 10}), policy::CategoricalHead<float>(10, 3),
                         nn::LayerNorm<float>(10), {}, 8);
  const auto normed_grown = rsi::widen_hidden(normed, rsi::Widening::draw(10, 12, map_rng));
  CHECK(normed_grown.params().norm.scale.rows() == 12);
  CHECK(max_difference(act_over(normed, inputs, batch), act_over(normed_grown, inputs, batch)) > 1e-6f);

  // A cell grown apart from its policy must say how the features widened.
  CHECK(message_of<InvalidArgument>([&] {
          (void)rsi::with_grown_cell(gru, rsi::widen_hidden(gru.cell(), gru.params().cell,
                                                            rsi::Widening::draw(10, 11, map_rng)), std::nullopt);
        }).find("gives 11 features, the policy's 10") != std::string::npos);
}

TEST_CASE("a norm switched on or off starts near the old policy from feature statistics, exact on typical samples") {
  nn::init::Rng rng(11);
  const ad::Index batch = 4, steps = 20;
  const ad::Matrix<float> inputs = nn::init::normal<float>(3, steps * batch, 1.0, rng);
  auto trajectories = rl::sized_trajectory_batch<float>(3, 2, batch, steps);
  trajectories.observations = inputs;
  using Optional = nn::OptionalLayerNorm<float>;
  using Policy = policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>, Optional>;
  const nn::MlpCellConfig cell{.input = 3, .hidden = {8, 6}};
  const Policy off(nn::MlpCell<float>(cell), policy::GaussianHead<float>({.input = 6, .actions = 2}),
                   Optional(6, false), {}, 9);
  // Off, it is the policy without a norm: no parameters, the same initial weights, the same actions.
  const policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>> plain(
      nn::MlpCell<float>(cell), policy::GaussianHead<float>({.input = 6, .actions = 2}), {}, {}, 9);
  CHECK(nn::parameter_count(off.params()) == nn::parameter_count(plain.params()));
  CHECK(max_difference(act_over(off, inputs, batch), act_over(plain, inputs, batch)) == 0.0f);

  const auto statistics = rsi::feature_statistics(off, trajectories);
  CHECK(statistics.samples == steps * batch);
  CHECK(statistics.spread > 0);
  const auto on = rsi::with_normalisation(off, true, statistics);
  const auto on_default = rsi::with_normalisation(off, true);
  CHECK(on.norm().enabled());
  CHECK(on.params().norm.scale.rows() == 6);
  CHECK(on_default.params().norm.scale == ad::Matrix<float>::Ones(6, 1));
  const float near = max_difference(act_over(off, inputs, batch), act_over(on, inputs, batch));
  const float far = max_difference(act_over(off, inputs, batch), act_over(on_default, inputs, batch));
  CHECK(near > 1e-6f);  // not function-preserving: each sample has its own level and spread
  CHECK(near < far);
  // Switched off again with the same statistics, the readers absorb the norm and get their weights back.
  const auto back = rsi::with_normalisation(on, false, statistics);
  CHECK_FALSE(back.norm().enabled());
  CHECK(back.params().norm.scale.rows() == 0);
  CHECK(back.params().head.mean.W == off.params().head.mean.W);
  CHECK(back.params().head.mean.b == off.params().head.mean.b);
  CHECK(max_difference(act_over(off, inputs, batch), act_over(back, inputs, batch)) == 0.0f);

  // Every sample of typical level and spread (the same observation everywhere): exact both ways,
  // from a norm with learnt (here random) scale and shift.
  ad::Matrix<float> same(3, steps * batch);
  same.colwise() = inputs.col(0);
  trajectories.observations = same;
  const auto typical = rsi::feature_statistics(off, trajectories);
  const auto typical_on = rsi::with_normalisation(off, true, typical);
  CHECK(max_difference(act_over(off, same, batch), act_over(typical_on, same, batch)) <= 1e-6f);
  auto learnt = on_default;
  learnt.params().norm.scale = nn::init::normal<float>(6, 1, 1.0, rng);
  learnt.params().norm.shift = nn::init::normal<float>(6, 1, 1.0, rng);
  const auto learnt_statistics = rsi::feature_statistics(learnt, trajectories);
  const auto folded = rsi::with_normalisation(learnt, false, learnt_statistics);
  CHECK(max_difference(act_over(learnt, same, batch), act_over(folded, same, batch)) <= 1e-6f);
  // Without statistics the readers are kept, and the policy no longer acts the same.
  const auto unfolded = rsi::with_normalisation(learnt, false);
  CHECK(unfolded.params().head.mean.W == learnt.params().head.mean.W);
  CHECK(max_difference(act_over(learnt, same, batch), act_over(unfolded, same, batch)) > 1e-3f);

  // Net2Net growth of the last layer: off, the function is kept; on, each copy keeps its scale and shift.
  std::mt19937_64 map_rng(2);
  const auto grown_off = rsi::widen_layer(off, 1, rsi::Widening::draw(6, 7, map_rng));
  CHECK(grown_off.params().norm.scale.rows() == 0);
  CHECK(max_difference(act_over(off, inputs, batch), act_over(grown_off, inputs, batch)) <= 1e-6f);
  const auto grown_on = rsi::widen_layer(on, 1, rsi::Widening::draw(6, 7, map_rng));
  CHECK(grown_on.norm().features() == 7);
  CHECK(grown_on.params().norm.scale.rows() == 7);

  // In a checkpoint it is what it is now: a policy without a norm, or one with a LayerNorm; a
  // checkpoint of the other kind is refused.
  const auto off_file = io::checkpoint_file(off);
  const auto plain_file = io::checkpoint_file(plain);
  CHECK(off_file.metadata.at("model") == plain_file.metadata.at("model"));
  CHECK(off_file.tensors.size() == plain_file.tensors.size());
  auto from_plain = back;
  io::load_checkpoint(plain_file, "plain", from_plain);
  CHECK(max_difference(act_over(plain, inputs, batch), act_over(from_plain, inputs, batch)) == 0.0f);
  const auto file = io::checkpoint_file(on);
  auto into = on_default;
  io::load_checkpoint(file, "on", into);
  CHECK(into.params().norm.scale == on.params().norm.scale);
  policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>, nn::LayerNorm<float>> fixed(
      nn::MlpCell<float>(cell), policy::GaussianHead<float>({.input = 6, .actions = 2}), nn::LayerNorm<float>(6), {}, 1);
  io::load_checkpoint(file, "on", fixed);
  CHECK(max_difference(act_over(on, inputs, batch), act_over(fixed, inputs, batch)) == 0.0f);
  auto wrong = off;
  CHECK(message_of<InvalidArgument>([&] { (void)io::load_checkpoint(file, "on", wrong); }).find("different model") !=
        std::string::npos);
  CHECK(wrong.params().head.mean.W == off.params().head.mean.W);

  CHECK(message_of<InvalidArgument>([&] { (void)rsi::with_normalisation(on, true); }).find("already on") !=
        std::string::npos);
  const rsi::FeatureStatistics flat{.level = 0, .spread = 0, .samples = 1};
  CHECK(message_of<InvalidArgument>([&] { (void)rsi::with_normalisation(off, true, flat); }).find("spread 0") !=
        std::string::npos);
  CHECK_THROWS_AS((void)rsi::feature_statistics(off, rl::sized_trajectory_batch<float>(2, 2, batch, steps)),
                  InvalidArgument);
}

TEST_CASE("history: whole lines in cycle order, a torn last line cut off on opening; the checkpoint ring") {
  const auto dir = std::filesystem::temp_directory_path() / ("ssmrl_rsi_test_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto path = dir / "history.jsonl";
  const auto text = [&] {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  };
  {
    rsi::History history(path);
    CHECK(history.next_cycle() == 0);
    history.append({{"cycle", 0}, {"decision", "baseline"}});
    history.append({{"cycle", 1}, {"decision", "rejected"}});
    const auto before = text();
    CHECK(message_of<InvalidArgument>([&] { history.append({{"cycle", 3}}); }).find("must be 2, the next one; got 3") !=
          std::string::npos);
    CHECK_THROWS_AS(history.append({{"decision", "none"}}), InvalidArgument);
    CHECK(text() == before);
    CHECK(history.next_cycle() == 2);
  }
  // A crash in the middle of a line: reopening cuts it off, and the next cycle is 2 again.
  const auto whole = text();
  {
    std::ofstream torn(path, std::ios::binary | std::ios::app);
    torn << R"({"cycle": 2, "deci)";
  }
  {
    rsi::History history(path);
    CHECK(history.had_torn_line());
    CHECK(history.next_cycle() == 2);
    CHECK(text() == whole);
    CHECK(history.records()[1]["decision"] == "rejected");
    history.append({{"cycle", 2}, {"decision", "accepted"}});
  }
  CHECK(rsi::History(path).next_cycle() == 3);
  CHECK_FALSE(rsi::History(path).had_torn_line());
  // Damage that no crash makes is refused, and the file is left as it is.
  {
    std::ofstream out(path, std::ios::binary);
    out << "{\"cycle\": 0}\nnot json\n{\"cycle\": 2}\n";
  }
  CHECK(message_of<InvalidArgument>([&] { rsi::History{path}; }).find("line 2") != std::string::npos);
  {
    std::ofstream out(path, std::ios::binary);
    out << "{\"cycle\": 0}\n{\"cycle\": 0}\n";
  }
  CHECK(message_of<InvalidArgument>([&] { rsi::History{path}; }).find("is cycle 0, expected 1") != std::string::npos);
  CHECK(text() == "{\"cycle\": 0}\n{\"cycle\": 0}\n");

  // The ring keeps the last 2 cycles' checkpoints and a copy of the best.
  using Policy = policy::RecurrentPolicy<nn::GruCell<float>, policy::CategoricalHead<float>>;
  rsi::CheckpointRing ring(dir / "checkpoints", 2);
  for (long cycle = 0; cycle < 5; ++cycle) {
    const Policy p(nn::GruCell<float>({.input = 2, .hidden = 4}), policy::CategoricalHead<float>(4, 2), {}, {},
                   static_cast<std::uint64_t>(cycle));
    ring.save(cycle, p);
    if (cycle == 3) ring.mark_best(3);
  }
  CHECK(ring.cycles() == std::vector<long>{3, 4});
  // A write a crash interrupted leaves its temporary file; the next prune removes it, not the checkpoints.
  const auto torn = dir / "checkpoints" / "cycle_5.safetensors.tmp-12345";
  io::write_file_atomically("test", torn, "half a checkpoint");
  ring.prune(4);
  CHECK(!std::filesystem::exists(torn));
  CHECK(ring.cycles() == std::vector<long>{3, 4});
  Policy loaded(nn::GruCell<float>({.input = 2, .hidden = 4}), policy::CategoricalHead<float>(4, 2), {}, {}, 99);
  const auto metadata = io::load_checkpoint(ring.best_path(), loaded);
  CHECK(metadata.at("ssmrl.rsi.cycle") == "3");
  const Policy third(nn::GruCell<float>({.input = 2, .hidden = 4}), policy::CategoricalHead<float>(4, 2), {}, {}, 3);
  CHECK(loaded.params().cell.weight_hh == third.params().cell.weight_hh);
  CHECK(message_of<InvalidArgument>([&] { ring.mark_best(0); }).find("no checkpoint of cycle 0") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("judging a proposal: a paired test on the primary score, non-inferiority on the others; false positives") {
  const rsi::ScoreScale cartpole{.floor = 20, .reference = 195};
  CHECK(cartpole.normalise(107.5) == 0.5);
  const rsi::ScoreScale flat_scale{.floor = 1, .reference = 1};
  CHECK_THROWS_AS((void)flat_scale.normalise(0), InvalidArgument);
  const std::vector<double> base{0.50, 0.42, 0.61, 0.55, 0.47, 0.52};
  std::vector<double> better = base;
  for (auto& v : better) v += 0.05;
  const rsi::MetricSample b{"return", base, 0.05};
  const rsi::MetricSample c{"return", better, 0.05};
  const std::vector<rsi::MetricSample> others_b{{"adaptation", base, 0.05}, {"generalisation", base, 0.05}};
  auto others_c = others_b;
  const auto accepted = rsi::judge(c, b, others_c, others_b);
  CHECK(accepted.accepted);
  CHECK(accepted.verdicts.size() == 3);
  CHECK(accepted.verdicts[0].test.p_value == 1.0 / 64);
  // Better on the primary, but generalisation 0.2 worse on every seed (margin 0.05): refused, named.
  for (auto& v : others_c[1].per_seed) v -= 0.2;
  const auto worse = rsi::judge(c, b, others_c, others_b);
  CHECK_FALSE(worse.accepted);
  CHECK(worse.why.find("possibly worse on generalisation") != std::string::npos);
  CHECK(worse.verdicts[1].passed);
  CHECK_FALSE(worse.verdicts[2].passed);
  // Not better: refused whatever the others do.
  const auto same = rsi::judge(b, b, others_b, others_b);
  CHECK_FALSE(same.accepted);
  CHECK(same.why.find("return not better") != std::string::npos);
  CHECK_THROWS_AS((void)rsi::judge(c, rsi::MetricSample{"score", base, 0.05}, others_b, others_b), InvalidArgument);
  CHECK_THROWS_AS((void)rsi::judge(c, b, {others_b[0]}, others_b), InvalidArgument);

  // The held-out re-check: 0.02 worse passes a margin of 0.05, 0.1 worse does not.
  std::vector<double> slightly = base, clearly = base;
  for (auto& v : slightly) v -= 0.02;
  for (auto& v : clearly) v -= 0.1;
  CHECK(rsi::confirm({"return", slightly, 0}, {"return", base, 0}, 0.05).passed);
  CHECK_FALSE(rsi::confirm({"return", clearly, 0}, {"return", base, 0}, 0.05).passed);

  // Under the null (candidate and baseline the same policy, fresh noise per seed) the primary test
  // accepts at its level: 51 of the 1024 sign patterns of 10 seeds lie below 0.05, 4.98%.
  std::mt19937_64 rng(8);
  std::normal_distribution<double> noise(0.5, 0.1);
  int accepted_nulls = 0;
  const int trials = 2000;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> x(10), y(10);
    for (auto& v : x) v = noise(rng);
    for (auto& v : y) v = noise(rng);
    if (rsi::judge({"return", x, 0.05}, {"return", y, 0.05}, {}, {}).accepted) ++accepted_nulls;
  }
  const double rate = static_cast<double>(accepted_nulls) / trials;
  MESSAGE("null proposals accepted: ", accepted_nulls, " of ", trials);
  CHECK(rate > 0.035);
  CHECK(rate < 0.065);
}

TEST_CASE("the safety monitor rolls back on degradation, non-finite values or instability, and stops after 3") {
  rsi::SafetyMonitor monitor({.degradation = 0.1, .max_spread = 0.3, .max_consecutive_failures = 3});
  using V = rsi::SafetyMonitor::Verdict;
  CHECK(monitor.check({0.5, 0.6, 0.55}) == V::good);
  CHECK(*monitor.best() == doctest::Approx(0.55));
  CHECK(monitor.check({0.5, 0.52, 0.5}) == V::good);  // 0.04 below the best: within the tolerance
  CHECK(monitor.check({0.3, 0.35, 0.4}) == V::roll_back);
  CHECK(monitor.why().find("fell to") != std::string::npos);
  CHECK(monitor.check({0.6, std::nan(""), 0.6}) == V::roll_back);
  CHECK(monitor.why() == "a primary score is not finite");
  CHECK(monitor.consecutive_failures() == 2);
  CHECK(monitor.check({0.6, 0.6, 0.6}) == V::good);  // a good cycle resets the count
  CHECK(monitor.consecutive_failures() == 0);
  CHECK(monitor.check({0.0, 1.2, 0.6}) == V::roll_back);  // spread 0.6
  CHECK(monitor.why().find("spread") != std::string::npos);
  CHECK(monitor.check({0.6, 0.6}, {std::numeric_limits<double>::infinity()}) == V::roll_back);
  CHECK(monitor.check({0.1, 0.1}) == V::stop);
  const rsi::SafetyOptions never{.max_consecutive_failures = 0};
  CHECK_THROWS_AS(rsi::SafetyMonitor{never}, InvalidArgument);
}

namespace {

// A subject whose "training" is gradient descent on x^2 at rate lr; its score on a seed is -x^2
// plus a little noise of that seed; a proposal doubles or halves lr. `poison_after` trainings
// (counted down by every copy) turn x into NaN.
struct Toy {
  using proposal_type = double;
  double x = 3;
  double lr = 0.01;
  int poison_after = -1;

  [[nodiscard]] double propose(std::mt19937_64& rng) const { return (rng() >> 63) != 0 ? lr * 2 : lr / 2; }
  [[nodiscard]] Toy with(double new_lr) const {
    Toy t = *this;
    t.lr = new_lr;
    return t;
  }
  [[nodiscard]] nlohmann::json describe(double new_lr) const { return {{"lr", new_lr}}; }
  void train(long budget) {
    for (long k = 0; k < budget; ++k) x -= lr * 2 * x;
    if (poison_after > 0 && --poison_after == 0) x = std::nan("");
  }
  [[nodiscard]] rsi::Evaluation evaluate(std::span<const std::uint64_t> seeds) const {
    rsi::Evaluation e{{"score", {}, 0.05}, {{"steadiness", {}, 0.05}}};
    for (const auto s : seeds) {
      std::mt19937_64 rng(s);
      const double noise = std::normal_distribution<double>(0.0, 0.001)(rng);
      e.primary.per_seed.push_back(-x * x + noise);
      e.others[0].per_seed.push_back(-std::abs(noise));
    }
    return e;
  }
  void save(const std::filesystem::path& path) const {
    const nlohmann::json j{{"x", x}, {"lr", lr}, {"poison_after", poison_after}};
    io::write_file_atomically("Toy::save", path, j.dump());
  }
  void load(const std::filesystem::path& path) {
    std::ifstream in(path);
    const auto j = nlohmann::json::parse(in);
    x = j["x"].get<double>();
    lr = j["lr"].get<double>();
    poison_after = j["poison_after"].get<int>();
  }
};
static_assert(rsi::ImprovableSubject<Toy>);

rsi::LoopOptions toy_options() {
  return {.eval_seeds = {1, 2, 3, 4, 5, 6}, .heldout_seeds = {101, 102, 103, 104, 105, 106}, .budget = 5,
          .confirm_margin = 0.05, .safety = {.degradation = 0.5, .max_spread = 1.0, .max_consecutive_failures = 3},
          .keep = 2, .seed = 9};
}

std::string file_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("the loop: baseline first, faster learning accepted, a resumed run repeats an interrupted cycle exactly") {
  const auto root = std::filesystem::temp_directory_path() / ("ssmrl_rsi_loop_" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  const auto straight = root / "straight";
  {
    rsi::ImprovementLoop<Toy> loop(Toy{}, straight, toy_options());
    REQUIRE(loop.history().records().size() == 1);
    const auto& baseline = loop.history().records()[0];
    CHECK(baseline["decision"] == "baseline");
    CHECK(baseline["eval"]["primary"]["per_seed"].size() == 6);
    CHECK(baseline["heldout"]["primary"]["per_seed"].size() == 6);
    int accepted = 0;
    int rejected = 0;
    for (int c = 0; c < 6; ++c) {
      const auto outcome = loop.run_cycle();
      accepted += outcome == rsi::CycleOutcome::accepted ? 1 : 0;
      rejected += outcome == rsi::CycleOutcome::rejected ? 1 : 0;
    }
    CHECK(accepted >= 1);
    CHECK(accepted + rejected == 6);
    // Every accepted proposal doubled the rate (halving learns slower and is never better).
    for (const auto& r : loop.history().records()) {
      if (r["decision"] == "accepted") {
        CHECK(r["heldout"]["confirmed"] == true);
        CHECK(r["p_value"].get<double>() < 0.05);
      }
    }
    CHECK(loop.subject().lr > 0.01);
    CHECK(std::abs(loop.subject().x) < 3 * std::pow(1 - 0.02, 30));  // better than the same training at 0.01
  }
  // The same run interrupted: 3 cycles, then a crash after cycle 4's checkpoint, before its line.
  const auto interrupted = root / "interrupted";
  {
    rsi::ImprovementLoop<Toy> loop(Toy{}, interrupted, toy_options());
    for (int c = 0; c < 3; ++c) (void)loop.run_cycle();
  }
  {
    std::ofstream(interrupted / "checkpoints" / "cycle_4.safetensors") << "{\"x\": 0, \"lr\": 1, \"poison_after\": -1}";
    std::ofstream(interrupted / "history.jsonl", std::ios::app) << "{\"cycle\": 4, \"decis";
  }
  {
    rsi::ImprovementLoop<Toy> loop(Toy{.x = 100, .lr = 0.5}, interrupted, toy_options());
    CHECK(loop.next_cycle() == 4);
    CHECK_FALSE(std::filesystem::exists(interrupted / "checkpoints" / "cycle_4.safetensors"));
    for (int c = 0; c < 3; ++c) (void)loop.run_cycle();
  }
  // No cycle lost or counted twice, and the histories are the same line for line.
  CHECK(file_text(interrupted / "history.jsonl") == file_text(straight / "history.jsonl"));
  CHECK(file_text(interrupted / "checkpoints" / "cycle_6.safetensors") ==
        file_text(straight / "checkpoints" / "cycle_6.safetensors"));
  CHECK(std::filesystem::exists(straight / "checkpoints" / "best.safetensors"));
  CHECK_FALSE(std::filesystem::exists(straight / "checkpoints" / "cycle_4.safetensors"));  // keep 2
  std::filesystem::remove_all(root);
}

TEST_CASE("the loop rolls back a cycle that ends non-finite and stops after three in a row") {
  const auto dir = std::filesystem::temp_directory_path() / ("ssmrl_rsi_stop_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  {
    // Every copy turns NaN at its second training: cycle 1 is good, then each cycle fails.
    rsi::ImprovementLoop<Toy> loop(Toy{.poison_after = 2}, dir, toy_options());
    CHECK(loop.run_cycle() != rsi::CycleOutcome::rolled_back);
    const double x_after_one = loop.subject().x;
    CHECK(loop.run_cycle() == rsi::CycleOutcome::rolled_back);
    CHECK(loop.subject().x == x_after_one);  // back to the last good checkpoint
    CHECK(loop.history().records().back()["safety"] == "a primary score is not finite");
    CHECK(loop.run_cycle() == rsi::CycleOutcome::rolled_back);
    CHECK(loop.run_cycle() == rsi::CycleOutcome::stopped);
    CHECK(loop.stopped());
    CHECK(message_of<InvalidArgument>([&] { (void)loop.run_cycle(); }).find("stopped after 3 consecutive failures") !=
          std::string::npos);
  }
  // Reopened, it is still stopped, with the last good state.
  rsi::ImprovementLoop<Toy> reopened(Toy{}, dir, toy_options());
  CHECK(reopened.stopped());
  CHECK(std::isfinite(reopened.subject().x));
  // A history that is not this loop's, or whose last checkpoint is gone, is refused.
  {
    std::filesystem::create_directories(dir / "foreign");
    std::ofstream(dir / "foreign" / "history.jsonl") << "{\"cycle\": 0}\n";
  }
  CHECK(message_of<InvalidArgument>([&] { rsi::ImprovementLoop<Toy>(Toy{}, dir / "foreign", toy_options()); })
            .find("not a history of this loop") != std::string::npos);
  std::filesystem::remove(dir / "checkpoints" / "cycle_4.safetensors");
  CHECK(message_of<InvalidArgument>([&] { rsi::ImprovementLoop<Toy>(Toy{}, dir, toy_options()); })
            .find("ends at cycle 4 but its checkpoint") != std::string::npos);
  CHECK_THROWS_AS(rsi::ImprovementLoop<Toy>(Toy{}, dir / "other", [] {
                    auto o = toy_options();
                    o.heldout_seeds.push_back(3);
                    return o;
                  }()),
                  InvalidArgument);
  std::filesystem::remove_all(dir);
}

namespace {

// A subject whose training is noise (a random walk from its own stream) and whose proposals only
// reseed that stream: the issue's null, where any difference comes from training's randomness.
struct Walk {
  using proposal_type = std::uint64_t;
  double v = 0;
  std::uint64_t stream = 1;
  long steps = 0;

  [[nodiscard]] std::uint64_t propose(std::mt19937_64& rng) const { return rng(); }
  [[nodiscard]] Walk with(std::uint64_t seed) const {
    Walk w = *this;
    w.stream = seed;
    return w;
  }
  [[nodiscard]] Walk replicate(int k) const {
    Walk w = *this;
    w.stream = env::derive_seed(stream, static_cast<std::uint64_t>(k));
    return w;
  }
  [[nodiscard]] nlohmann::json describe(std::uint64_t seed) const { return {{"stream", seed}}; }
  void train(long budget) {
    std::mt19937_64 rng(env::derive_seed(stream, static_cast<std::uint64_t>(steps)));
    for (long k = 0; k < budget; ++k) v += std::normal_distribution<double>(0.0, 0.1)(rng);
    steps += budget;
  }
  [[nodiscard]] rsi::Evaluation evaluate(std::span<const std::uint64_t> seeds) const {
    rsi::Evaluation e{{"score", {}, 0.05}, {}};
    for (const auto s : seeds) {
      std::mt19937_64 rng(s);
      e.primary.per_seed.push_back(v + std::normal_distribution<double>(0.0, 0.01)(rng));
    }
    return e;
  }
  void save(const std::filesystem::path& path) const {
    const nlohmann::json j{{"v", v}, {"stream", stream}, {"steps", steps}};
    io::write_file_atomically("Walk::save", path, j.dump());
  }
  void load(const std::filesystem::path& path) {
    const auto j = nlohmann::json::parse(io::read_file("Walk::load", path));
    v = j["v"].get<double>();
    stream = j["stream"].get<std::uint64_t>();
    steps = j["steps"].get<long>();
  }
};
static_assert(rsi::ReplicableSubject<Walk>);

// The share of `cycles` cycles whose proposal the judge accepted (kept or withdrawn on the held-out seeds).
double null_acceptance(int replicates, int cycles, const std::filesystem::path& dir) {
  rsi::LoopOptions o{.eval_seeds = {1, 2, 3, 4, 5, 6}, .heldout_seeds = {11, 12, 13, 14, 15, 16}, .budget = 4,
                     .replicates = replicates, .safety = {.degradation = 1e9, .max_spread = 1e9}, .seed = 5};
  rsi::ImprovementLoop<Walk> loop(Walk{}, dir, o);
  int accepted = 0;
  for (int c = 0; c < cycles; ++c) {
    const auto outcome = loop.run_cycle();
    accepted += outcome == rsi::CycleOutcome::accepted || outcome == rsi::CycleOutcome::withdrawn ? 1 : 0;
  }
  return static_cast<double>(accepted) / cycles;
}

}  // namespace

TEST_CASE("the loop's null: one training per arm judged per seed accepts a reseed often; replicates about 5%") {
  const auto root = std::filesystem::temp_directory_path() / ("ssmrl_rsi_null_" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  // Per seed, the evaluation noise (0.01) is all the test sees; the two trainings differ by 0.28 on
  // average, so about half of the reseeds look better.
  const double per_seed = null_acceptance(1, 100, root / "per_seed");
  MESSAGE("reseeds accepted judged per seed: " << per_seed);
  CHECK(per_seed > 0.3);
  // Five replicates pair the trainings: accepted only when all five differences are positive (p 1/32).
  const double replicated = null_acceptance(5, 400, root / "replicated");
  MESSAGE("reseeds accepted with 5 replicates: " << replicated);
  CHECK(replicated >= 0.01);
  CHECK(replicated <= 0.07);
  CHECK_THROWS_AS(rsi::ImprovementLoop<Toy>(Toy{}, root / "toy", [] {
                    auto o = toy_options();
                    o.replicates = 3;
                    return o;
                  }()),
                  InvalidArgument);
  std::filesystem::remove_all(root);
}
