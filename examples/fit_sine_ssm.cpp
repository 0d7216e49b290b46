// Trains a dense state space model to predict the next value of a noisy sine wave from the values
// seen so far, with the tape and Adam, and compares it with a naive baseline (predicting that the
// signal stays where it is).
#include <ssmrl/ssmrl.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>
#include <string_view>
#include <tuple>

#include "support/noisy_sines.hpp"

using namespace ssmrl;
using Scalar = double;
using Mat = ad::Matrix<Scalar>;

namespace {

using examples::make_sequences;
using examples::Sequences;

ad::Var<Scalar> mse(const ad::Var<Scalar>& prediction, const ad::Var<Scalar>& target) {
  return ad::mean(ad::square(ad::sub(prediction, target)));
}

}  // namespace

// The model's parameters: a parameter struct, so that on_tape, to_list and friends apply to it.
template <class T>
struct SineModel {
  nn::DenseSsmParams<T> cell;
  nn::LinearParams<T> out;
  static constexpr std::array<std::string_view, 2> names{"cell", "out"};
  auto fields() { return std::tie(cell, out); }
  auto fields() const { return std::tie(cell, out); }
  template <class U>
  using rebind = SineModel<U>;
};

int main() {
  constexpr ad::Index batch = 32;
  constexpr ad::Index steps = 80;
  constexpr int iterations = 600;
  std::mt19937_64 rng(7);
  // A dense SSM whose tanh readout feeds a linear layer: the prediction.
  const nn::DenseSsmCell<Scalar> cell({.input = 1, .state = 16, .output = 32});
  SineModel<Mat> model{cell.init_params(rng), nn::init_linear<Scalar>(32, 1, rng)};
  auto predict = [&](const SineModel<ad::Var<Scalar>>& m, const ad::Var<Scalar>& inputs, ad::Index n) {
    return nn::linear(m.out, cell.forward_sequence(m.cell, inputs, n));
  };
  optim::Adam<Scalar> adam({.lr = 3e-3});
  ad::Tape<Scalar> tape;

  const auto test = make_sequences(256, steps, 0.1, rng);
  auto evaluate = [&](const SineModel<Mat>& m) {
    ad::Tape<Scalar>::Scope scope(tape);
    return mse(predict(nn::on_tape(tape, m), tape.constant(test.inputs), 256), tape.constant(test.targets)).item();
  };
  // Persistence: tomorrow looks like today.
  const double persistence = (test.inputs - test.targets).array().square().mean();
  std::printf("fitting a dense SSM (state 16, readout 32) to noisy sines: %d Adam steps, batch %ld x %ld steps\n",
              iterations, long(batch), long(steps));
  std::printf("test MSE before training %.4f; persistence baseline %.4f\n", evaluate(model), persistence);

  for (int it = 1; it <= iterations; ++it) {
    const auto train = make_sequences(batch, steps, 0.1, rng);
    tape.clear();
    const auto vars = nn::on_tape(tape, model);
    const auto loss = mse(predict(vars, tape.constant(train.inputs), batch), tape.constant(train.targets));
    tape.backward(loss);
    auto values = nn::to_list<Mat>(model);
    const auto grads = nn::to_list<Mat>(nn::gradients_of<Scalar>(vars));
    adam.step(std::span<Mat>(values), std::span<const Mat>(grads));
    model = nn::from_list(model, values);
    if (it % 100 == 0) std::printf("step %4d  train MSE %.4f  test MSE %.4f\n", it, loss.item(), evaluate(model));
  }
  const double final_mse = evaluate(model);
  std::printf("final test MSE %.4f (%.1fx lower than persistence)\n", final_mse, persistence / final_mse);
  return final_mse < persistence ? 0 : 1;
}
