// Every operation against central differences, first and second order (gradcheck), including
// broadcasting and transposed variants.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/autodiff.hpp>

#include <functional>
#include <string>
#include <vector>

#include "support/random.hpp"

using namespace ssmrl;
using ad::Matrix;
using ad::Tape;
using ad::Var;
using Inputs = std::span<const Var<double>>;
using test::random_matrix;

namespace {

void expect_gradients(const std::string& what, const std::function<Var<double>(Tape<double>&, Inputs)>& fn,
                      const std::vector<Matrix<double>>& inputs) {
  INFO(what);
  const auto result = ad::gradcheck(fn, inputs);
  INFO(result.report);
  CHECK(result.passed);
}

Matrix<double> positive(ad::Index rows, ad::Index cols, std::uint64_t seed) {
  return random_matrix(rows, cols, seed, 0.5, 2.0);
}

}  // namespace

TEST_CASE("elementwise arithmetic with broadcasting") {
  const auto a = random_matrix(3, 4, 1);
  const auto col = random_matrix(3, 1, 2);
  const auto row = random_matrix(1, 4, 3);
  const auto one = random_matrix(1, 1, 4);
  const auto den = positive(3, 4, 5);
  const std::vector<std::pair<std::string, Matrix<double>>> second{
      {"same shape", random_matrix(3, 4, 6)}, {"column vector", col}, {"row vector", row}, {"1x1", one}};
  for (const auto& [shape, b] : second) {
    expect_gradients("add, " + shape, [](Tape<double>&, Inputs x) { return ad::add(x[0], x[1]); }, {a, b});
    expect_gradients("add, operand swapped, " + shape, [](Tape<double>&, Inputs x) { return ad::add(x[1], x[0]); },
                     {a, b});
    expect_gradients("sub, " + shape, [](Tape<double>&, Inputs x) { return x[1] - x[0]; }, {a, b});
    expect_gradients("mul, " + shape, [](Tape<double>&, Inputs x) { return ad::mul(x[0], x[1]); }, {a, b});
    const Matrix<double> b_positive = b.array().abs() + 0.5;
    expect_gradients("div, " + shape, [](Tape<double>&, Inputs x) { return ad::div(x[0], x[1]); }, {a, b_positive});
    expect_gradients("div, broadcast numerator, " + shape, [](Tape<double>&, Inputs x) { return x[1] / x[0]; },
                     {den, b});
  }
  expect_gradients("mul of a variable with itself", [](Tape<double>&, Inputs x) { return ad::mul(x[0], x[0]); }, {a});
  expect_gradients("row and column broadcast together",
                   [](Tape<double>&, Inputs x) { return ad::mul(ad::add(x[0], x[1]), x[0]); }, {col, row});
}

TEST_CASE("scalar arithmetic, negation and n-ary sums") {
  const auto a = random_matrix(2, 3, 7);
  expect_gradients("x * s + t", [](Tape<double>&, Inputs x) { return x[0] * 1.7 + 0.3; }, {a});
  expect_gradients("s - x", [](Tape<double>&, Inputs x) { return 2.0 - x[0]; }, {a});
  expect_gradients("-x / s", [](Tape<double>&, Inputs x) { return -x[0] / 4.0; }, {a});
  expect_gradients("s / x", [](Tape<double>&, Inputs x) { return 3.0 / x[0]; }, {positive(2, 3, 8)});
  expect_gradients("add_n", [](Tape<double>&, Inputs x) { return ad::add_n(x); }, {a, random_matrix(2, 3, 9), a});
}

