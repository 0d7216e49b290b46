// The dense SSM categorical policy, built from tape operations, against PyTorch autograd (float64):
// loss, gradients, MAML adapted parameters, meta-loss, and first- and second-order meta-gradients.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/ssmrl.hpp>

#include <array>
#include <set>
#include <string>

#include "support/reference_cases.hpp"

using namespace ssmrl;
using ad::Matrix;
using ad::Tape;
using ad::Var;
using Params = nn::DenseSsmParams<Var<double>>;
using ParamValues = nn::DenseSsmParams<Matrix<double>>;

namespace {

constexpr double tolerance = 1e-9;
const std::set<std::string> known_models{"dense_ssm_categorical", "diag_ssm_gaussian", "gru_categorical",
                                         "lstm_categorical"};

Var<double> loss_of(Tape<double>& tape, const Params& p, const test::Batch& b) {
  const auto logits = nn::dense_ssm_forward(p, tape.constant(b.obs), b.batch);
  return rl::reinforce_loss_categorical(logits, b.discrete_actions, tape.constant(b.advantages));
}

ParamValues params_from(const nlohmann::json& j) {
  std::array<Matrix<double>, ParamValues::count> values;
  for (std::size_t i = 0; i < ParamValues::count; ++i) values[i] = test::tensor(j.at(std::string(ParamValues::names[i])));
  return ParamValues::from_array(values);
}

void check_tensors(const char* what, const std::array<Matrix<double>, Params::count>& got, const nlohmann::json& expected) {
  for (std::size_t i = 0; i < Params::count; ++i) {
    const std::string name(Params::names[i]);
    INFO(what << " of " << name);
    CHECK(test::tensor_error(got[i], test::tensor(expected.at(name))) <= tolerance);
  }
}

std::array<Matrix<double>, Params::count> gradients(const Params& p) {
  std::array<Matrix<double>, Params::count> out;
  const auto vars = p.to_array();
  for (std::size_t i = 0; i < Params::count; ++i) out[i] = vars[i].grad();
  return out;
}

void check_case(const nlohmann::json& c) {
  const auto theta = params_from(c["params"]);
  {
    Tape<double> tape;
    const auto p = nn::on_tape(tape, theta);
    const auto loss = loss_of(tape, p, test::batch(c["batch"]));
    CHECK(test::scalar_error(loss.item(), c["loss"].get<double>()) <= tolerance);
    tape.backward(loss);
    check_tensors("gradient", gradients(p), c["grads"]);
  }

  const auto& maml = c["maml"];
  const double inner_lr = maml["inner_lr"].get<double>();
  const int inner_steps = maml["inner_steps"].get<int>();
  const auto support = test::batch(maml["support"]);
  const auto query = test::batch(maml["query"]);

  // Exact MAML: every inner step stays on the tape, so the meta-gradient flows through it.
  Tape<double> tape;
  const auto theta0 = nn::on_tape(tape, theta);
  auto adapted = theta0.to_array();
  for (int k = 0; k < inner_steps; ++k) {
    const auto inner_loss = loss_of(tape, Params::from_array(adapted), support);
    const auto g = ad::grad(inner_loss, std::span<const Var<double>>(adapted), {.create_graph = true});
    for (std::size_t i = 0; i < Params::count; ++i) adapted[i] = adapted[i] - inner_lr * g[i];
  }
  std::array<Matrix<double>, Params::count> adapted_values;
  for (std::size_t i = 0; i < Params::count; ++i) adapted_values[i] = adapted[i].value();
  check_tensors("adapted parameter", adapted_values, maml["adapted_params"]);
  const auto meta_loss = loss_of(tape, Params::from_array(adapted), query);
  CHECK(test::scalar_error(meta_loss.item(), maml["meta_loss"].get<double>()) <= tolerance);
  tape.backward(meta_loss);
  check_tensors("second-order meta-gradient", gradients(theta0), maml["meta_grads_second_order"]);

  // First-order MAML: the query gradient at the adapted parameters.
  Tape<double> first_order;
  const auto at_adapted = nn::on_tape(first_order, ParamValues::from_array(adapted_values));
  first_order.backward(loss_of(first_order, at_adapted, query));
  check_tensors("first-order meta-gradient", gradients(at_adapted), maml["meta_grads_first_order"]);
}

}  // namespace

TEST_CASE("reference: dense SSM categorical against PyTorch autograd, first and second order") {
  const auto dir = test::reference_dir();
  INFO("reference folder: " << dir.string());
  int checked = 0;
  int skipped = 0;
  for (const auto& file : test::reference_files(dir)) {
    INFO("case: " << file.filename().string());
    const auto c = test::read_json(file);
    const auto model = c.at("model").get<std::string>();
    REQUIRE_MESSAGE(known_models.count(model) == 1, "unknown model '" << model << "'");
    if (model != "dense_ssm_categorical") {
      ++skipped;  // the other models come with the cells of the models issue
      continue;
    }
    check_case(c);
    ++checked;
  }
  MESSAGE("checked " << checked << " dense_ssm_categorical cases, skipped " << skipped << " of other models");
  CHECK(checked > 0);
}
