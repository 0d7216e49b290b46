// The optimisers and ReduceLROnPlateau against PyTorch's traces (every case of
// ../shared/golden/torch_optim.jsonl, or of the file SSMRL_TORCH_OPTIM_TRACES names), and their
// groups, state and refusals; the plateau meta-optimizers, each rule with a sequence that triggers
// it and one that does not, and the wrapper that applies their changes within bounds; the RL
// meta-optimizer: learning from rewards alone (and not without its gradient), credit to the decision
// that earned it, bounds, features that do not saturate, and save/load.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/optim/adam.hpp>
#include <ssmrl/optim/any_optimizer.hpp>
#include <ssmrl/metaopt/plateau.hpp>
#include <ssmrl/metaopt/rl.hpp>
#include <ssmrl/optim/plateau.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/errors.hpp"

using namespace ssmrl;
using Matrix = ad::Matrix<double>;

namespace {

std::string traces_path() {
  if (const char* env = std::getenv("SSMRL_TORCH_OPTIM_TRACES"); env != nullptr && *env != '\0') return env;
  return SSMRL_TORCH_OPTIM_TRACES_DEFAULT;
}

std::vector<nlohmann::json> read_cases() {
  std::ifstream in(traces_path());
  REQUIRE_MESSAGE(in.good(), "cannot read " << traces_path());
  std::vector<nlohmann::json> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) cases.push_back(nlohmann::json::parse(line));
  }
  return cases;
}

double largest_error = 0;  // of the optimiser cases, |x - y| / max(1, |y|)

bool close(double x, double y) {
  const double e = std::abs(x - y) / std::max(1.0, std::abs(y));
  largest_error = std::max(largest_error, e);
  return e <= 1e-12;
}

Matrix column(const nlohmann::json& j) {
  const auto v = j.get<std::vector<double>>();
  Matrix m(static_cast<ad::Index>(v.size()), 1);
  for (std::size_t i = 0; i < v.size(); ++i) m(static_cast<ad::Index>(i), 0) = v[i];
  return m;
}

// Runs one optimiser case; returns the number of parameter values compared.
template <class Optimizer>
long run_case(Optimizer& opt, const nlohmann::json& c, const std::string& name) {
  std::vector<Matrix> params{column(c["initial_params"])};
  const Matrix target = column(c["target"]);
  long compared = 0;
  for (std::size_t t = 0; t < c["steps"].size(); ++t) {
    const auto& s = c["steps"][t];
    opt.set_lr(s["lr"].get<double>());
    opt.set_weight_decay(s["weight_decay"].get<double>());
    const std::vector<Matrix> grads{2 * (params[0] - target) + column(s["noise"])};
    opt.step(std::span<Matrix>(params), std::span<const Matrix>(grads));
    const Matrix want = column(s["params_after"]);
    for (ad::Index i = 0; i < want.rows(); ++i, ++compared) {
      if (!close(params[0](i, 0), want(i, 0))) {
        FAIL_CHECK(name << " step " << t << " entry " << i << ": " << params[0](i, 0) << " != " << want(i, 0));
        return compared;
      }
    }
  }
  return compared;
}

}  // namespace