TEST_CASE("elementwise functions") {
  const auto a = random_matrix(3, 5, 10, -2.0, 2.0);
  const auto p = positive(3, 5, 11);
  expect_gradients("tanh", [](Tape<double>&, Inputs x) { return ad::tanh(x[0]); }, {a});
  expect_gradients("sigmoid", [](Tape<double>&, Inputs x) { return ad::sigmoid(x[0]); }, {a});
  expect_gradients("relu", [](Tape<double>&, Inputs x) { return ad::relu(x[0]); }, {a});
  expect_gradients("exp", [](Tape<double>&, Inputs x) { return ad::exp(x[0]); }, {a});
  expect_gradients("expm1", [](Tape<double>&, Inputs x) { return ad::expm1(x[0]); }, {a});
  expect_gradients("log", [](Tape<double>&, Inputs x) { return ad::log(x[0]); }, {p});
  expect_gradients("softplus", [](Tape<double>&, Inputs x) { return ad::softplus(x[0]); }, {a});
  expect_gradients("square", [](Tape<double>&, Inputs x) { return ad::square(x[0]); }, {a});
  expect_gradients("sqrt", [](Tape<double>&, Inputs x) { return ad::sqrt(x[0]); }, {p});
  expect_gradients("clamp", [](Tape<double>&, Inputs x) { return ad::clamp(x[0], -0.7, 0.9); }, {a});
  // Piecewise functions inside a smooth one, so that their masks meet nonzero curvature.
  expect_gradients("relu of a product", [](Tape<double>&, Inputs x) { return ad::relu(ad::mul(x[0], x[0]) - 0.5); },
                   {a});
}

TEST_CASE("matrix products with every transpose") {
  const auto a = random_matrix(3, 4, 12);
  const auto b = random_matrix(4, 2, 13);
  const Matrix<double> at = a.transpose();
  const Matrix<double> bt = b.transpose();
  using ad::Trans;
  expect_gradients("a b", [](Tape<double>&, Inputs x) { return ad::matmul(x[0], x[1]); }, {a, b});
  expect_gradients("a^T b", [](Tape<double>&, Inputs x) { return ad::matmul(x[0], x[1], Trans::yes); }, {at, b});
  expect_gradients("a b^T", [](Tape<double>&, Inputs x) { return ad::matmul(x[0], x[1], Trans::no, Trans::yes); },
                   {a, bt});
  expect_gradients("a^T b^T", [](Tape<double>&, Inputs x) { return ad::matmul(x[0], x[1], Trans::yes, Trans::yes); },
                   {at, bt});
  expect_gradients("a a^T", [](Tape<double>&, Inputs x) { return ad::matmul(x[0], x[0], Trans::no, Trans::yes); },
                   {a});
  expect_gradients("transpose", [](Tape<double>&, Inputs x) { return ad::matmul(ad::transpose(x[0]), x[0]); }, {a});
  expect_gradients("tanh(a b)", [](Tape<double>&, Inputs x) { return ad::tanh(ad::matmul(x[0], x[1])); }, {a, b});
}

TEST_CASE("sums and means") {
  const auto a = random_matrix(3, 4, 14);
  // Squared inside, so that the second derivative is not trivially zero.
  expect_gradients("sum", [](Tape<double>&, Inputs x) { return ad::sum(ad::square(x[0])); }, {a});
  expect_gradients("mean", [](Tape<double>&, Inputs x) { return ad::mean(ad::square(x[0])); }, {a});
  expect_gradients("rowwise_sum", [](Tape<double>&, Inputs x) { return ad::rowwise_sum(ad::square(x[0])); }, {a});
  expect_gradients("colwise_sum", [](Tape<double>&, Inputs x) { return ad::colwise_sum(ad::square(x[0])); }, {a});
  expect_gradients("rowwise_mean", [](Tape<double>&, Inputs x) { return ad::rowwise_mean(ad::square(x[0])); }, {a});
  expect_gradients("colwise_mean", [](Tape<double>&, Inputs x) { return ad::colwise_mean(ad::square(x[0])); }, {a});
  expect_gradients("dot", [](Tape<double>&, Inputs x) { return ad::dot(x[0], ad::tanh(x[0])); }, {a});
  expect_gradients("broadcast_to",
                   [](Tape<double>&, Inputs x) { return ad::square(ad::broadcast_to(x[0], 3, 4)); },
                   {random_matrix(3, 1, 15)});
  expect_gradients("sum_to", [](Tape<double>&, Inputs x) { return ad::square(ad::sum_to(x[0], 1, 4)); }, {a});
}

