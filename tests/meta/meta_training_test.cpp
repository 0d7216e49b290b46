// A short meta-training run on 2D navigation must raise the post-adaptation return by a margin that
// the same run without meta-updates does not reach.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/ssmrl.hpp>

#include <cstdio>

using namespace ssmrl;

namespace {

using Policy = policy::RecurrentPolicy<nn::MlpCell<float>, policy::GaussianHead<float>>;

std::pair<double, double> run(bool zero_meta_gradient, int iterations) {
  Policy pi(nn::MlpCell<float>({.input = 2, .hidden = {32, 32}}),
            policy::GaussianHead<float>({.input = 32, .actions = 2}), {}, {}, 7);
  meta::MetaTrainer trainer(std::move(pi), env::Navigation2DTasks(),
                            {.meta_batch = 10, .trajectories = 10, .horizon = 100, .inner_lr = 0.1,
                             .outer_lr = 1e-2, .zero_meta_gradient = zero_meta_gradient, .seed = 3});
  double first = 0;
  double last = 0;
  const int window = 5;
  for (int it = 0; it < iterations; ++it) {
    const auto s = trainer.iteration();
    if (it < window) first += s.post_adaptation_return / window;
    if (it >= iterations - window) last += s.post_adaptation_return / window;
    if (it % 10 == 9) std::printf("%s iteration %d: pre %.2f post %.2f\n", zero_meta_gradient ? "control" : "maml", it,
                s.pre_adaptation_return, s.post_adaptation_return);
  }
  return {first, last};
}

}  // namespace

TEST_CASE("meta-training improves the post-adaptation return; the run without meta-gradient does not") {
  const auto [maml_first, maml_last] = run(false, 40);
  const auto [control_first, control_last] = run(true, 40);
  MESSAGE("post-adaptation return, first and last 5 iterations: MAML " << maml_first << " -> " << maml_last
                                                                       << ", control " << control_first << " -> "
                                                                       << control_last);
  constexpr double margin = 5.0;
  CHECK(maml_last - maml_first > margin);
  CHECK(control_last - control_first < margin);
}

void check_trpo_training(meta::TrpoFisher fisher) {
  CAPTURE(static_cast<int>(fisher));
  Policy pi(nn::MlpCell<float>({.input = 2, .hidden = {16, 16}}),
            policy::GaussianHead<float>({.input = 16, .actions = 2}), {}, {}, 8);
  meta::MetaTrainer trainer(std::move(pi), env::Navigation2DTasks(),
                            {.meta_batch = 5, .trajectories = 10, .horizon = 100, .inner_lr = 0.1, .trpo = true,
                             .max_kl = 0.01, .fisher = fisher, .seed = 4});
  int accepted = 0;
  double first = 0;
  double last = 0;
  for (int it = 0; it < 20; ++it) {
    const auto s = trainer.iteration();
    if (s.trpo.accepted) {
      ++accepted;
      CHECK(s.trpo.kl <= 0.01);
      CHECK(s.trpo.loss_after < s.trpo.loss_before);
    }
    if (it < 5) first += s.post_adaptation_return / 5;
    if (it >= 15) last += s.post_adaptation_return / 5;
  }
  MESSAGE("TRPO: " << accepted << " of 20 steps accepted; post-adaptation return " << first << " -> " << last);
  CHECK(accepted >= 15);
  CHECK(last - first > 5.0);
}

TEST_CASE("meta-training with the TRPO outer step keeps the KL limit and improves") {
  SUBCASE("Fisher at the adapted parameters") { check_trpo_training(meta::TrpoFisher::at_adapted); }
  SUBCASE("Fisher through the adaptation") { check_trpo_training(meta::TrpoFisher::through_adaptation); }
}

TEST_CASE("the meta-trainer's knobs change the next iteration, and its telemetry reports them") {
  Policy pi(nn::MlpCell<float>({.input = 2, .hidden = {16}}), policy::GaussianHead<float>({.input = 16, .actions = 2}),
            {}, {}, 7);
  meta::MetaTrainer trainer(
      std::move(pi), env::Navigation2DTasks(),
      {.meta_batch = 2, .trajectories = 4, .horizon = 20, .inner_lr = 0.1, .trpo = true, .seed = 3});
  const auto schema = trainer.knob_schema();
  CHECK(schema.at("fisher", "test").type == control::KnobType::choice);
  CHECK(schema.at("inner_steps", "test").type == control::KnobType::integer);
  CHECK(schema.at("first_order", "test").type == control::KnobType::boolean);
  CHECK_FALSE(schema.find("outer_lr"));
  auto values = trainer.knob_values();
  values[*schema.find("inner_lr")] = 0.05;
  values[*schema.find("inner_steps")] = std::int64_t{2};
  values[*schema.find("fisher")] = std::string("through_adaptation");
  trainer.set_knob_values(values);
  CHECK(trainer.options().inner_steps == 2);
  CHECK(trainer.options().fisher == meta::TrpoFisher::through_adaptation);
  const auto t = trainer.iteration().telemetry();
  CHECK(t["inner_lr"] == 0.05);
  CHECK(t["entropy"] > 0);
  CHECK(t["grad_norm"] > 0);
  CHECK(t["return_std"] >= 0);
  CHECK(t["post_adaptation_return"] == t["return_mean"]);
  values[*schema.find("fisher")] = std::string("exact");
  CHECK_THROWS_AS(trainer.set_knob_values(values), InvalidArgument);
  CHECK(trainer.options().fisher == meta::TrpoFisher::through_adaptation);
}