TEST_CASE("every optimiser and ReduceLROnPlateau case of PyTorch's traces") {
  const auto cases = read_cases();
  std::map<std::string, int> checked;
  long values = 0;
  for (const auto& c : cases) {
    const auto kind = c.at("kind").get<std::string>();
    const auto id = std::to_string(c.at("case").get<int>());
    if (kind == "optimizer") {
      const auto name = c.at("optimizer").get<std::string>();
      const auto& o = c.at("options");
      const auto label = name + " case " + id;
      if (name == "sgd" || name == "sgd_momentum" || name == "sgd_nesterov") {
        optim::Sgd<double> opt({.lr = 0.1,
                                .momentum = o.value("momentum", 0.0),
                                .dampening = o.value("dampening", 0.0),
                                .nesterov = o.value("nesterov", false)});
        values += run_case(opt, c, label);
      } else if (name == "adam" || name == "adamw") {
        const auto betas = o.value("betas", std::vector<double>{0.9, 0.999});
        const optim::AdamOptions ao{.lr = 0.1, .beta1 = betas.at(0), .beta2 = betas.at(1), .eps = o.value("eps", 1e-8)};
        if (name == "adam") {
          optim::Adam<double> opt(ao);
          values += run_case(opt, c, label);
        } else {
          optim::AdamW<double> opt(ao);
          values += run_case(opt, c, label);
        }
      } else {
        FAIL_CHECK("unknown optimizer '" << name << "'");
        continue;
      }
      ++checked[name];
    } else if (kind == "reduce_lr_on_plateau") {
      const auto& o = c.at("options");
      const auto mode = o.at("mode").get<std::string>();
      const auto threshold_mode = o.at("threshold_mode").get<std::string>();
      REQUIRE((mode == "min" || mode == "max"));
      REQUIRE((threshold_mode == "rel" || threshold_mode == "abs"));
      optim::ReduceLROnPlateau plateau({.mode = mode == "min" ? optim::PlateauMode::min : optim::PlateauMode::max,
                                        .factor = o.at("factor").get<double>(),
                                        .patience = o.at("patience").get<long>(),
                                        .threshold = o.at("threshold").get<double>(),
                                        .threshold_mode = threshold_mode == "rel" ? optim::ThresholdMode::rel
                                                                                  : optim::ThresholdMode::abs,
                                        .cooldown = o.at("cooldown").get<long>(),
                                        .min_lr = o.at("min_lr").get<std::vector<double>>(),
                                        .eps = o.at("eps").get<double>()});
      // Two groups of one parameter each, as in the recording.
      const auto initial = c.at("initial_lr").get<std::vector<double>>();
      optim::Sgd<double> opt({.lr = 0.1});
      opt.set_groups({{1, initial.at(0), 0.0}, {1, initial.at(1), 0.0}});
      const auto metrics = c.at("metrics").get<std::vector<double>>();
      const auto& after = c.at("lr_after_step");
      REQUIRE(after.size() == metrics.size());
      for (std::size_t t = 0; t < metrics.size(); ++t) {
        plateau.step(metrics[t], opt);
        const auto want = after[t].get<std::vector<double>>();
        for (std::size_t g = 0; g < 2; ++g, ++values) {
          // Exactly: the same products as PyTorch's, and a cut one step early or late differs by factor.
          if (opt.lr(g) != want[g]) {
            FAIL_CHECK("plateau case " << id << " step " << t << " group " << g << ": lr " << opt.lr(g)
                                       << " != " << want[g]);
            break;
          }
        }
      }
      ++checked[kind];
    } else {
      FAIL_CHECK("unknown kind '" << kind << "'");
    }
  }
  for (const auto& [name, count] : checked) MESSAGE(name << ": " << count << " cases");
  MESSAGE(values << " values compared; largest relative error of the parameters " << largest_error);
  CHECK(checked["reduce_lr_on_plateau"] > 0);
  for (const char* name : {"sgd", "sgd_momentum", "sgd_nesterov", "adam", "adamw"}) CHECK(checked[name] > 0);
}

TEST_CASE("parameter groups: each its own lr and weight decay, changed between steps") {
  std::vector<Matrix> params{Matrix::Constant(2, 1, 1.0), Matrix::Constant(3, 1, 1.0)};
  const std::vector<Matrix> grads{Matrix::Constant(2, 1, 0.5), Matrix::Constant(3, 1, 0.5)};
  optim::Sgd<double> sgd({.lr = 0.1});
  sgd.set_groups({{1, 0.1, 0.0}, {1, 0.2, 0.5}});
  sgd.step(std::span<Matrix>(params), std::span<const Matrix>(grads));
  CHECK(params[0](0, 0) == 1.0 - 0.1 * 0.5);
  CHECK(params[1](0, 0) == 1.0 - 0.2 * (0.5 + 0.5 * 1.0));
  sgd.set_lr(1, 0.0);
  const double before = params[1](2, 0);
  sgd.step(std::span<Matrix>(params), std::span<const Matrix>(grads));
  CHECK(params[1](2, 0) == before);
  // Groups that do not add up to the parameters, and bad values, are refused, changing nothing.
  const auto wrong = test::message_of<InvalidArgument>([&] {
    std::vector<Matrix> three{params[0], params[1], params[1]};
    std::vector<Matrix> g3{grads[0], grads[1], grads[1]};
    sgd.step(std::span<Matrix>(three), std::span<const Matrix>(g3));
  });
  CHECK(wrong.find("optim::Sgd::step: the groups hold 2 parameters, the step has 3") != std::string::npos);
  const auto negative = test::message_of<InvalidArgument>([&] { sgd.set_lr(0, -1.0); });
  CHECK(negative.find("optim::Sgd: set_lr: lr -1") != std::string::npos);
  CHECK(sgd.lr(0) == 0.1);
  CHECK_THROWS_AS(sgd.set_weight_decay(1, NAN), InvalidArgument);
  CHECK(sgd.weight_decay(1) == 0.5);
  CHECK_THROWS_AS(sgd.set_groups({{0, 0.1, 0.0}, {1, 0.1, 0.0}}), InvalidArgument);
  CHECK(sgd.group_count() == 2);
  CHECK_THROWS_AS(optim::Sgd<double>({.momentum = 0.0, .nesterov = true}), InvalidArgument);
}

