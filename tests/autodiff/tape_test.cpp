// The tape itself: arena reuse, nested scopes, gradient semantics, higher-order gradients,
// user-defined operations and error messages.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/autodiff.hpp>

#include <string>

#include "support/errors.hpp"

#include "support/random.hpp"

using namespace ssmrl;
using test::message_of;
using ad::Matrix;
using ad::Tape;
using ad::Var;
using test::random_matrix;

namespace {

// A user-defined operation: y = x^3 with its own forward, backward and backward_graph.
class CubeNode final : public ad::Node<double> {
public:
  explicit CubeNode(ad::Node<double>* x) : x_(x) {}
  const char* name() const noexcept override { return "cube"; }
  void backward() override { x_->accumulate(3.0 * this->adjoint().array() * x_->value().array().square()); }
  void backward_graph(ad::GraphContext<double>& ctx) const override {
    const auto x = ctx.input(x_);
    ctx.accumulate(x_, ad::mul(ctx.grad(), 3.0 * ad::square(x)));
  }

private:
  ad::Node<double>* x_;
};

Var<double> cube(const Var<double>& x) {
  auto& tape = x.tape();
  auto* node = tape.make_node<CubeNode>(x.rows(), x.cols(), x.requires_grad(), x.node());
  node->value() = x.value().array().cube().matrix();
  return tape.var(node);
}

// y = x^3 with a deliberately wrong backward (factor 2) or a wrong backward_graph (factor 2 there
// only): gradcheck must notice each.
template <bool wrong_first_order>
class BrokenCubeNode final : public ad::Node<double> {
public:
  explicit BrokenCubeNode(ad::Node<double>* x) : x_(x) {}
  const char* name() const noexcept override { return "broken_cube"; }
  void backward() override {
    const double factor = wrong_first_order ? 2.0 : 3.0;
    x_->accumulate(factor * this->adjoint().array() * x_->value().array().square());
  }
  void backward_graph(ad::GraphContext<double>& ctx) const override {
    ctx.accumulate(x_, ad::mul(ctx.grad(), 2.0 * ad::square(ctx.input(x_))));
  }

private:
  ad::Node<double>* x_;
};

template <bool wrong_first_order>
Var<double> broken_cube(const Var<double>& x) {
  auto& tape = x.tape();
  auto* node = tape.make_node<BrokenCubeNode<wrong_first_order>>(x.rows(), x.cols(), x.requires_grad(), x.node());
  node->value() = x.value().array().cube().matrix();
  return tape.var(node);
}

// An operation that implements only the first-order backward.
class FirstOrderOnlyNode final : public ad::Node<double> {
public:
  explicit FirstOrderOnlyNode(ad::Node<double>* x) : x_(x) {}
  const char* name() const noexcept override { return "first_order_only"; }
  void backward() override { x_->accumulate(this->adjoint()); }

private:
  ad::Node<double>* x_;
};

}  // namespace

TEST_CASE("the arena keeps its blocks across clears") {
  ad::Arena arena(256);
  void* first = arena.allocate(100);
  for (int i = 0; i < 20; ++i) (void)arena.allocate(200);
  const auto blocks = arena.block_count();
  const auto reserved = arena.bytes_reserved();
  CHECK(blocks > 1);
  CHECK(reinterpret_cast<std::uintptr_t>(first) % ad::Arena::alignment == 0);
  arena.clear();
  CHECK(arena.allocate(100) == first);
  for (int i = 0; i < 20; ++i) (void)arena.allocate(200);
  CHECK(arena.block_count() == blocks);
  CHECK(arena.bytes_reserved() == reserved);
  // A request larger than any block gets a block of its own, kept for next time.
  arena.clear();
  (void)arena.allocate(1 << 20);
  CHECK(arena.bytes_reserved() >= reserved + (1 << 20));
}

