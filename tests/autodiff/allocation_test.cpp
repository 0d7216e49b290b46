// Counts heap allocations: after the first iteration, the W2 forward and backward loop allocates
// nothing, since the tape keeps its arena blocks and node list across clear().
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/ssmrl.hpp>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cmath>
#include <new>
#include <random>

#include "support/workloads.hpp"

namespace {
std::atomic<long> allocation_count{0};

void* counted_allocate(std::size_t size, std::size_t alignment) {
  allocation_count.fetch_add(1, std::memory_order_relaxed);
  if (size == 0) size = 1;
  void* p = alignment > alignof(std::max_align_t)
                ? std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment)
                : std::malloc(size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(std::size_t size) { return counted_allocate(size, 0); }
void* operator new[](std::size_t size) { return counted_allocate(size, 0); }
void* operator new(std::size_t size, std::align_val_t a) { return counted_allocate(size, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t size, std::align_val_t a) {
  return counted_allocate(size, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

using namespace ssmrl;
using W2 = test::W2;

TEST_CASE("the W2 forward and backward loop allocates nothing after its first iteration") {
  const auto data = test::random_sequence_batch<float>(W2::obs, W2::actions, W2::batch, W2::steps, 1);
  const auto policy = test::make_w2_policy<float>(2);
  std::vector<ad::Matrix<float>> grads;
  grads.reserve(16);
  ad::Tape<float> tape;
  constexpr int iterations = 5;
  std::array<long, iterations> allocations{};
  std::array<float, iterations> losses{};
  for (int it = 0; it < iterations; ++it) {
    const long before = allocation_count.load();
    losses[it] = test::reinforce_step(tape, policy, data, grads);
    allocations[it] = allocation_count.load() - before;
  }
  INFO("allocations per iteration: " << allocations[0] << " " << allocations[1] << " " << allocations[2] << " "
                                     << allocations[3] << " " << allocations[4]);
  CHECK(allocations[0] > 0);  // the counter sees the first iteration's arena and node list
  for (int it = 1; it < iterations; ++it) {
    CHECK(allocations[it] == 0);
    CHECK(losses[it] == losses[0]);
  }
  REQUIRE(grads.size() == 7);
  CHECK(grads[0].cwiseAbs().maxCoeff() > 0);
}

TEST_CASE("acting allocates nothing after the first step") {
  auto policy = test::make_w2_policy<float>(3);
  policy.set_num_envs(4);
  const auto data = test::random_sequence_batch<float>(W2::obs, W2::actions, 4, 10, 4);
  std::mt19937_64 rng(5);
  (void)policy.act(data.obs.leftCols(4), policy::ActMode::sample, rng);
  const long before = allocation_count.load();
  float total = 0;
  for (ad::Index t = 1; t < 10; ++t) {
    const auto step = policy.act(data.obs.middleCols(t * 4, 4), policy::ActMode::sample, rng);
    total += step.log_prob.sum();
    policy.reset(t % 4);
  }
  const long allocations = allocation_count.load() - before;
  CHECK(allocations == 0);
  CHECK(std::isfinite(total));
}

TEST_CASE("the MC policy's two-pass step allocates nothing after the first step") {
  using Base = policy::RecurrentPolicy<nn::GruCell<double>, policy::CategoricalHead<double>, nn::NoNorm<double>,
                                       policy::ValueHead<double>>;
  using Focus = mc::ObservationFocus<double>;
  using Registry = mc::McRegistry<mc::RecurrentStateActions<double>, Focus>;
  mc::McPolicy<Base, mc::RecurrentStateActions<double>, Focus> agent(
      Base(nn::GruCell<double>({.input = 9, .hidden = 8}), policy::CategoricalHead<double>(8, 2), nn::NoNorm<double>(),
           policy::ValueHead<double>(8), 3),
      Registry(mc::RecurrentStateActions<double>(), Focus({.tokens = 4, .token_size = 2, .short_keep = 1, .long_keep = 2})),
      3);
  auto params = agent.params();
  params.mc_head.b.setConstant(1.0);  // every action likely: clear, both noises and both focuses run
  agent.set_params(params);
  agent.set_num_envs(4);
  const ad::Matrix<double> obs = ad::Matrix<double>::Random(8, 4);
  std::mt19937_64 rng(5);
  (void)agent.act(obs, policy::ActMode::sample, rng);
  const long before = allocation_count.load();
  double total = 0;
  double edited = 0;
  for (int t = 1; t < 30; ++t) {
    const auto step = agent.act(obs, policy::ActMode::sample, rng);
    total += step.log_prob.sum() + step.mc_log_prob.sum();
    edited += step.mc_effects.state_edited().sum() + step.mc_effects.tokens().sum();
    agent.reset(t % 4);
  }
  const long allocations = allocation_count.load() - before;
  CHECK(allocations == 0);
  CHECK(edited > 0);
  CHECK(std::isfinite(total));
}