TEST_CASE("Adam's and AdamW's decay differ, and a restored state continues exactly") {
  const std::vector<Matrix> grads{Matrix::Constant(2, 2, 0.3)};
  std::vector<Matrix> a{Matrix::Constant(2, 2, 2.0)};
  std::vector<Matrix> w = a;
  optim::Adam<double> adam({.lr = 0.1, .weight_decay = 0.1});
  optim::AdamW<double> adamw({.lr = 0.1, .weight_decay = 0.1});
  adam.step(std::span<Matrix>(a), std::span<const Matrix>(grads));
  adamw.step(std::span<Matrix>(w), std::span<const Matrix>(grads));
  // Adam's first step moves by lr whatever the gradient's size; AdamW shrinks theta first.
  CHECK(a[0](0, 0) == doctest::Approx(2.0 - 0.1));
  CHECK(w[0](0, 0) == doctest::Approx(2.0 * (1 - 0.01) - 0.1));
  optim::AdamW<double> resumed({.lr = 0.1, .weight_decay = 0.1});
  resumed.set_state(adamw.state(), adamw.steps());
  std::vector<Matrix> w2 = w;
  for (int i = 0; i < 3; ++i) {
    adamw.step(std::span<Matrix>(w), std::span<const Matrix>(grads));
    resumed.step(std::span<Matrix>(w2), std::span<const Matrix>(grads));
  }
  CHECK(w[0] == w2[0]);
  auto bad = adamw.state();
  bad.second_moment[0](0, 0) = -1;
  const auto m = test::message_of<InvalidArgument>([&] { resumed.set_state(bad, 4); });
  CHECK(m.find("optim::AdamW::set_state: second moment 0 has negative entries") != std::string::npos);
  CHECK_THROWS_AS(resumed.set_state({}, 3), InvalidArgument);
  CHECK(resumed.steps() == 4);
}

TEST_CASE("the optimiser chosen at run time: each kind as itself, its buffers restored exactly, bad ones refused") {
  const std::vector<Matrix> grads{Matrix::Constant(2, 2, 0.3), Matrix::Constant(3, 1, -0.2)};
  const std::vector<Matrix> start{Matrix::Constant(2, 2, 2.0), Matrix::Constant(3, 1, 1.0)};
  auto run = [&](auto& o, std::vector<Matrix>& p, int steps) {
    for (int i = 0; i < steps; ++i) o.step(std::span<Matrix>(p), std::span<const Matrix>(grads));
  };
  for (const auto kind : {optim::OptimizerKind::sgd, optim::OptimizerKind::adam, optim::OptimizerKind::adamw}) {
    const std::string name = optim::optimizer_name(kind);
    CAPTURE(name);
    CHECK(optim::parse_optimizer_kind(optim::optimizer_name(kind), "test") == kind);
    const optim::OptimizerChoice choice{.kind = kind, .lr = 0.05, .weight_decay = 0.1, .momentum = 0.8};
    optim::AnyOptimizer<double> any(choice);
    CHECK(any.kind() == kind);
    // The same steps as the optimiser itself.
    auto a = start, b = start;
    run(any, a, 3);
    if (kind == optim::OptimizerKind::sgd) {
      optim::Sgd<double> o({.lr = 0.05, .momentum = 0.8, .weight_decay = 0.1});
      run(o, b, 3);
    } else if (kind == optim::OptimizerKind::adam) {
      optim::Adam<double> o({.lr = 0.05, .weight_decay = 0.1});
      run(o, b, 3);
    } else {
      optim::AdamW<double> o({.lr = 0.05, .weight_decay = 0.1});
      run(o, b, 3);
    }
    CHECK(a == b);
    CHECK(any.buffers().size() == (kind == optim::OptimizerKind::sgd ? 2u : 4u));
    // Restored from its buffers, it continues exactly; a fresh one would not.
    optim::AnyOptimizer<double> restored(choice), fresh(choice);
    restored.set_buffers(any.buffers(), any.steps());
    CHECK(restored.steps() == 3);
    auto c = a, d = a;
    run(any, a, 2);
    run(restored, c, 2);
    run(fresh, d, 2);
    CHECK(a == c);
    CHECK(a != d);
    // Bad buffers change nothing.
    const auto before = restored.buffers();
    auto odd = before;
    odd.pop_back();
    CHECK_THROWS_AS(restored.set_buffers(odd, 5, std::span<const Matrix>(start)), InvalidArgument);
    auto wrong_shape = before;
    wrong_shape[0] = Matrix::Zero(5, 5);
    const auto refused = test::message_of<InvalidArgument>(
        [&] { restored.set_buffers(wrong_shape, 5, std::span<const Matrix>(start)); });
    CHECK(refused.find("buffer 0 is 5x5, its parameter 0 is 2x2") != std::string::npos);
    CHECK_THROWS_AS(restored.set_buffers(before, 5, std::span<const Matrix>(start).first(1)), InvalidArgument);
    CHECK(restored.buffers() == before);
    CHECK(restored.steps() == 5);
  }
  const auto m =
      test::message_of<InvalidArgument>([] { optim::parse_optimizer_kind("rmsprop", "ssmrl train --optimizer"); });
  CHECK(m == "ssmrl train --optimizer: optimizer 'rmsprop' is not one of sgd, adam, adamw");
}

