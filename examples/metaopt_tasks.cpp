// Meta-optimizers on two real trainings, each run on several seeds: (1) sequence regression, a dense
// SSM predicting noisy sines one step ahead with AdamW (fit_sine_ssm scaled up); (2) PPO on
// CartPole-v1 with rl::Trainer. Arms: the fixed learning rate, PlateauMetaOptimizer,
// AdvancedPlateauMetaOptimizer, and RLMetaOptimizer learning online (from scratch in each run; on
// the regression with additive and with multiplicative weight-decay moves), and RLMetaOptimizer
// pretrained over PRETRAIN_RUNS runs of other seeds (half as many for PPO) deployed frozen or still
// learning. Prints final result,
// area under the curve and the meta-optimizer's share of the wall time, and writes SVG timelines
// of the learning rate and the weight decay (seed 1) into OUT_DIR.
//
//   metaopt_tasks [SEEDS=5] [REGRESSION_STEPS=1500] [PPO_UPDATES=100] [OUT_DIR=.] [PRETRAIN_RUNS=20]
#include <ssmrl/ssmrl.hpp>
#include <ssmrl/metaopt/rl.hpp>
#include <ssmrl/metaopt/steering.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <numbers>
#include <numeric>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "support/noisy_sines.hpp"
#include "support/spread.hpp"

using namespace ssmrl;
using Mat = ad::Matrix<double>;
using Clock = std::chrono::steady_clock;