TEST_CASE("a nested scope drops what it recorded and keeps what came before") {
  Tape<double> tape;
  const auto x = tape.variable(random_matrix(3, 3, 1));
  const auto y = ad::tanh(x);
  const auto size_before = tape.size();
  {
    Tape<double>::Scope inner(tape);
    const auto z = ad::sum(ad::square(y));
    tape.backward(z);
    CHECK(tape.size() > size_before);
  }
  CHECK(tape.size() == size_before);
  const auto loss = ad::sum(y);
  tape.backward(loss);
  const Matrix<double> expected = 1.0 - x.value().array().tanh().square();
  CHECK(x.grad().isApprox(expected));
}

TEST_CASE("gradients accumulate over every use and are zero where nothing flows") {
  Tape<double> tape;
  const auto x = tape.variable(Matrix<double>::Constant(2, 2, 3.0));
  const auto unused = tape.variable(Matrix<double>::Constant(1, 2, 1.0));
  const auto c = tape.constant(Matrix<double>::Constant(2, 2, 2.0));
  const auto loss = ad::sum(ad::add(ad::mul(x, c), ad::mul(x, x)));  // d/dx = 2 + 2x
  tape.backward(loss);
  CHECK(x.grad().isApprox(Matrix<double>::Constant(2, 2, 8.0)));
  CHECK(unused.grad().isZero());
  CHECK_FALSE(c.requires_grad());
  // A second pass over the same tape gives the same result, not twice it.
  tape.backward(loss);
  CHECK(x.grad().isApprox(Matrix<double>::Constant(2, 2, 8.0)));
}

TEST_CASE("grad with create_graph gives exact higher derivatives") {
  Tape<double> tape;
  const auto x = tape.variable(Matrix<double>::Constant(1, 1, 1.5));
  const auto y = ad::sum(cube(x));  // y = x^3
  const auto g1 = ad::grad(y, {x}, {.create_graph = true});
  CHECK(g1[0].item() == doctest::Approx(3 * 1.5 * 1.5));
  const auto g2 = ad::grad(g1[0], {x}, {.create_graph = true});
  CHECK(g2[0].item() == doctest::Approx(6 * 1.5));
  const auto g3 = ad::grad(g2[0], {x}, {.create_graph = true});
  CHECK(g3[0].item() == doctest::Approx(6.0));
  // Without create_graph the results are plain values cut off from the tape.
  const auto values = ad::grad(y, {x});
  CHECK(values[0].item() == doctest::Approx(3 * 1.5 * 1.5));
  CHECK_FALSE(values[0].requires_grad());
}

TEST_CASE("a user-defined operation passes gradcheck, first and second order") {
  const auto result = ad::gradcheck(
      [](Tape<double>&, std::span<const Var<double>> x) { return cube(ad::tanh(x[0])); }, {random_matrix(2, 3, 2)});
  INFO(result.report);
  CHECK(result.passed);
}

TEST_CASE("gradcheck catches a wrong backward and a wrong backward_graph") {
  const auto input = random_matrix(2, 2, 12);
  const auto wrong_first = ad::gradcheck(
      [](Tape<double>&, std::span<const Var<double>> x) { return broken_cube<true>(x[0]); }, {input});
  CHECK_FALSE(wrong_first.passed);
  CHECK(wrong_first.max_error_first > 1e-2);
  const auto wrong_second = ad::gradcheck(
      [](Tape<double>&, std::span<const Var<double>> x) { return broken_cube<false>(x[0]); }, {input});
  CHECK_FALSE(wrong_second.passed);
  CHECK(wrong_second.max_error_first < 1e-6);
  CHECK(wrong_second.report.find("create_graph") != std::string::npos);
}

TEST_CASE("an operation without backward_graph says so when differentiated twice") {
  Tape<double> tape;
  const auto x = tape.variable(random_matrix(2, 2, 3));
  auto* node = tape.make_node<FirstOrderOnlyNode>(2, 2, true, x.node());
  node->value() = x.value();
  const auto loss = ad::sum(ad::square(tape.var(node)));
  tape.backward(loss);
  CHECK(x.grad().isApprox(2.0 * x.value()));
  const auto msg = message_of<UsageError>([&] { (void)ad::grad(loss, {x}, {.create_graph = true}); });
  CHECK(msg.find("first_order_only") != std::string::npos);
  CHECK(msg.find("create_graph") != std::string::npos);
}