TEST_CASE("ReduceLROnPlateau: the relative threshold's trap with negative metrics, and the absolute mode") {
  // Mode max, best -100, threshold 0.01: relative, -100.5 counts as better (-100.5 > -101);
  // absolute, it does not.
  optim::ReduceLROnPlateau rel({.mode = optim::PlateauMode::max, .threshold = 0.01});
  optim::ReduceLROnPlateau abs({.mode = optim::PlateauMode::max, .threshold = 0.01,
                                .threshold_mode = optim::ThresholdMode::abs});
  CHECK(rel.is_better(-100.5, -100));
  CHECK_FALSE(abs.is_better(-100.5, -100));
  // A slowly worsening return never looks like a plateau to the relative mode.
  std::vector<double> lr_rel{1.0};
  std::vector<double> lr_abs{1.0};
  for (int t = 0; t < 30; ++t) {
    rel.step(-100.0 - 0.1 * t, lr_rel);
    abs.step(-100.0 - 0.1 * t, lr_abs);
  }
  CHECK(lr_rel[0] == 1.0);
  CHECK(lr_abs[0] < 1.0);
  CHECK_THROWS_AS(optim::ReduceLROnPlateau({.factor = 1.0}), InvalidArgument);
  std::vector<double> two{1.0, 1.0};
  optim::ReduceLROnPlateau three_floors({.min_lr = {0.0, 0.0, 0.0}});
  CHECK_THROWS_AS(three_floors.step(1.0, two), InvalidArgument);
}

namespace {
control::Telemetry metrics(double loss, double lr, double weight_decay, double grad_norm = NAN,
                           double weight_norm = NAN) {
  control::Telemetry t;
  t.add("loss", loss);
  t.add("lr", lr);
  t.add("weight_decay", weight_decay);
  if (!std::isnan(grad_norm)) t.add("grad_norm", grad_norm);
  if (!std::isnan(weight_norm)) t.add("weight_norm", weight_norm);
  return t;
}

// The update (counted from 1) at which the meta-optimizer first changes lr, or 0.
template <class Meta, class Loss>
int first_lr_change(Meta meta, Loss loss, int updates, long step0 = 1000) {
  for (int u = 1; u <= updates; ++u) {
    if (meta.update(metrics(loss(u), 0.1, 0.0), step0 + u).lr) return u;
  }
  return 0;
}
}  // namespace

