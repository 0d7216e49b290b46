// Trains a dense state space model to predict the next value of a noisy sine wave from the values
// seen so far, with the tape and Adam, and compares it with a naive baseline (predicting that the
// signal stays where it is).
#include <ssmrl/ssmrl.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>

using namespace ssmrl;
using Scalar = double;
using Mat = ad::Matrix<Scalar>;

namespace {

struct Sequences {
  Mat inputs;   // 1 x (T * batch): noisy sine, time-major blocks
  Mat targets;  // 1 x (T * batch): the clean value one step ahead
};

// Sines with random frequency and phase; the model must infer both from the noisy history.
Sequences make_sequences(ad::Index batch, ad::Index steps, double noise, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> frequency(0.1, 0.3);
  std::uniform_real_distribution<double> phase(0.0, 2 * std::numbers::pi);
  std::normal_distribution<double> jitter(0.0, noise);
  Sequences s{Mat(1, batch * steps), Mat(1, batch * steps)};
  for (ad::Index b = 0; b < batch; ++b) {
    const double w = frequency(rng);
    const double p = phase(rng);
    for (ad::Index t = 0; t < steps; ++t) {
      s.inputs(0, t * batch + b) = std::sin(w * double(t) + p) + jitter(rng);
      s.targets(0, t * batch + b) = std::sin(w * double(t + 1) + p);
    }
  }
  return s;
}

ad::Var<Scalar> mse(const ad::Var<Scalar>& prediction, const ad::Var<Scalar>& target) {
  return ad::mean(ad::square(ad::sub(prediction, target)));
}

}  // namespace

int main() {
  constexpr ad::Index batch = 32;
  constexpr ad::Index steps = 80;
  constexpr int iterations = 600;
  std::mt19937_64 rng(7);
  auto params = nn::init_dense_ssm<Scalar>({.obs = 1, .state = 16, .hidden = 32, .out = 1}, 11);
  optim::Adam<Scalar> adam({.lr = 3e-3});
  ad::Tape<Scalar> tape;
  std::array<Mat, 7> grads;

  const auto test = make_sequences(256, steps, 0.1, rng);
  auto evaluate = [&](const nn::DenseSsmParams<Mat>& p) {
    ad::Tape<Scalar>::Scope scope(tape);
    const auto prediction = nn::dense_ssm_forward(nn::on_tape(tape, p), tape.constant(test.inputs), 256);
    return mse(prediction, tape.constant(test.targets)).item();
  };
  // Persistence: tomorrow looks like today.
  const double persistence = (test.inputs - test.targets).array().square().mean();
  std::printf("fitting a dense SSM (state 16, hidden 32) to noisy sines: %d Adam steps, batch %ld x %ld steps\n",
              iterations, long(batch), long(steps));
  std::printf("test MSE before training %.4f; persistence baseline %.4f\n", evaluate(params), persistence);

  for (int it = 1; it <= iterations; ++it) {
    const auto train = make_sequences(batch, steps, 0.1, rng);
    tape.clear();
    const auto p = nn::on_tape(tape, params);
    const auto loss = mse(nn::dense_ssm_forward(p, tape.constant(train.inputs), batch), tape.constant(train.targets));
    tape.backward(loss);
    const auto vars = p.to_array();
    for (std::size_t i = 0; i < grads.size(); ++i) grads[i] = vars[i].grad();
    auto values = params.to_array();
    adam.step(std::span<Mat>(values), std::span<const Mat>(grads));
    params = nn::DenseSsmParams<Mat>::from_array(values);
    if (it % 100 == 0) std::printf("step %4d  train MSE %.4f  test MSE %.4f\n", it, loss.item(), evaluate(params));
  }
  const double final_mse = evaluate(params);
  std::printf("final test MSE %.4f (%.1fx lower than persistence)\n", final_mse, persistence / final_mse);
  return final_mse < persistence ? 0 : 1;
}
