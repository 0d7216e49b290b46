// Links two translation units that both include ssmrl/ssmrl.hpp: a non-inline definition in a
// header would be defined twice and fail to link.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/ssmrl.hpp>

double loss_in_other_unit();

TEST_CASE("the umbrella header links from two translation units") {
  ssmrl::ad::Tape<double> tape;
  const auto x = tape.variable(ssmrl::ad::Matrix<double>::Constant(2, 2, 0.25));
  const auto y = ssmrl::ad::sum(ssmrl::ad::square(x));
  tape.backward(y);
  // sum(x^2) = 4 * 0.0625, and the gradient 2x sums to 4 * 0.5.
  CHECK(loss_in_other_unit() == doctest::Approx(0.25 + 2.0));
  CHECK(y.item() + x.grad().sum() == doctest::Approx(loss_in_other_unit()));
}