TEST_CASE("slices, padding and concatenation") {
  const auto a = random_matrix(4, 5, 16);
  const auto b = random_matrix(4, 2, 17);
  const auto c = random_matrix(3, 5, 18);
  expect_gradients("slice", [](Tape<double>&, Inputs x) { return ad::square(ad::slice(x[0], 1, 2, 2, 3)); }, {a});
  expect_gradients("slice_cols", [](Tape<double>&, Inputs x) { return ad::square(ad::slice_cols(x[0], 1, 3)); }, {a});
  expect_gradients("slice_rows", [](Tape<double>&, Inputs x) { return ad::square(ad::slice_rows(x[0], 2, 2)); }, {a});
  expect_gradients("embed", [](Tape<double>&, Inputs x) { return ad::square(ad::embed(x[0], 6, 7, 1, 2)); }, {a});
  expect_gradients("overlapping slices mixed with whole uses",
                   [](Tape<double>&, Inputs x) {
                     const auto s1 = ad::slice(x[0], 0, 0, 3, 3);
                     const auto s2 = ad::slice(x[0], 1, 1, 3, 3);
                     return ad::add(ad::mul(s1, s2), ad::square(ad::slice(ad::tanh(x[0]), 1, 2, 3, 3)));
                   },
                   {a});
  expect_gradients("embed_sum", [](Tape<double>&, Inputs x) {
                     const ad::Index rows[] = {0, 1, 2};
                     const ad::Index cols[] = {0, 2, 1};
                     return ad::square(ad::embed_sum(x, rows, cols, 6, 8));
                   },
                   {a, a, c});
  expect_gradients("concat_cols",
                   [](Tape<double>&, Inputs x) { return ad::square(ad::concat_cols({x[0], x[1], x[0]})); }, {a, b});
  expect_gradients("concat_rows", [](Tape<double>&, Inputs x) { return ad::square(ad::concat_rows({x[1], x[0]})); },
                   {a, c});
}

TEST_CASE("distributions per column") {
  const auto logits = random_matrix(4, 6, 19, -2.0, 2.0);
  const std::vector<int> rows{0, 3, 1, 2, 3, 0};
  expect_gradients("softmax", [](Tape<double>&, Inputs x) { return ad::softmax(x[0]); }, {logits});
  expect_gradients("log_softmax", [](Tape<double>&, Inputs x) { return ad::log_softmax(x[0]); }, {logits});
  expect_gradients("logsumexp", [](Tape<double>&, Inputs x) { return ad::logsumexp(x[0]); }, {logits});
  expect_gradients("pick", [&](Tape<double>&, Inputs x) { return ad::pick(ad::square(x[0]), rows); }, {logits});
  expect_gradients("scatter",
                   [&](Tape<double>&, Inputs x) { return ad::square(ad::scatter(x[0], rows, 4)); },
                   {random_matrix(1, 6, 20)});
  expect_gradients("action log-probability",
                   [&](Tape<double>&, Inputs x) { return ad::pick(ad::log_softmax(x[0]), rows); }, {logits});
  expect_gradients("categorical_entropy", [](Tape<double>&, Inputs x) { return ad::categorical_entropy(x[0]); },
                   {logits});
  const auto mean = random_matrix(2, 5, 21);
  const auto action = random_matrix(2, 5, 22);
  for (const auto& log_std : {random_matrix(2, 1, 23), random_matrix(2, 5, 24), random_matrix(1, 1, 25)}) {
    expect_gradients("gaussian_log_prob, log_std " + std::to_string(log_std.rows()) + "x" +
                         std::to_string(log_std.cols()),
                     [](Tape<double>&, Inputs x) { return ad::gaussian_log_prob(x[0], x[1], x[2]); },
                     {mean, log_std, action});
  }
}