TEST_CASE("plateau meta-optimizer: each rule on a sequence that triggers it and one that does not") {
  using metaopt::PlateauMetaOptimizer;
  // Flat loss: best at update 1, 11 bad updates, the cut at update 12 (patience 10).
  CHECK(first_lr_change(PlateauMetaOptimizer(), [](int) { return 1.0; }, 50) == 12);
  CHECK(first_lr_change(PlateauMetaOptimizer(), [](int) { return -100.0; }, 50) == 12);
  // Improving by 1% a step, positive or negative: no cut.
  CHECK(first_lr_change(PlateauMetaOptimizer(), [](int u) { return std::pow(0.99, u); }, 50) == 0);
  CHECK(first_lr_change(PlateauMetaOptimizer(), [](int u) { return -100.0 * std::pow(1.01, u); }, 50) == 0);
  PlateauMetaOptimizer p;
  for (int u = 0; u < 11; ++u) p.update(metrics(1.0, 0.1, 0.0), u);
  CHECK(*p.update(metrics(1.0, 0.1, 0.0), 11).lr == 0.05);
  PlateauMetaOptimizer floor({.patience = 0, .min_lr = 0.04});
  floor.update(metrics(1.0, 0.1, 0.0), 0);
  CHECK(*floor.update(metrics(1.0, 0.05, 0.0), 1).lr == 0.04);
  // Weight decay from zero when the gradient norm is large; not when small or absent.
  PlateauMetaOptimizer wd;
  CHECK(*wd.update(metrics(1.0, 0.1, 0.0, 20.0), 0).weight_decay == 1e-5);
  CHECK(*wd.update(metrics(0.9, 0.1, 1e-5, 20.0), 1).weight_decay == 2e-5);
  CHECK_FALSE(wd.update(metrics(0.8, 0.1, 2e-5, 5.0), 2).weight_decay);
  CHECK_FALSE(wd.update(metrics(0.7, 0.1, 2e-5), 3).weight_decay);
  // State round trip: the same decisions after.
  PlateauMetaOptimizer a;
  for (int u = 0; u < 7; ++u) a.update(metrics(1.0, 0.1, 0.0), u);
  PlateauMetaOptimizer b;
  b.set_state(a.state());
  for (int u = 7; u < 20; ++u) CHECK(a.update(metrics(1.0, 0.1, 0.0), u) == b.update(metrics(1.0, 0.1, 0.0), u));
  CHECK_THROWS_AS(b.set_state({1.0}), InvalidArgument);
  CHECK_THROWS_AS(PlateauMetaOptimizer({.factor = 1.0}), InvalidArgument);
}

TEST_CASE("advanced plateau meta-optimizer: warm-up, trend plateau, rising loss, large gradients and weights") {
  using metaopt::AdvancedPlateauMetaOptimizer;
  AdvancedPlateauMetaOptimizer warm;
  CHECK(*warm.update(metrics(1.0, 0.1, 0.0), 0).lr == doctest::Approx(0.01));
  CHECK(*warm.update(metrics(1.0, 0.01, 0.0), 50).lr == doctest::Approx(0.1 * (0.1 + 0.9 * 0.5)));
  CHECK(*warm.update(metrics(1.0, 0.055, 0.0), 100).lr == 0.1);  // the end of warm-up: the base rate
  // Flat after warm-up: the window fills at update 20, three flat windows cut at update 22.
  CHECK(first_lr_change(AdvancedPlateauMetaOptimizer({.warmup_steps = 0}), [](int) { return 2.0; }, 60) == 1);
  AdvancedPlateauMetaOptimizer flat({.warmup_steps = 0});
  int cut = 0;
  for (int u = 1; u <= 60 && cut == 0; ++u) {
    const auto c = flat.update(metrics(2.0, 0.1, 0.0), u);
    if (u > 1 && c.lr) cut = u;
  }
  CHECK(cut == 22);
  // Falling by 1% an update (slope -1% of the mean, below -0.1%): never a plateau.
  AdvancedPlateauMetaOptimizer falling({.warmup_steps = 0});
  int cuts = 0;
  for (int u = 1; u <= 80; ++u) {
    const bool changed = falling.update(metrics(std::pow(0.99, u), 0.1, 0.0), u).lr.has_value();
    if (u > 1 && changed) ++cuts;  // update 1 ends the (empty) warm-up
  }
  CHECK(cuts == 0);
  // Rising by 5% an update halves the weight decay once the window is full; flat leaves it.
  AdvancedPlateauMetaOptimizer rising({.warmup_steps = 0});
  std::optional<double> wd;
  for (int u = 1; u <= 20; ++u) wd = rising.update(metrics(std::pow(1.05, u), 0.1, 1e-3), u).weight_decay;
  REQUIRE(wd);
  CHECK(*wd == 5e-4);
  CHECK(*rising.update(metrics(std::pow(1.05, 21), 0.1, 1.5e-5), 21).weight_decay == 0.0);
  AdvancedPlateauMetaOptimizer steady({.warmup_steps = 0});
  for (int u = 1; u <= 30; ++u) CHECK_FALSE(steady.update(metrics(1.0, 0.1, 1e-3), u).weight_decay);
  // Large gradients or weights raise it (from zero); small ones do not.
  AdvancedPlateauMetaOptimizer large;
  CHECK(*large.update(metrics(1.0, 0.1, 0.0, 20.0), 0).weight_decay == 1e-5);
  CHECK(*large.update(metrics(1.0, 0.1, 1e-5, NAN, 200.0), 1).weight_decay == 2e-5);
  CHECK_FALSE(large.update(metrics(1.0, 0.1, 2e-5, 5.0, 50.0), 2).weight_decay);
  // State round trip mid-window.
  AdvancedPlateauMetaOptimizer a({.warmup_steps = 0});
  for (int u = 1; u <= 15; ++u) a.update(metrics(2.0, 0.1, 0.0), u);
  AdvancedPlateauMetaOptimizer b({.warmup_steps = 0});
  b.set_state(a.state());
  for (int u = 16; u <= 40; ++u) CHECK(a.update(metrics(2.0, 0.1, 0.0), u) == b.update(metrics(2.0, 0.1, 0.0), u));
  CHECK_THROWS_AS(b.set_state({0.1, 2.0, 0.0}), InvalidArgument);
}

