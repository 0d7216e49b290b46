// The second translation unit: includes the umbrella header and instantiates the same templates.
#include <ssmrl/ssmrl.hpp>

double loss_in_other_unit() {
  ssmrl::ad::Tape<double> tape;
  const auto x = tape.variable(ssmrl::ad::Matrix<double>::Constant(2, 2, 0.25));
  const auto y = ssmrl::ad::sum(ssmrl::ad::square(x));
  tape.backward(y);
  return y.item() + x.grad().sum();
}
