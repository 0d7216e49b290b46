// Meta-trains a Gaussian MLP policy (two hidden layers of 64 tanh units) on 2D navigation with
// second-order MAML, as the MAML paper does: meta-batch 20 tasks, 20 trajectories of 100 steps per
// task, one inner policy-gradient step of 0.1, the linear feature baseline, a TRPO outer step
// (max KL 0.01). Then evaluates on the 40 held-out goals: mean return before adaptation and after
// 1, 2 and 3 steps.
//
// usage: maml_navigation [--iterations N] [--seed S] [--first-order] [--adam] [--exact-fisher]
#include <ssmrl/ssmrl.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

using namespace ssmrl;

int main(int argc, char** argv) {
  int iterations = 500;
  std::uint64_t seed = 1;
  bool first_order = false;
  bool adam = false;
  bool exact_fisher = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--iterations" && i + 1 < argc) iterations = std::stoi(argv[++i]);
    else if (arg == "--seed" && i + 1 < argc) seed = std::stoull(argv[++i]);
    else if (arg == "--first-order") first_order = true;
    else if (arg == "--adam") adam = true;
    else if (arg == "--exact-fisher") exact_fisher = true;
    else {
      std::fprintf(stderr, "usage: %s [--iterations N] [--seed S] [--first-order] [--adam] [--exact-fisher]\n", argv[0]);
      return 2;
    }
  }
  using Policy = policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>>;
  Policy pi(nn::MlpCell<float>({.input = 2, .hidden = {64, 64}}), policy::GaussianHead<float>({.input = 64, .actions = 2}),
            {}, {}, seed);
  const env::Navigation2DTasks tasks;
  meta::MetaTrainer trainer(std::move(pi), tasks,
                            {.meta_batch = 20, .trajectories = 20, .horizon = 100, .gamma = 0.99, .gae_lambda = 1.0,
                             .inner_lr = 0.1, .first_order = first_order, .outer_lr = 1e-3, .trpo = !adam,
                             .max_kl = 0.01,
                             .fisher = exact_fisher ? meta::TrpoFisher::through_adaptation : meta::TrpoFisher::at_adapted,
                             .seed = seed});
  std::printf("2D navigation, %s-order MAML, %s outer step, seed %llu, %d iterations\n", first_order ? "first" : "second",
              adam ? "Adam" : "TRPO", static_cast<unsigned long long>(seed), iterations);
  const auto start = std::chrono::steady_clock::now();
  for (int it = 0; it < iterations; ++it) {
    const auto s = trainer.iteration();
    if (it % 10 == 0 || it + 1 == iterations) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("iteration %4d  pre-adaptation %7.2f  post-adaptation %7.2f  (%.0f s)\n", it, s.pre_adaptation_return,
                  s.post_adaptation_return, seconds);
      std::fflush(stdout);
    }
  }
  const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto mean = trainer.held_out_curves(3, /*seed=*/12345).mean;  // its own seed, not training's
  std::printf("held-out goals (%zu, 20 trajectories each): before %.2f, after 1 step %.2f, 2 steps %.2f, 3 steps %.2f\n",
              tasks.held_out().size(), mean[0], mean[1], mean[2], mean[3]);
  std::printf("training wall-clock: %.1f s\n", train_seconds);
  return 0;
}
