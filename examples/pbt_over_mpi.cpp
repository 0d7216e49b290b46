// Population Based Training spread over the ranks of an mpirun job: PPO learners on Pendulum-v1
// in a control::Population over dist::MpiCommunicator, each rank stepping its share of the members.
// Rank 0 prints every step's scores and copies, then each member's parameter hash (from the rank
// that steps it) and the best member's evaluation: the same lines for any number of ranks, and
// without mpirun (one process).
//
//   mpirun -np 2 pbt_over_mpi [MEMBERS=4] [STEPS=6]
#include <ssmrl/dist/mpi.hpp>
#include <ssmrl/ssmrl.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <vector>

using namespace ssmrl;

namespace {

using Gaussian = policy::GaussianHead<float, policy::GaussianStd::state_dependent>;
using Policy = policy::RecurrentPolicy<nn::MlpCell<float>, Gaussian, nn::LayerNorm<float>, policy::ValueHead<float>>;
using Trainer = rl::Trainer<Policy, env::Pendulum>;

// A smaller pendulum-ppo: a few seconds per member and step on one core.
std::unique_ptr<Trainer> member(int m, double lr, long steps) {
  const auto seed = 100 + static_cast<std::uint64_t>(m);
  Policy policy(nn::MlpCell<float>({.input = 3, .hidden = {32, 32}}), Gaussian({.input = 32, .actions = 1}),
                nn::LayerNorm<float>(32), policy::ValueHead<float>(32), seed);
  return std::make_unique<Trainer>(
      std::move(policy), rl::TrainerOptions{.algorithm = rl::Algorithm::ppo, .envs = 8, .steps = 100, .gamma = 0.9,
                                            .gae_lambda = 0.95, .lr = lr, .max_grad_norm = 0.5, .epochs = 2,
                                            .minibatches = 2, .value_coef = 0.02, .total_updates = steps,
                                            .seed = seed});
}

double parameter_hash(const Trainer& t) {
  const auto flat = nn::flatten<float>(t.policy().params());
  return dist::value_hash(std::span<const float>(flat.data(), static_cast<std::size_t>(flat.size())));
}

int run(int members, long steps, const dist::MpiCommunicator& world) {
  std::vector<std::unique_ptr<Trainer>> population_members;
  for (int m = 0; m < members; ++m) population_members.push_back(member(m, 1e-4 * std::pow(4.0, m), steps));
  auto lr = Trainer::knob_schema(population_members[0]->options()).subset({"lr"}, "pbt_over_mpi")[0];
  lr.lower = 1e-5;
  lr.upper = 0.3;
  control::Population<Trainer, dist::MpiCommunicator> population(
      std::move(population_members), control::KnobSchema({lr}), {.interval = 2, .threads = 1, .seed = 7}, world);
  const bool writer = world.rank() == 0;
  if (writer) std::printf("%d members on %d rank%s, %ld steps\n", members, world.size(), world.size() == 1 ? "" : "s",
                          steps);
  for (long s = 0; s < steps; ++s) {
    const auto step = population.step();
    if (!writer) continue;
    std::printf("step %ld: return", step.step);
    for (const double v : step.scores) std::printf(" %.17g", v);
    for (const auto& c : step.copies) std::printf(", %zu copies %zu", c.to, c.from);
    std::printf("\n");
  }
  // Each member's hash from the rank that steps it; the best member evaluated there and broadcast.
  std::vector<double> hashes(static_cast<std::size_t>(members));
  const auto mine = dist::share(hashes.size(), world);
  for (std::size_t m = mine.begin; m < mine.end; ++m) hashes[m] = parameter_hash(population.member(m));
  dist::allgather_parts(world, std::span<double>(hashes), hashes.size(), 1);
  const auto best = population.best();
  std::vector<double> evaluation(1);
  if (world.rank() == population.owner(best)) {
    const auto r = population.member(best).evaluate(5, policy::ActMode::greedy, 900000);
    evaluation[0] = std::accumulate(r.begin(), r.end(), 0.0) / static_cast<double>(r.size());
  }
  world.broadcast(std::span<double>(evaluation), population.owner(best));
  if (writer) {
    for (int m = 0; m < members; ++m) std::printf("member %d: parameter hash %.0f\n", m, hashes[m]);
    std::printf("best member %zu: greedy return %.17g over 5 episodes\n", best, evaluation[0]);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::unique_ptr<dist::MpiEnvironment> mpi;
  if (dist::launched_by_mpi_launcher()) mpi = std::make_unique<dist::MpiEnvironment>(argc, argv);
  const dist::MpiCommunicator world;
  try {
    const int members = argc > 1 ? std::atoi(argv[1]) : 4;
    const long steps = argc > 2 ? std::atol(argv[2]) : 6;
    return run(members, steps, world);
  } catch (const std::exception& e) {
    dist::abort_job(e.what());  // the other ranks must not wait for this one
  }
}
