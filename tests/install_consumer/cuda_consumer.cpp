// Uses ssmrl::cuda from the installed package: the device policy's loss and gradients on HostDevice,
// and on the GPU where one is present (the GPU device's code is in the installed static library).
#include <ssmrl/cuda/backend.hpp>
#include <ssmrl/cuda/host_device.hpp>
#include <ssmrl/cuda/policy.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

namespace {

template <class Device>
double loss_of(Device& device) {
  using namespace ssmrl::cuda;
  DiagSsmPolicy<float, Device> pi(device, {.obs = 3, .state = 4, .hidden = 5, .actions = 2, .head = Head::categorical});
  std::vector<float> params(static_cast<std::size_t>(pi.parameter_count()));
  for (std::size_t i = 0; i < params.size(); ++i) params[i] = 0.1f * std::sin(static_cast<float>(i));
  pi.set_parameters(params);
  constexpr Index batch = 2, steps = 6;
  std::vector<float> obs(3 * batch * steps), actions(batch * steps), weights(batch * steps, 1.0f);
  for (std::size_t i = 0; i < obs.size(); ++i) obs[i] = std::cos(0.3f * static_cast<float>(i));
  for (std::size_t i = 0; i < actions.size(); ++i) actions[i] = static_cast<float>(i % 2);
  Tape<float, Device> tape(device, std::size_t(1) << 20);
  const auto x = tape.constant(obs.data(), 3, batch * steps);
  const auto a = tape.constant(actions.data(), 1, batch * steps);
  const auto w = tape.constant(weights.data(), 1, batch * steps);
  pi.zero_gradients();
  const auto loss = pi.policy_gradient_loss(tape, {.obs = x.value, .actions = a.value, .weights = w.value,
                                                   .keep = nullptr, .batch = batch, .steps = steps});
  tape.backward(loss);
  double g = 0;
  for (const float v : pi.gradients_on_host()) g += std::abs(v);
  return g > 0 ? tape.item(loss) : std::nan("");
}

}  // namespace

int main() {
  ssmrl::cuda::HostDevice host;
  const double on_host = loss_of(host);
  std::printf("ssmrl::cuda: loss on HostDevice %.6f\n", on_host);
  if (!std::isfinite(on_host)) return 1;
  std::string why;
  if (ssmrl::cuda::device_count(&why) == 0) {
    std::printf("ssmrl::cuda: no GPU here (%s)\n", why.c_str());
    return 0;
  }
  ssmrl::cuda::GpuDevice gpu;
  const double on_gpu = loss_of(gpu);
  std::printf("ssmrl::cuda: loss on %s %.6f\n", gpu.description().c_str(), on_gpu);
  return std::abs(on_gpu - on_host) <= 1e-5 * std::abs(on_host) + 1e-6 ? 0 : 1;
}
