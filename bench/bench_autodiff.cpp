// Autodiff benchmarks: workload W2 (dense SSM categorical policy, REINFORCE loss, forward and
// backward) through the tape and by hand in plain Eigen, and a MAML meta-step, first and second order.
#include <benchmark/benchmark.h>
#include <ssmrl/ssmrl.hpp>

#include <array>
#include <vector>

#include "support/workloads.hpp"

namespace {

using namespace ssmrl;
using Scalar = float;
using Mat = ad::Matrix<Scalar>;
using W2 = test::W2;
using Policy = test::DenseSsmCategorical<Scalar>;
using VarParams = Policy::VarParams;

// Floating-point operations of the matrix products of one W2 forward and backward pass.
double w2_flops() {
  const double n = W2::state, h = W2::hidden, o = W2::obs, a = W2::actions;
  const double cols = W2::batch * W2::steps;
  const double recurrence = 2 * n * n * W2::batch * (W2::steps - 1);
  const double forward = 2 * n * o * cols + recurrence + 2 * h * n * cols + 2 * h * o * cols + 2 * a * h * cols;
  const double backward = 2 * n * o * cols + 2 * recurrence + 4 * h * n * cols + 2 * h * o * cols + 4 * a * h * cols;
  return forward + backward;
}

void BM_SeqFwdBwd_Tape(benchmark::State& state) {
  const auto data = test::random_sequence_batch<Scalar>(W2::obs, W2::actions, W2::batch, W2::steps, 1);
  const auto policy = test::make_w2_policy<Scalar>(2);
  std::vector<Mat> grads;
  ad::Tape<Scalar> tape;
  for (auto _ : state) {
    benchmark::DoNotOptimize(test::reinforce_step(tape, policy, data, grads));
    benchmark::DoNotOptimize(grads[0].data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(w2_flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SeqFwdBwd_Tape)->Unit(benchmark::kMillisecond);

// The same computation with a hand-derived backward, from the same Eigen products, into buffers
// allocated once.
struct ManualW2 {
  struct Weights {
    Mat A, B, C, D, c, W, b;
  };
  Weights p;
  const test::SequenceBatch<Scalar>& data;
  Mat inputs, hidden, y, logits, d_logits, d_y, d_hidden;
  Weights g;

  ManualW2(const Policy::Params& params, const test::SequenceBatch<Scalar>& d)
      : p{params.cell.A, params.cell.B, params.cell.C, params.cell.D, params.cell.c, params.head.W, params.head.b},
        data(d) {
    const auto cols = d.batch * d.steps;
    inputs.resize(W2::state, cols);
    hidden.resize(W2::state, cols);
    y.resize(W2::hidden, cols);
    logits.resize(W2::actions, cols);
    d_logits.resize(W2::actions, cols);
    d_y.resize(W2::hidden, cols);
    d_hidden.resize(W2::state, cols);
    g = p;
  }

  Scalar run() {
    const auto b = data.batch;
    const auto cols = b * data.steps;
    inputs.noalias() = p.B * data.obs;
    hidden.leftCols(b) = inputs.leftCols(b);
    for (ad::Index t = 1; t < data.steps; ++t) {
      hidden.middleCols(t * b, b).noalias() = p.A * hidden.middleCols((t - 1) * b, b);
      hidden.middleCols(t * b, b) += inputs.middleCols(t * b, b);
    }
    y.noalias() = p.C * hidden;
    y.noalias() += p.D * data.obs;
    y = (y.colwise() + p.c.col(0)).array().tanh().matrix();
    logits.noalias() = p.W * y;
    logits.colwise() += p.b.col(0);
    // loss = -mean(adv * log p(a)); d loss / d logits = adv / n * (softmax - onehot)
    Scalar loss = 0;
    const Scalar inv_n = Scalar(1) / static_cast<Scalar>(cols);
    for (ad::Index j = 0; j < cols; ++j) {
      const Scalar m = logits.col(j).maxCoeff();
      const Scalar lse = m + std::log((logits.col(j).array() - m).exp().sum());
      const auto a = static_cast<ad::Index>(data.actions(0, j));
      const Scalar adv = data.advantages(0, j);
      loss -= adv * (logits(a, j) - lse) * inv_n;
      d_logits.col(j) = ((logits.col(j).array() - lse).exp() * adv * inv_n).matrix();
      d_logits(a, j) -= adv * inv_n;
    }
    g.W.noalias() = d_logits * y.transpose();
    g.b = d_logits.rowwise().sum();
    d_y.noalias() = p.W.transpose() * d_logits;
    d_y.array() *= 1 - y.array().square();
    g.C.noalias() = d_y * hidden.transpose();
    g.D.noalias() = d_y * data.obs.transpose();
    g.c = d_y.rowwise().sum();
    d_hidden.noalias() = p.C.transpose() * d_y;
    g.A.setZero();
    for (ad::Index t = data.steps - 1; t >= 1; --t) {
      const auto d_h = d_hidden.middleCols(t * b, b);
      g.A.noalias() += d_h * hidden.middleCols((t - 1) * b, b).transpose();
      d_hidden.middleCols((t - 1) * b, b).noalias() += p.A.transpose() * d_h;
    }
    g.B.noalias() = d_hidden * data.obs.transpose();
    return loss;
  }
};

void BM_SeqFwdBwd_Manual(benchmark::State& state) {
  const auto data = test::random_sequence_batch<Scalar>(W2::obs, W2::actions, W2::batch, W2::steps, 1);
  const auto policy = test::make_w2_policy<Scalar>(2);
  ManualW2 manual(policy.params(), data);
  for (auto _ : state) {
    benchmark::DoNotOptimize(manual.run());
    benchmark::DoNotOptimize(manual.g.A.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(w2_flops() * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_SeqFwdBwd_Manual)->Unit(benchmark::kMillisecond);

// MAML meta-step: 8 tasks, each a support batch (8 x 50) loss, one inner SGD step (0.1), a query
// batch (8 x 50) loss; the summed query loss differentiated to the initial parameters.
struct MamlWorkload {
  static constexpr int tasks = 8;
  static constexpr Scalar inner_lr = 0.1f;
  std::vector<test::SequenceBatch<Scalar>> support, query;
  Policy policy = test::make_w2_policy<Scalar>(3);
  MamlWorkload() {
    for (int t = 0; t < tasks; ++t) {
      support.push_back(test::random_sequence_batch<Scalar>(W2::obs, W2::actions, 8, 50, 100 + t));
      query.push_back(test::random_sequence_batch<Scalar>(W2::obs, W2::actions, 8, 50, 200 + t));
    }
  }
  ad::Var<Scalar> loss(ad::Tape<Scalar>& tape, const VarParams& p, const test::SequenceBatch<Scalar>& b) const {
    const auto e = policy.evaluate(p, tape.constant(b.obs), b.batch, b.actions);
    return rl::policy_gradient_loss(e.log_prob, tape.constant(b.advantages));
  }
};

void accumulate(std::vector<Mat>& total, const std::vector<ad::Var<Scalar>>& vars, bool first) {
  if (first) total.resize(vars.size());
  for (std::size_t i = 0; i < vars.size(); ++i) {
    if (first) total[i] = vars[i].grad();
    else total[i] += vars[i].grad();
  }
}

// Both orders through MamlLearner: one clone per task, recorded in a nested scope (the meta-gradient
// of the summed query losses is the sum of the tasks' meta-gradients, and the tape stays one task
// long and in cache).
void maml_meta_step(benchmark::State& state, bool first_order) {
  const MamlWorkload w;
  meta::MamlLearner<Scalar, Policy::Params> learner(w.policy.params(),
                                                     {.inner_lr = MamlWorkload::inner_lr, .first_order = first_order});
  ad::Tape<Scalar> tape;
  std::vector<Mat> meta_grad;
  for (auto _ : state) {
    tape.clear();
    const auto meta_vars = learner.meta_variables(tape);
    const auto theta_list = nn::to_list<ad::Var<Scalar>>(meta_vars.params);
    for (int t = 0; t < MamlWorkload::tasks; ++t) {
      ad::Tape<Scalar>::Scope task_scope(tape);
      auto clone = learner.clone(meta_vars);
      clone.adapt(w.loss(tape, clone.params(), w.support[t]));
      tape.backward(w.loss(tape, clone.params(), w.query[t]));
      accumulate(meta_grad, theta_list, t == 0);
    }
    benchmark::DoNotOptimize(meta_grad[0].data());
  }
}
void BM_MamlMetaStep_SecondOrder(benchmark::State& state) { maml_meta_step(state, false); }
void BM_MamlMetaStep_FirstOrder(benchmark::State& state) { maml_meta_step(state, true); }
BENCHMARK(BM_MamlMetaStep_SecondOrder)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MamlMetaStep_FirstOrder)->Unit(benchmark::kMillisecond);

// One whole meta-iteration of 2D navigation, rollouts included: the MAML paper's protocol (meta-batch
// 20, 20 trajectories of 100 steps per task and phase, MLP 64x64 Gaussian policy, one inner step),
// second order, with an Adam outer step.
void BM_MamlNavigationIteration(benchmark::State& state) {
  policy::RecurrentPolicy<nn::MlpCell<Scalar>, policy::GaussianHead<Scalar>> pi(
      nn::MlpCell<Scalar>({.input = 2, .hidden = {64, 64}}), policy::GaussianHead<Scalar>({.input = 64, .actions = 2}),
      {}, {}, 1);
  meta::MetaTrainer trainer(std::move(pi), env::Navigation2DTasks(), {.meta_batch = 20, .trajectories = 20, .horizon = 100});
  for (auto _ : state) benchmark::DoNotOptimize(trainer.iteration().post_adaptation_return);
}
BENCHMARK(BM_MamlNavigationIteration)->Unit(benchmark::kMillisecond);

// The same with the MAML paper's TRPO outer step (second-order Fisher at the adapted parameters),
// its tasks shared among range(0) threads.
void BM_MamlNavigationIteration_Trpo(benchmark::State& state) {
  policy::RecurrentPolicy<nn::MlpCell<Scalar>, policy::GaussianHead<Scalar>> pi(
      nn::MlpCell<Scalar>({.input = 2, .hidden = {64, 64}}), policy::GaussianHead<Scalar>({.input = 64, .actions = 2}),
      {}, {}, 1);
  meta::MetaTrainer trainer(std::move(pi), env::Navigation2DTasks(),
                            {.meta_batch = 20, .trajectories = 20, .horizon = 100, .trpo = true, .max_kl = 0.01,
                             .threads = static_cast<unsigned>(state.range(0))});
  for (auto _ : state) benchmark::DoNotOptimize(trainer.iteration().post_adaptation_return);
}
BENCHMARK(BM_MamlNavigationIteration_Trpo)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