TEST_CASE("hessian_vector_product matches differences of gradients") {
  const Matrix<double> a0 = random_matrix(3, 3, 4);
  const Matrix<double> v = random_matrix(3, 3, 5);
  const Matrix<double> w = random_matrix(3, 2, 6);
  auto loss_of = [&](Tape<double>& tape, const Var<double>& a) {
    return ad::sum(ad::log_softmax(ad::tanh(ad::matmul(a, tape.constant(w)))));
  };
  auto gradient_at = [&](const Matrix<double>& a) {
    Tape<double> tape;
    const auto av = tape.variable(a);
    tape.backward(loss_of(tape, av));
    return Matrix<double>(av.grad());
  };
  Tape<double> tape;
  const auto a = tape.variable(a0);
  const Var<double> wrt[] = {a};
  const Matrix<double> dirs[] = {v};
  const auto hv = ad::hessian_vector_product(loss_of(tape, a), std::span<const Var<double>>(wrt),
                                             std::span<const Matrix<double>>(dirs));
  const double h = 1e-6;
  const Matrix<double> numeric = (gradient_at(a0 + h * v) - gradient_at(a0 - h * v)) / (2 * h);
  CHECK((hv[0] - numeric).cwiseAbs().maxCoeff() < 1e-7);
  CHECK(hv[0].cwiseAbs().maxCoeff() > 1e-3);
}

TEST_CASE("vjp seeds a non-scalar output") {
  Tape<double> tape;
  const auto x = tape.variable(random_matrix(2, 3, 7));
  const auto y = ad::square(x);
  const auto seed = tape.constant(random_matrix(2, 3, 8));
  const Var<double> wrt[] = {x};
  const auto g = ad::vjp(y, seed, std::span<const Var<double>>(wrt));
  const Matrix<double> expected = 2.0 * x.value().array() * seed.value().array();
  CHECK(g[0].value().isApprox(expected));
  tape.backward(y, seed.value());
  CHECK(x.grad().isApprox(expected));
}

TEST_CASE("bad shapes name the operation and both shapes, and record nothing") {
  Tape<double> tape;
  const auto a = tape.variable(random_matrix(3, 4, 9));
  const auto b = tape.variable(random_matrix(5, 2, 10));
  const auto size = tape.size();
  auto msg = message_of<InvalidArgument>([&] { (void)ad::matmul(a, b); });
  CHECK(msg.find("ad::matmul") != std::string::npos);
  CHECK(msg.find("3x4") != std::string::npos);
  CHECK(msg.find("5x2") != std::string::npos);
  msg = message_of<InvalidArgument>([&] { (void)ad::add(a, b); });
  CHECK(msg == "ad::add: shapes 3x4 and 5x2 do not broadcast");
  msg = message_of<InvalidArgument>([&] { (void)ad::slice_cols(a, 3, 2); });
  CHECK(msg.find("ad::slice") != std::string::npos);
  const std::vector<int> rows{0, 7, 1, 2};
  msg = message_of<InvalidArgument>([&] { (void)ad::pick(a, rows); });
  CHECK(msg == "ad::pick: row index 7 in column 1 is outside [0, 3)");
  msg = message_of<InvalidArgument>([&] { tape.backward(a); });
  CHECK(msg.find("3x4") != std::string::npos);
  msg = message_of<InvalidArgument>([&] { (void)ad::concat_cols({a, b}); });
  CHECK(msg == "ad::concat_cols: part 1 has 5 rows, part 0 has 3");
  CHECK(tape.size() == size);
  Tape<double> other;
  const auto c = other.variable(random_matrix(3, 4, 11));
  msg = message_of<InvalidArgument>([&] { (void)ad::add(a, c); });
  CHECK(msg.find("different tapes") != std::string::npos);
}