namespace {
// A meta-optimizer that asks for whatever it is told, to test the wrapper's bounds.
struct Wild {
  metaopt::Changes next;
  long calls = 0;
  metaopt::Changes update(const control::Telemetry&, long) {
    ++calls;
    return next;
  }
  [[nodiscard]] long every() const { return 3; }
  void reset() {}
  [[nodiscard]] std::vector<double> state() const { return {}; }
  void set_state(const std::vector<double>&) {}
};
static_assert(metaopt::MetaOptimizer<Wild>);
static_assert(metaopt::MetaOptimizer<metaopt::PlateauMetaOptimizer>);
static_assert(metaopt::MetaOptimizer<metaopt::AdvancedPlateauMetaOptimizer>);
}  // namespace

TEST_CASE("the optimiser wrapper: asks every few steps, clamps to the bounds, lr and weight decay as knobs") {
  metaopt::OptimizerWrapper<optim::AdamW<double>, Wild> w(optim::AdamW<double>({.lr = 0.01}),
                                                          Wild{{.lr = 10.0, .weight_decay = 1.0}});
  std::vector<Matrix> params{Matrix::Ones(2, 1)};
  const std::vector<Matrix> grads{Matrix::Ones(2, 1)};
  control::Telemetry loss;
  loss.add("loss", 1.0);
  for (int s = 1; s <= 6; ++s) {
    w.step(std::span<Matrix>(params), std::span<const Matrix>(grads));
    const auto c = w.observe(loss);
    CHECK(c.lr.has_value() == (s % 3 == 0));
  }
  CHECK(w.meta().calls == 2);
  CHECK(w.optimizer().lr() == 1.0);
  CHECK(w.optimizer().weight_decay() == 1e-2);
  w.meta().next = {.lr = 0.0, .weight_decay = -5.0};
  for (int s = 0; s < 3; ++s) {
    w.step(std::span<Matrix>(params), std::span<const Matrix>(grads));
    w.observe(loss);
  }
  CHECK(w.optimizer().lr() == 1e-7);
  CHECK(w.optimizer().weight_decay() == 0.0);
  const auto before = w.knob_values();
  CHECK_THROWS_AS(w.set_knob_values({0.5, 0.5}), InvalidArgument);
  CHECK(w.knob_values() == before);
  w.set_knob_values({0.5, 1e-3});
  CHECK(w.optimizer().lr() == 0.5);
  CHECK(w.knob_schema().find("weight_decay").has_value());
}

namespace {

control::Telemetry rl_metrics(double loss, double lr, double w) {
  control::Telemetry m;
  m.add("loss", loss);
  m.add("lr", lr);
  m.add("weight_decay", w);
  return m;
}

// A bandit seen through losses: the loss falls by 1 + noise after the best action, by noise after
// any other (reward(t) = loss(t) - loss(t + 1)); with `delay` the reward after decision t depends on
// decision t - 1's action instead. Returns how often the best action was taken in the last quarter.
double bandit(metaopt::RLMetaOptimizer& m, int decisions, int best, bool delay) {
  std::mt19937_64 rng(5);
  std::normal_distribution<double> noise(0.0, 0.3);
  double loss = 0;
  int previous = -1;
  int hits = 0;
  for (int t = 0; t < decisions; ++t) {
    m.update(rl_metrics(loss, 1e-3, 1e-4), t);
    const int a = m.last_action();
    const int credited = delay ? previous : a;
    loss -= (credited == best ? 1.0 : 0.0) + noise(rng);
    previous = a;
    if (t >= decisions * 3 / 4) hits += a == best ? 1 : 0;
  }
  return hits / (decisions / 4.0);
}

}  // namespace