namespace {

struct Run {
  double final_value = 0;
  double auc = 0;
  double overhead = 0;  // share of the wall time spent in the meta-optimizer
  std::vector<double> x, lr, weight_decay;
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// ---- sequence regression ----

// Noisy sines, input noise 0.1.
examples::Sequences make_sequences(ad::Index batch, ad::Index steps, std::mt19937_64& rng) {
  return examples::make_sequences(batch, steps, 0.1, rng);
}

template <class T>
struct SineModel {
  nn::DenseSsmParams<T> cell;
  nn::LinearParams<T> out;
  static constexpr std::array<std::string_view, 2> names{"cell", "out"};
  auto fields() { return std::tie(cell, out); }
  auto fields() const { return std::tie(cell, out); }
  template <class U>
  using rebind = SineModel<U>;
};

constexpr double regression_lr = 3e-3;
constexpr long regression_every = 10;

// `Meta` is void for the fixed rate. The loss the meta-optimizer reads is the mean training loss of
// the steps since its last decision.
template <class Meta>
Run regression(std::uint64_t seed, long iterations, Meta* meta) {
  constexpr ad::Index batch = 32;
  constexpr ad::Index steps = 80;
  std::mt19937_64 rng(seed);
  std::mt19937_64 test_rng(seed + 1000);
  const nn::DenseSsmCell<double> cell({.input = 1, .state = 32, .output = 64});
  SineModel<Mat> model{cell.init_params(rng), nn::init_linear<double>(64, 1, rng)};
  ad::Tape<double> tape;
  auto predict = [&](const SineModel<ad::Var<double>>& m, const ad::Var<double>& inputs, ad::Index n) {
    return nn::linear(m.out, cell.forward_sequence(m.cell, inputs, n));
  };
  const auto test = make_sequences(256, steps, test_rng);
  auto evaluate = [&] {
    ad::Tape<double>::Scope scope(tape);
    const auto p = predict(nn::on_tape(tape, model), tape.constant(test.inputs), 256);
    return ad::mean(ad::square(ad::sub(p, tape.constant(test.targets)))).item();
  };
  optim::AdamW<double> adamw({.lr = regression_lr});
  Run run;
  double meta_seconds = 0;
  double loss_sum = 0;
  double log_mse_sum = 0;
  int evaluations = 0;
  const auto started = Clock::now();
  for (long it = 1; it <= iterations; ++it) {
    const auto train = make_sequences(batch, steps, rng);
    tape.clear();
    const auto vars = nn::on_tape(tape, model);
    const auto loss = ad::mean(ad::square(ad::sub(predict(vars, tape.constant(train.inputs), batch),
                                                  tape.constant(train.targets))));
    tape.backward(loss);
    auto values = nn::to_list<Mat>(model);
    auto grads = nn::to_list<Mat>(nn::gradients_of<double>(vars));
    const double grad_norm = optim::clip_grad_norm(std::span<Mat>(grads), 1.0);
    adamw.step(std::span<Mat>(values), std::span<const Mat>(grads));
    model = nn::from_list(model, values);
    loss_sum += loss.item();
    if constexpr (!std::is_void_v<Meta>) {
      if (it % regression_every == 0) {
        const auto t = Clock::now();
        double weight_norm = 0;
        for (const auto& v : values) weight_norm += v.squaredNorm();
        control::Telemetry m;
        m.add("loss", loss_sum / regression_every);
        m.add("grad_norm", grad_norm);
        m.add("weight_norm", std::sqrt(weight_norm));
        m.add("lr", adamw.lr());
        m.add("weight_decay", adamw.weight_decay());
        const auto c = meta->update(m, it);
        if (c.lr) adamw.set_lr(std::clamp(*c.lr, 1e-7, 1.0));
        if (c.weight_decay) adamw.set_weight_decay(std::clamp(*c.weight_decay, 0.0, 1e-2));
        meta_seconds += seconds_since(t);
      }
    }
    if (it % regression_every == 0) loss_sum = 0;
    if (it % 50 == 0) {
      run.x.push_back(static_cast<double>(it));
      run.lr.push_back(adamw.lr());
      run.weight_decay.push_back(adamw.weight_decay());
    }
    if (it % 100 == 0) {
      log_mse_sum += std::log10(evaluate());
      ++evaluations;
    }
  }
  const double total = seconds_since(started);
  run.final_value = evaluate();
  run.auc = log_mse_sum / evaluations;
  run.overhead = meta_seconds / total;
  return run;
}

// ---- PPO on CartPole-v1 ----

using CartPolePolicy = policy::RecurrentPolicy<nn::MlpCell<float>, policy::CategoricalHead<float>,
                                               nn::LayerNorm<float>, policy::ValueHead<float>>;

rl::TrainerOptions ppo_options(std::uint64_t seed) {
  return {.algorithm = rl::Algorithm::ppo, .envs = 16, .steps = 128, .gamma = 0.99, .gae_lambda = 0.95, .lr = 1e-3,
          .max_grad_norm = 0.5, .epochs = 4, .minibatches = 4, .value_coef = 0.02, .seed = seed};
}

// The meta-optimizer reads the negated mean return of the last 100 episodes after every update.
template <class Meta>
Run ppo(std::uint64_t seed, long updates, Meta* meta) {
  CartPolePolicy policy(nn::MlpCell<float>({.input = 4, .hidden = {64, 64}}), policy::CategoricalHead<float>(64, 2),
                        nn::LayerNorm<float>(64), policy::ValueHead<float>(64), seed);
  rl::Trainer<CartPolePolicy, env::CartPole> trainer(std::move(policy), ppo_options(seed));
  Run run;
  double meta_seconds = 0;
  double return_sum = 0;
  long measured = 0;
  const auto started = Clock::now();
  for (long u = 1; u <= updates; ++u) {
    const auto s = trainer.update();
    if (std::isfinite(s.mean_return)) {
      return_sum += s.mean_return;
      ++measured;
    }
    if constexpr (!std::is_void_v<Meta>) {
      const auto t = Clock::now();
      control::Telemetry m;
      m.add("loss", -s.mean_return);
      m.add("grad_norm", s.grad_norm);
      meta->after_update(trainer, m, u);
      meta_seconds += seconds_since(t);
    }
    run.x.push_back(static_cast<double>(s.env_steps));
    run.lr.push_back(trainer.optimizer().lr());
    run.weight_decay.push_back(trainer.optimizer().weight_decay());
  }
  const double total = seconds_since(started);
  const auto returns = trainer.evaluate(100, policy::ActMode::sample, 9000001 + seed);
  run.final_value = std::accumulate(returns.begin(), returns.end(), 0.0) / static_cast<double>(returns.size());
  run.auc = measured > 0 ? return_sum / static_cast<double>(measured) : NAN;
  run.overhead = meta_seconds / total;
  return run;
}

// ---- reporting ----

using examples::spread;

struct Arm {
  std::string name;
  std::vector<Run> runs;
};

void table(const char* title, const char* final_name, const char* auc_name, const std::vector<Arm>& arms,
           const char* format) {
  std::printf("\n%s\n\n| arm | %s | %s | meta-optimizer share of the time |\n|---|---|---|---|\n", title, final_name,
              auc_name);
  for (const auto& a : arms) {
    std::vector<double> f, auc, over;
    for (const auto& r : a.runs) {
      f.push_back(r.final_value);
      auc.push_back(r.auc);
      over.push_back(r.overhead);
    }
    const auto sf = spread(f);
    const auto sa = spread(auc);
    const auto so = spread(over);
    char cell_f[64];
    char cell_a[64];
    std::snprintf(cell_f, sizeof cell_f, format, sf.mean, sf.std);
    std::snprintf(cell_a, sizeof cell_a, "%.3f ± %.3f", sa.mean, sa.std);
    std::printf("| %s | %s | %s | %.2f%% |\n", a.name.c_str(), cell_f, cell_a, 100 * so.mean);
  }
  std::fflush(stdout);
}

void timelines(const std::filesystem::path& dir, const std::string& task, const char* x_label,
               const std::vector<Arm>& arms) {
  io::LinePlot lr{task + ": learning rate (seed 1)", x_label, "log10 learning rate", {}};
  io::LinePlot wd{task + ": weight decay (seed 1)", x_label, "weight decay", {}};
  for (const auto& a : arms) {
    const auto& r = a.runs.front();
    std::vector<double> log_lr;
    for (const double v : r.lr) log_lr.push_back(std::log10(v));
    lr.series.push_back({a.name, r.x, log_lr});
    wd.series.push_back({a.name, r.x, r.weight_decay});
  }
  io::write_svg(dir / ("metaopt-" + task + "-lr.svg"), lr);
  io::write_svg(dir / ("metaopt-" + task + "-weight-decay.svg"), wd);
}

// One RLMetaOptimizer trained over `runs` runs of seeds 100001, 100002, ... (none an evaluation
// seed), learning and sampling; reset() between runs keeps its policy.
template <class Task>
metaopt::RLMetaOptimizer pretrained(Task& task, long runs) {
  metaopt::RLMetaOptimizer m({.seed = 7});
  for (long k = 1; k <= runs; ++k) {
    m.reset();
    task(static_cast<std::uint64_t>(100000 + k), &m);
  }
  m.reset();
  return m;
}

template <class Task>
void add_arms(std::vector<Arm>& arms, int seeds, Task task, bool weight_decay_moves, long pretrain_runs) {
  const auto teacher = pretrained(task, pretrain_runs);
  const std::string runs = std::to_string(pretrain_runs);
  Arm frozen{"RLMetaOptimizer pretrained on " + runs + " runs, frozen", {}};
  Arm learning{"RLMetaOptimizer pretrained on " + runs + " runs, still learning", {}};
  Arm fixed{"fixed lr", {}};
  Arm plateau{"PlateauMetaOptimizer", {}};
  Arm advanced{"AdvancedPlateauMetaOptimizer", {}};
  Arm rl_add{"RLMetaOptimizer online, additive wd moves", {}};
  Arm rl_mul{"RLMetaOptimizer online, multiplicative wd moves", {}};
  for (int s = 1; s <= seeds; ++s) {
    const auto seed = static_cast<std::uint64_t>(s);
    fixed.runs.push_back(task(seed, static_cast<void*>(nullptr)));
    metaopt::PlateauMetaOptimizer p;
    plateau.runs.push_back(task(seed, &p));
    metaopt::AdvancedPlateauMetaOptimizer a;
    advanced.runs.push_back(task(seed, &a));
    metaopt::RLMetaOptimizer r({.seed = seed});
    rl_add.runs.push_back(task(seed, &r));
    if (weight_decay_moves) {
      metaopt::RLMetaOptimizer m({.weight_decay_move = metaopt::WeightDecayMove::multiplicative, .seed = seed});
      rl_mul.runs.push_back(task(seed, &m));
    }
    // The pretrained policy, its draws keyed by the evaluation seed.
    auto state = teacher.state();
    metaopt::RLMetaOptimizer f({.seed = seed});
    f.set_state(state);
    f.set_learning(false);
    frozen.runs.push_back(task(seed, &f));
    metaopt::RLMetaOptimizer l({.seed = seed});
    l.set_state(state);
    learning.runs.push_back(task(seed, &l));
  }
  arms = {fixed, plateau, advanced, rl_add};
  if (weight_decay_moves) arms.push_back(rl_mul);
  arms.push_back(frozen);
  arms.push_back(learning);
}

}  // namespace

int main(int argc, char** argv) {
  const int seeds = argc > 1 ? std::atoi(argv[1]) : 5;
  const long regression_steps = argc > 2 ? std::atol(argv[2]) : 1500;
  const long ppo_updates = argc > 3 ? std::atol(argv[3]) : 100;
  const std::filesystem::path out = argc > 4 ? argv[4] : ".";
  const long pretrain_runs = argc > 5 ? std::atol(argv[5]) : 20;
  if (seeds <= 0 || regression_steps < 100 || ppo_updates <= 0 || pretrain_runs <= 0) {
    std::fprintf(stderr,
                 "metaopt_tasks: SEEDS %d, PPO_UPDATES %ld and PRETRAIN_RUNS %ld must be positive, REGRESSION_STEPS "
                 "%ld at least 100\n",
                 seeds, ppo_updates, pretrain_runs, regression_steps);
    return 2;
  }
  std::filesystem::create_directories(out);
  const auto begun = Clock::now();
  std::vector<Arm> regression_arms;
  add_arms(
      regression_arms, seeds,
      [&](std::uint64_t seed, auto* meta) {
        using Meta = std::remove_pointer_t<decltype(meta)>;
        return regression<Meta>(seed, regression_steps, meta);
      },
      true, pretrain_runs);
  char title[256];
  std::snprintf(title, sizeof title,
                "Sequence regression (dense SSM, state 32, readout 64; AdamW from lr %g, wd 0; %ld steps of 32 x 80; "
                "decisions every %ld steps), %d seeds, mean ± std over seeds",
                regression_lr, regression_steps, regression_every, seeds);
  table(title, "final test MSE", "AUC: mean log10 test MSE (every 100 steps)", regression_arms, "%.5f ± %.5f");
  timelines(out, "regression", "step", regression_arms);

  std::vector<Arm> ppo_arms;
  add_arms(
      ppo_arms, seeds,
      [&](std::uint64_t seed, auto* meta) {
        using Meta = std::remove_pointer_t<decltype(meta)>;
        if constexpr (std::is_void_v<Meta>) {
          return ppo<void>(seed, ppo_updates, nullptr);
        } else {
          metaopt::TrainerSteering<Meta> steering(*meta);
          auto run = ppo<metaopt::TrainerSteering<Meta>>(seed, ppo_updates, &steering);
          *meta = steering.meta();  // what it learnt, for pretraining
          return run;
        }
      },
      false, std::max(1L, pretrain_runs / 2));
  std::snprintf(title, sizeof title,
                "PPO on CartPole-v1 (cartpole-ppo's options: Adam from lr 1e-3, 16 envs x 128 steps; %ld updates; "
                "decisions every update), %d seeds, mean ± std over seeds; final: 100 sampled episodes on seeds "
                "9000001 + seed",
                ppo_updates, seeds);
  table(title, "final return", "AUC: mean return of the last 100 episodes, over updates", ppo_arms, "%.1f ± %.1f");
  timelines(out, "cartpole", "environment steps", ppo_arms);
  std::printf("\n%.0f s in all\n", seconds_since(begun));
  return 0;
}
