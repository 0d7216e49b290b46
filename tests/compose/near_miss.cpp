// Each NEAR_MISS_* case removes one member from minimal.hpp's types and uses the type where the
// library needs that member: the compiler must refuse it, naming the concept (tests/CMakeLists.txt
// checks the first 20 lines of its output; no line here names one, since compilers quote the
// offending line). Without a case the file compiles.
#include "compose/minimal.hpp"

int main() {
  using namespace ssmrl;
  [[maybe_unused]] minimal::LinearGaussian pi;
#if defined(NEAR_MISS_STEP_WITHOUT_LOG_PROB)
  env::EnvBatch<minimal::Reach> batch(1, minimal::Reach{}, 1);
  std::mt19937_64 rng(1);
  (void)rl::collect(pi, batch, 1, policy::ActMode::sample, rng);
#elif defined(NEAR_MISS_POLICY_WITHOUT_EVALUATE)
  rl::Trainer<minimal::LinearGaussian, minimal::Reach> trainer(pi, {});
#elif defined(NEAR_MISS_POLICY_WITHOUT_DISTRIBUTION) || defined(NEAR_MISS_TASKS_WITHOUT_SAMPLE)
  meta::MetaTrainer<minimal::LinearGaussian, minimal::ReachTasks> trainer(pi, {}, {});
#elif defined(NEAR_MISS_STRATEGY_WITHOUT_LOSS)
  adapt::Adapter adapter(pi, minimal::QuietActions{});
#endif
  return 0;
}