TEST_CASE("RL meta-optimizer: a bandit's best action is learnt from rewards alone, and not without the gradient") {
  const metaopt::RLMetaOptions o{.learning_rate = 1e-2, .seed = 3};
  metaopt::RLMetaOptimizer learner(o);
  CHECK(learner.action_count() == 9);
  const double learnt = bandit(learner, 4000, 7, false);
  CHECK(learner.reinforce_steps() == 3999 / 16);  // 3999 rewarded decisions, 16 per step
  const auto p = learner.probabilities(learner.features(1e-3, 1e-4, 4000));
  MESSAGE("best action taken in the last quarter: " << learnt << ", its probability " << p[7]);
  CHECK(learnt > 0.6);
  CHECK(p[7] > 0.6);

  auto without = o;
  without.policy_gradient = false;  // only the entropy term trains, as in the prototype
  metaopt::RLMetaOptimizer blind(without);
  const double chance = bandit(blind, 4000, 7, false);
  const auto q = blind.probabilities(blind.features(1e-3, 1e-4, 4000));
  MESSAGE("without the gradient: " << chance << ", probability " << q[7]);
  CHECK(chance < 0.2);
  CHECK(q[7] < 0.2);
}

TEST_CASE("RL meta-optimizer: the reward after decision t is credited to decision t and no other") {
  // Rewards paired with what the decisions were, one by one (no REINFORCE step yet).
  metaopt::RLMetaOptimizer m({.batch = 1000, .seed = 1});
  std::vector<int> actions;
  std::vector<double> losses{5.0, 4.0, 4.5, 1.0, 0.25, 3.0};
  for (std::size_t t = 0; t < losses.size(); ++t) {
    m.update(rl_metrics(losses[t], 1e-3, 0.0), static_cast<long>(t));
    actions.push_back(m.last_action());
  }
  REQUIRE(m.unlearnt().size() == losses.size() - 1);
  for (std::size_t t = 0; t + 1 < losses.size(); ++t) {
    CHECK(m.unlearnt()[t].action == actions[t]);
    CHECK(m.unlearnt()[t].reward == losses[t] - losses[t + 1]);
  }
  // Rewards that depend on the previous decision's action only teach nothing about the current one.
  metaopt::RLMetaOptimizer delayed({.learning_rate = 1e-2, .seed = 3});
  const double rate = bandit(delayed, 4000, 7, true);
  MESSAGE("best action taken with delayed rewards: " << rate);
  CHECK(rate < 0.3);
}

TEST_CASE("RL meta-optimizer: the bounds hold for any sequence of actions, with both weight-decay moves") {
  for (const auto move : {metaopt::WeightDecayMove::additive, metaopt::WeightDecayMove::multiplicative}) {
    metaopt::RLMetaOptions o{.lr_factors = {1e-3, 0.5, 1e3},
                             .weight_decay_move = move,
                             .weight_decay_deltas = {-3e-3, 0.0, 4e-3},
                             .weight_decay_factors = {0.0, 0.5, 10.0},
                             .learning = false,
                             .seed = 11};
    metaopt::RLMetaOptimizer m(o);
    double lr = 1.0;
    double w = 0.0;
    bool zero = false;
    bool top = false;
    std::vector<int> seen(9, 0);
    for (int t = 0; t < 3000; ++t) {
      const auto c = m.update(rl_metrics(1.0 / (1 + t), lr, w), t);
      REQUIRE((c.lr && c.weight_decay));
      lr = *c.lr;
      w = *c.weight_decay;
      ++seen[static_cast<std::size_t>(m.last_action())];
      REQUIRE(lr >= 1e-7);
      REQUIRE(lr <= 1.0);
      REQUIRE(w >= 0.0);
      REQUIRE(w <= 1e-2);
      zero = zero || (w == 0 && t > 10);
      top = top || w == 1e-2;
    }
    for (const int n : seen) CHECK(n > 0);
    CHECK(zero);
    CHECK(top);
  }
  // Multiplicative moves start from zero at the floor and fall back to zero below it.
  metaopt::RLMetaOptimizer up({.lr_factors = {1.0},
                               .weight_decay_move = metaopt::WeightDecayMove::multiplicative,
                               .weight_decay_factors = {2.0}});
  CHECK(up.update(rl_metrics(1.0, 1e-3, 0.0), 0).weight_decay == 1e-6);
  CHECK(up.update(rl_metrics(1.0, 1e-3, 3e-6), 1).weight_decay == 6e-6);
  metaopt::RLMetaOptimizer down({.lr_factors = {1.0},
                                 .weight_decay_move = metaopt::WeightDecayMove::multiplicative,
                                 .weight_decay_factors = {0.5}});
  CHECK(down.update(rl_metrics(1.0, 1e-3, 1.5e-6), 0).weight_decay == 0.0);
  CHECK(down.update(rl_metrics(1.0, 1e-3, 4e-6), 1).weight_decay == 2e-6);
}

