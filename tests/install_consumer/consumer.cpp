// Uses the installed package the way a downstream project would: d/dx sum(tanh(W x)).
#include <ssmrl/ssmrl.hpp>

#include <cmath>
#include <cstdio>

int main() {
  using namespace ssmrl;
  ad::Tape<double> tape;
  const auto w = tape.variable(ad::Matrix<double>::Constant(2, 3, 0.5));
  const auto x = tape.constant(ad::Matrix<double>::Constant(3, 1, 1.0));
  const auto loss = ad::sum(ad::tanh(ad::matmul(w, x)));
  tape.backward(loss);
  const double expected = 1.0 - std::tanh(1.5) * std::tanh(1.5);
  const double got = w.grad()(1, 2);
  std::printf("ssmrl %d.%d.%d: d loss / d w = %.12f (expected %.12f)\n", version_major, version_minor, version_patch,
              got, expected);
  return std::abs(got - expected) < 1e-12 ? 0 : 1;
}
