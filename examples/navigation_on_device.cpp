// First-order MAML on 2D navigation with a diagonal-SSM Gaussian policy, its policy evaluation (the
// inner and the query losses and gradients) on the CUDA backend's device. Rollouts run on the host,
// the evaluation on the device; every iteration also evaluates the same trajectories with the CPU
// backend (ad::Tape) and prints the largest relative difference of the losses and gradients, failing
// (exit 1) above 1e-4.
//
// Usage: navigation_on_device [--device=host|gpu] [--iterations=N] [--tasks=N]
//   host: HostDevice (the device programs on the host, every machine); gpu: the GPU (ssmrl::cuda).
#include <ssmrl/cuda/bridge.hpp>
#include <ssmrl/cuda/host_device.hpp>
#include <ssmrl/ssmrl.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <numeric>
#include <random>
#include <string>

#if defined(SSMRL_EXAMPLE_GPU)
#include <ssmrl/cuda/backend.hpp>
#endif

namespace {

using namespace ssmrl;
using Scalar = float;
using Mat = ad::Matrix<Scalar>;
using Policy = policy::RecurrentPolicy<nn::DiagSsmCell<Scalar>, policy::GaussianHead<Scalar>>;
using Clock = std::chrono::steady_clock;

constexpr ad::Index envs = 20;
constexpr ad::Index steps = 100;
constexpr double inner_lr = 0.1;
constexpr double gamma = 0.99;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct LossAndGradient {
  double loss = 0;
  std::vector<Scalar> gradient;  // flat, in the device's order
};

//! The policy-gradient loss and gradient of the trajectories, on the CPU backend.
LossAndGradient evaluate_on_cpu(const Policy& pi, const rl::TrajectoryBatch<Scalar>& t, const Mat& weights) {
  ad::Tape<Scalar> tape;
  const auto p = nn::on_tape(tape, pi.params());
  const auto e = rl::evaluate(pi, tape, p, t);
  const auto loss = rl::policy_gradient_loss(e.log_prob, tape.constant(weights));
  tape.backward(loss);
  const auto names = cuda::DiagSsmPolicy<Scalar, cuda::HostDevice>::all_names;
  return {loss.item(), cuda::flatten<Scalar>(nn::gradients_of<Scalar>(p), std::span(names.data(), names.size()))};
}

//! The same on the device: the trajectories (and their initial state) uploaded, loss and gradients
//! computed there.
template <class Device>
LossAndGradient evaluate_on_device(Device& device, cuda::DiagSsmPolicy<Scalar, Device>& dp,
                                   cuda::Tape<Scalar, Device>& tape, const rl::TrajectoryBatch<Scalar>& t,
                                   const Mat& weights) {
  const auto upload = [&](const Mat& m) {
    Scalar* p = tape.scratch(m.size());
    device.upload(p, m.data(), static_cast<std::size_t>(m.size()));
    return p;
  };
  tape.clear();
  dp.zero_gradients();
  const cuda::DeviceSequences<Scalar> seq{.obs = upload(t.observations),
                                          .actions = upload(t.actions),
                                          .weights = upload(weights),
                                          .keep = upload(t.keep),
                                          .batch = t.envs,
                                          .steps = t.steps,
                                          .initial_state = t.initial_state.isZero(0) ? nullptr
                                                                                     : upload(t.initial_state)};
  const auto loss = dp.policy_gradient_loss(tape, seq);
  tape.backward(loss);
  return {tape.item(loss), dp.gradients_on_host()};
}

double relative_difference(const std::vector<Scalar>& got, const std::vector<Scalar>& want) {
  double worst = 0;
  double scale = 1e-30;
  for (std::size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::abs(double(got[i]) - double(want[i])));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return worst / scale;
}

//! One batch of trajectories evaluated by both backends, timed; `difference` is the largest relative
//! difference of the loss and of the gradient.
struct BothBackends {
  std::vector<Scalar> device_gradient, cpu_gradient;
  double device_s = 0, cpu_s = 0, difference = 0;
};

template <class Device>
BothBackends evaluate_on_both(Device& device, cuda::DiagSsmPolicy<Scalar, Device>& dp, cuda::Tape<Scalar, Device>& tape,
                              const Policy& pi, const rl::TrajectoryBatch<Scalar>& t) {
  const Mat weights = rl::normalized(rl::discounted_returns(t, gamma));
  auto start = Clock::now();
  dp.set_parameters(cuda::flatten<Scalar>(pi.params(), dp.names()));
  auto on_device = evaluate_on_device(device, dp, tape, t, weights);
  const double device_s = seconds_since(start);
  start = Clock::now();
  auto on_cpu = evaluate_on_cpu(pi, t, weights);
  const double cpu_s = seconds_since(start);
  const double loss_difference = std::abs(on_device.loss - on_cpu.loss) / std::max(1.0, std::abs(on_cpu.loss));
  const double difference = std::max(loss_difference, relative_difference(on_device.gradient, on_cpu.gradient));
  return {std::move(on_device.gradient), std::move(on_cpu.gradient), device_s, cpu_s, difference};
}

Policy adapted(const Policy& pi, const std::vector<Scalar>& gradient) {
  Policy out = pi;
  const auto names = cuda::DiagSsmPolicy<Scalar, cuda::HostDevice>::all_names;
  auto flat = cuda::flatten<Scalar>(pi.params(), std::span(names.data(), names.size()));
  for (std::size_t i = 0; i < flat.size(); ++i) flat[i] -= static_cast<Scalar>(inner_lr) * gradient[i];
  out.set_params(cuda::unflatten<Scalar>(pi.params(), std::span<const Scalar>(flat)));
  return out;
}

template <class Device>
int run(Device& device, int iterations, int tasks) {
  Policy pi(nn::DiagSsmCell<Scalar>({.input = 2, .state = 32, .output = 32}),
            policy::GaussianHead<Scalar>({.input = 32, .actions = 2, .initial_log_std = -0.5}), {}, {}, 1);
  const env::Navigation2DTasks distribution;
  std::mt19937_64 rng(11);
  auto dp = cuda::to_device<Scalar>(device, pi);
  cuda::Tape<Scalar, Device> tape(device);
  optim::Adam<Scalar> adam({.lr = 0.01});
  const auto collect = [&](const Policy& acting, const env::Navigation2DTask& task, std::uint64_t seed) {
    env::Navigation2D prototype;
    env::Navigation2DTasks::apply(prototype, task);
    env::EnvBatch<env::Navigation2D> batch(envs, prototype, seed);
    Policy copy = acting;
    copy.set_num_envs(envs);
    return rl::collect(copy, batch, steps, policy::ActMode::sample, rng);
  };
  double worst = 0;
  std::printf("iteration  return_before  return_after  rollout_s  device_eval_s  cpu_eval_s  max_rel_diff\n");
  for (int it = 0; it < iterations; ++it) {
    std::vector<Scalar> meta(static_cast<std::size_t>(dp.parameter_count()), 0), meta_cpu = meta;
    double rollout_s = 0, device_s = 0, cpu_s = 0, before = 0, after = 0;
    for (int k = 0; k < tasks; ++k) {
      const auto task = distribution.sample(rng);
      const std::uint64_t seed = 1000 * std::uint64_t(it) + std::uint64_t(k);
      auto start = Clock::now();
      const auto support = collect(pi, task, seed);
      rollout_s += seconds_since(start);
      const auto s = evaluate_on_both(device, dp, tape, pi, support);
      // The query rollouts follow the device's adaptation; both backends evaluate them.
      const Policy pi_adapted = adapted(pi, s.device_gradient);
      start = Clock::now();
      const auto query = collect(pi_adapted, task, seed + 500);
      rollout_s += seconds_since(start);
      const auto q = evaluate_on_both(device, dp, tape, pi_adapted, query);
      device_s += s.device_s + q.device_s;
      cpu_s += s.cpu_s + q.cpu_s;
      worst = std::max({worst, s.difference, q.difference});
      for (std::size_t i = 0; i < meta.size(); ++i) {
        meta[i] += q.device_gradient[i] / static_cast<Scalar>(tasks);
        meta_cpu[i] += q.cpu_gradient[i] / static_cast<Scalar>(tasks);
      }
      const auto mean_first = [](const rl::TrajectoryBatch<Scalar>& t) {
        const auto r = rl::first_episode_returns(t);
        return std::accumulate(r.begin(), r.end(), 0.0) / double(r.size());
      };
      before += mean_first(support) / tasks;
      after += mean_first(query) / tasks;
    }
    worst = std::max(worst, relative_difference(meta, meta_cpu));
    // The outer Adam step on the host, with the device's meta-gradient.
    auto params = nn::to_list<Mat>(pi.params());
    const auto grads = nn::to_list<Mat>(
        cuda::unflatten<Scalar>(pi.params(), std::span<const Scalar>(meta)));
    adam.step(params, grads);
    pi.set_params(nn::from_list(pi.params(), params));
    std::printf("%9d  %13.3f  %12.3f  %9.3f  %13.3f  %10.3f  %12.3g\n", it, before, after, rollout_s, device_s, cpu_s,
                relative_difference(meta, meta_cpu));
  }
  std::printf("largest relative difference of a loss or gradient, device against CPU backend: %.3g\n", worst);
  if (worst > 1e-4) {
    std::fprintf(stderr, "navigation_on_device: device and CPU backend differ by %.3g\n", worst);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = "host";
  int iterations = 3;
  int tasks = 8;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--device=", 0) == 0) {
      device = a.substr(9);
    } else if (a.rfind("--iterations=", 0) == 0) {
      iterations = std::stoi(a.substr(13));
    } else if (a.rfind("--tasks=", 0) == 0) {
      tasks = std::stoi(a.substr(8));
    } else {
      std::cerr << "usage: navigation_on_device [--device=host|gpu] [--iterations=N] [--tasks=N]\n";
      return 2;
    }
  }
  try {
    if (device == "host") {
      cuda::HostDevice host;
      return run(host, iterations, tasks);
    }
    if (device == "gpu") {
#if defined(SSMRL_EXAMPLE_GPU)
      cuda::GpuDevice gpu;
      std::printf("device: %s\n", gpu.description().c_str());
      return run(gpu, iterations, tasks);
#else
      std::cerr << "navigation_on_device: built without ssmrl::cuda (no CUDA compiler)\n";
      return 2;
#endif
    }
    std::cerr << "navigation_on_device: --device is '" << device << "'; expected host or gpu\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "navigation_on_device: " << e.what() << "\n";
    return 1;
  }
}