TEST_CASE("the fused diagonal scan, both directions, with restarts") {
  const auto a = random_matrix(3, 1, 30, 0.3, 0.95);
  const auto u = random_matrix(3, 2 * 5, 31);
  Matrix<double> keep = Matrix<double>::Ones(1, 10);
  keep(0, 5) = 0;
  keep(0, 2) = 0;
  for (const bool reverse : {false, true}) {
    for (const double* mask : {static_cast<const double*>(nullptr), static_cast<const double*>(keep.data())}) {
      expect_gradients(std::string("diag_scan") + (reverse ? ", reverse" : "") + (mask ? ", with restarts" : ""),
                       [=](Tape<double>&, Inputs x) { return ad::diag_scan(x[0], x[1], 2, mask, reverse); }, {a, u});
    }
  }
  // Against its definition.
  Tape<double> tape;
  const Matrix<double> h = ad::diag_scan(tape.constant(a), tape.constant(u), 2, keep.data()).value();
  Matrix<double> expected = u;
  for (ad::Index t = 1; t < 5; ++t) {
    for (ad::Index b = 0; b < 2; ++b) {
      expected.col(t * 2 + b) += (a.array() * keep(0, t * 2 + b) * expected.col((t - 1) * 2 + b).array()).matrix();
    }
  }
  CHECK((h - expected).cwiseAbs().maxCoeff() < 1e-14);
}

TEST_CASE("forward values match closed forms") {
  Tape<double> tape;
  Matrix<double> logits(3, 2);
  logits << 1.0, -2.0, 0.5, 0.0, -1.0, 3.0;
  const auto x = tape.constant(logits);
  const Matrix<double> p = ad::softmax(x).value();
  CHECK(p.colwise().sum().isApprox(Matrix<double>::Ones(1, 2)));
  const Matrix<double> expected_entropy = -(p.array() * p.array().log()).colwise().sum();
  CHECK(ad::categorical_entropy(x).value().isApprox(expected_entropy, 1e-14));
  CHECK(ad::logsumexp(x).value()(0, 1) == doctest::Approx(std::log(std::exp(-2.0) + 1.0 + std::exp(3.0))));
  // Large logits stay finite.
  const auto big = tape.constant(Matrix<double>::Constant(3, 1, 1000.0));
  CHECK(ad::log_softmax(big).value()(0, 0) == doctest::Approx(-std::log(3.0)));
  CHECK(std::isfinite(ad::softplus(big).value()(0, 0)));
  {  // expm1 keeps the digits that exp(x) - 1 cancels: in float, exp(1e-7) - 1 is 1.19e-7
    Tape<float> tf;
    const auto tiny = tf.constant(Matrix<float>::Constant(1, 1, 1e-7f));
    CHECK(ad::expm1(tiny).value()(0, 0) == doctest::Approx(1e-7).epsilon(1e-6));
  }
  const auto m = tape.constant(Matrix<double>::Constant(1, 1, 0.3));
  const auto s = tape.constant(Matrix<double>::Constant(1, 1, std::log(2.0)));
  const auto a = tape.constant(Matrix<double>::Constant(1, 1, 1.1));
  const double z = (1.1 - 0.3) / 2.0;
  CHECK(ad::gaussian_log_prob(m, s, a).item() ==
        doctest::Approx(-0.5 * z * z - std::log(2.0) - 0.5 * std::log(2 * 3.14159265358979323846)));
}

TEST_CASE("float tapes compute what double tapes compute") {
  const auto a = random_matrix(5, 3, 26);
  const auto b = random_matrix(3, 4, 27);
  Tape<double> td;
  Tape<float> tf;
  const auto ad_ = td.variable(a);
  const auto af = tf.variable(a.cast<float>());
  const auto ld = ad::sum(ad::log_softmax(ad::tanh(ad::matmul(ad_, td.constant(b)))));
  const auto lf = ad::sum(ad::log_softmax(ad::tanh(ad::matmul(af, tf.constant(b.cast<float>())))));
  td.backward(ld);
  tf.backward(lf);
  CHECK(lf.item() == doctest::Approx(ld.item()).epsilon(1e-5));
  CHECK((af.grad().cast<double>() - ad_.grad()).cwiseAbs().maxCoeff() < 1e-5);
}
