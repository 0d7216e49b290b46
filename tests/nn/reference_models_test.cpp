// The four reference models, built from the library's cells and heads, against PyTorch autograd
// (float64): loss, gradients, MAML adapted parameters, meta-loss, first- and second-order
// meta-gradients, for every case in the reference folder.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/ssmrl.hpp>

#include <map>
#include <set>
#include <string>

#include "support/reference_cases.hpp"

using namespace ssmrl;
using ad::Matrix;
using ad::Tape;
using ad::Var;

namespace {

constexpr double tolerance = 1e-9;

// The library names parameters by module ("cell.A", "head.mean.W"); the reference by their last part.
std::string reference_name(const std::string& name) { return name.substr(name.rfind('.') + 1); }

template <class PolicyT>
Var<double> loss_of(const PolicyT& policy, Tape<double>& tape, const typename PolicyT::VarParams& p,
                    const test::Batch& b) {
  const auto e = policy.evaluate(p, tape.constant(b.obs), b.batch, b.actions);
  return rl::policy_gradient_loss(e.log_prob, tape.constant(b.advantages));
}

template <class P>
void check_named(const char* what, const P& got, const nlohmann::json& expected) {
  nn::for_each_parameter(got, [&](std::string_view name, const Matrix<double>& m) {
    const auto key = reference_name(std::string(name));
    INFO(what << " of " << name);
    REQUIRE(expected.contains(key));
    CHECK(test::tensor_error(m, test::tensor(expected.at(key))) <= tolerance);
  });
}

template <class PolicyT>
void check_case(PolicyT& policy, const nlohmann::json& c) {
  auto params = policy.params();
  nn::for_each_parameter(params, [&](std::string_view name, Matrix<double>& m) {
    const auto key = reference_name(std::string(name));
    REQUIRE_MESSAGE(c["params"].contains(key), "no reference parameter " << key << " for " << name);
    m = test::tensor(c["params"][key]);
  });
  policy.set_params(params);
  {
    Tape<double> tape;
    const auto p = nn::on_tape(tape, policy.params());
    const auto loss = loss_of(policy, tape, p, test::batch(c["batch"]));
    CHECK(test::scalar_error(loss.item(), c["loss"].get<double>()) <= tolerance);
    tape.backward(loss);
    check_named("gradient", nn::gradients_of<double>(p), c["grads"]);
  }

  const auto& maml = c["maml"];
  const double inner_lr = maml["inner_lr"].get<double>();
  const int inner_steps = maml["inner_steps"].get<int>();
  const auto support = test::batch(maml["support"]);
  const auto query = test::batch(maml["query"]);

  Tape<double> tape;
  const auto theta0 = nn::on_tape(tape, policy.params());
  auto adapted = theta0;
  for (int k = 0; k < inner_steps; ++k) {
    const auto vars = nn::to_list<Var<double>>(adapted);
    const auto g = ad::grad(loss_of(policy, tape, adapted, support), std::span<const Var<double>>(vars),
                            {.create_graph = true});
    std::vector<Var<double>> next;
    for (std::size_t i = 0; i < vars.size(); ++i) next.push_back(vars[i] - inner_lr * g[i]);
    adapted = nn::from_list(adapted, next);
  }
  check_named("adapted parameter", nn::values_of<double>(adapted), maml["adapted_params"]);
  const auto meta_loss = loss_of(policy, tape, adapted, query);
  CHECK(test::scalar_error(meta_loss.item(), maml["meta_loss"].get<double>()) <= tolerance);
  tape.backward(meta_loss);
  check_named("second-order meta-gradient", nn::gradients_of<double>(theta0), maml["meta_grads_second_order"]);

  Tape<double> first_order;
  const auto at_adapted = nn::on_tape(first_order, nn::values_of<double>(adapted));
  first_order.backward(loss_of(policy, first_order, at_adapted, query));
  check_named("first-order meta-gradient", nn::gradients_of<double>(at_adapted), maml["meta_grads_first_order"]);

  // The same through MamlLearner, both orders.
  for (const bool fo : {false, true}) {
    INFO("MamlLearner, " << (fo ? "first" : "second") << " order");
    meta::MamlLearner<double, typename PolicyT::Params> learner(policy.params(),
                                                                 {.inner_lr = inner_lr, .first_order = fo});
    Tape<double> t;
    const auto meta_vars = learner.meta_variables(t);
    auto clone = learner.clone(meta_vars);
    for (int k = 0; k < inner_steps; ++k) clone.adapt(loss_of(policy, t, clone.params(), support));
    check_named("adapted parameter", nn::values_of<double>(clone.params()), maml["adapted_params"]);
    const auto query_loss = loss_of(policy, t, clone.params(), query);
    CHECK(test::scalar_error(query_loss.item(), maml["meta_loss"].get<double>()) <= tolerance);
    t.backward(query_loss);
    check_named(fo ? "first-order meta-gradient" : "second-order meta-gradient",
                learner.meta_gradient(meta_vars).params,
                fo ? maml["meta_grads_first_order"] : maml["meta_grads_second_order"]);
  }
}

struct Dims {
  ad::Index obs, state, hidden, actions;
};

void check_model(const std::string& model, const Dims& d, const nlohmann::json& c) {
  using namespace ssmrl::policy;
  if (model == "dense_ssm_categorical") {
    RecurrentPolicy<nn::DenseSsmCell<double>, CategoricalHead<double>> p(
        nn::DenseSsmCell<double>({.input = d.obs, .state = d.state, .output = d.hidden}),
        CategoricalHead<double>(d.hidden, d.actions), {}, {}, 1);
    check_case(p, c);
  } else if (model == "diag_ssm_gaussian") {
    for (const bool scan : {true, false}) {
      INFO("diagonal SSM trained with " << (scan ? "the fused scan" : "a node per step"));
      RecurrentPolicy<nn::DiagSsmCell<double>, GaussianHead<double>> p(
          nn::DiagSsmCell<double>({.input = d.obs, .state = d.state, .output = d.hidden, .scan = scan}),
          GaussianHead<double>({.input = d.hidden, .actions = d.actions}), {}, {}, 1);
      check_case(p, c);
    }
  } else if (model == "gru_categorical") {
    RecurrentPolicy<nn::GruCell<double>, CategoricalHead<double>> p(nn::GruCell<double>({.input = d.obs, .hidden = d.hidden}),
                                                                    CategoricalHead<double>(d.hidden, d.actions), {}, {}, 1);
    check_case(p, c);
  } else if (model == "lstm_categorical") {
    RecurrentPolicy<nn::LstmCell<double>, CategoricalHead<double>> p(
        nn::LstmCell<double>({.input = d.obs, .hidden = d.hidden}), CategoricalHead<double>(d.hidden, d.actions), {},
        {}, 1);
    check_case(p, c);
  } else {
    FAIL("unknown model '" << model << "'");
  }
}

}  // namespace

TEST_CASE("reference: the four models against PyTorch autograd, first and second order") {
  const auto dir = test::reference_dir();
  INFO("reference folder: " << dir.string());
  std::map<std::string, int> checked;
  int total = 0;
  for (const auto& file : test::reference_files(dir)) {
    INFO("case: " << file.filename().string());
    const auto c = test::read_json(file);
    const auto model = c.at("model").get<std::string>();
    const auto& dims = c.at("dims");
    check_model(model,
                {dims.at("obs").get<ad::Index>(), dims.at("state").get<ad::Index>(), dims.at("hidden").get<ad::Index>(),
                 dims.at("actions").get<ad::Index>()},
                c);
    ++checked[model];
    ++total;
  }
  for (const auto& [model, count] : checked) MESSAGE("checked " << count << " case(s) of " << model);
  CHECK(total > 0);
}