TEST_CASE("RL meta-optimizer: features vary across learning rates 1e-6 to 1 and losses 1e-4 to 1e3; absent ones") {
  metaopt::RLMetaOptimizer m({.total_steps = 100});
  m.update(rl_metrics(1.0, 1e-3, 0.0), 0);
  REQUIRE(m.input_size() == 6);  // lr, weight decay, loss level and trend, lr trend, progress
  double previous = -2;
  for (int e = -6; e <= 0; ++e) {
    const double f = m.features(std::pow(10.0, e), 0.0, 0)[0];
    CHECK(f > previous + 0.2);
    CHECK(f > -1.0);
    CHECK(f <= 1.0);
    previous = f;
  }
  double level = -2;
  for (int e = -4; e <= 3; ++e) {
    const double f = metaopt::RLMetaOptimizer::symlog(std::pow(10.0, e));
    CHECK(f > level + 0.05);
    level = f;
  }
  CHECK(metaopt::RLMetaOptimizer::symlog(-200) == -metaopt::RLMetaOptimizer::symlog(200));
  // A task with gradient norms and costs gets their features; one that had them must keep them.
  metaopt::RLMetaOptimizer g;
  auto metrics = rl_metrics(1.0, 1e-3, 0.0);
  metrics.add("grad_norm", 3.0);
  metrics.add("cost", 0.5);
  g.update(metrics, 0);
  CHECK(g.input_size() == 1 + 1 + 2 * 4 - 1);
  const auto before = g.state();
  const auto text = test::message_of<InvalidArgument>([&] { g.update(rl_metrics(1.0, 1e-3, 0.0), 1); });
  CHECK(text.find("grad_norm") != std::string::npos);
  CHECK(g.state() == before);
}

TEST_CASE("RL meta-optimizer: a restored state makes the same decisions and learns the same") {
  const metaopt::RLMetaOptions o{.batch = 8, .seed = 9};
  metaopt::RLMetaOptimizer a(o);
  auto loss_at = [](int t) { return std::cos(0.3 * t) + 2.0 / (1 + t); };
  for (int t = 0; t < 43; ++t) a.update(rl_metrics(loss_at(t), 1e-3, 1e-4), t);
  const auto saved = a.state();
  metaopt::RLMetaOptimizer b(o);
  b.set_state(saved);
  CHECK(b.state() == saved);
  for (int t = 43; t < 120; ++t) {
    const auto ca = a.update(rl_metrics(loss_at(t), 1e-3, 1e-4), t);
    const auto cb = b.update(rl_metrics(loss_at(t), 1e-3, 1e-4), t);
    REQUIRE(ca == cb);
  }
  CHECK(a.reinforce_steps() > 10);
  CHECK(a.state() == b.state());
  // Damaged states are refused whole.
  metaopt::RLMetaOptimizer c(o);
  c.update(rl_metrics(1.0, 1e-3, 0.0), 0);
  const auto kept = c.state();
  auto cut = saved;
  cut.pop_back();
  CHECK_THROWS_AS(c.set_state(cut), InvalidArgument);
  auto nan = saved;
  nan[10] = NAN;
  CHECK_THROWS_AS(c.set_state(nan), InvalidArgument);
  auto longer = saved;
  longer.push_back(0.0);
  CHECK_THROWS_AS(c.set_state(longer), InvalidArgument);
  metaopt::RLMetaOptimizer other({.lr_factors = {0.5, 2.0}});
  CHECK_THROWS_AS(other.set_state(saved), InvalidArgument);
  CHECK(c.state() == kept);
}
