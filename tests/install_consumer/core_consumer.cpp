// Uses only ssmrl::core (Eigen, no nlohmann-json): a policy acts in an environment of the package.
#include <ssmrl/core.hpp>

#include <cstdio>
#include <random>

int main() {
  using namespace ssmrl;
  using Policy = policy::RecurrentPolicy<nn::GruCell<float>, policy::CategoricalHead<float>>;
  Policy pi(nn::GruCell<float>({.input = 4, .hidden = 8}), policy::CategoricalHead<float>(8, 2), {}, {}, 1);
  env::EnvBatch<env::CartPole> batch(2, env::CartPole{}, 1);
  std::mt19937_64 rng(1);
  const auto t = rl::collect(pi, batch, 10, policy::ActMode::sample, rng);
  std::printf("ssmrl::core: %ld columns collected\n", static_cast<long>(t.columns()));
  return t.columns() == 20 ? 0 : 1;
}
