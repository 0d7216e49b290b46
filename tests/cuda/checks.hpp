// The CUDA backend's checks, for any device: the device tape's loss and gradients against the CPU
// backend (ad::Tape) and against the PyTorch references, the reset-aware scan against the CPU's
// sequential one, and the batched policy step against RecurrentPolicy::act. backend_test.cpp runs
// them on HostDevice (every machine), gpu_test.cpp on a GPU.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <ssmrl/cuda/bridge.hpp>
#include <ssmrl/cuda/host_device.hpp>
#include <ssmrl/ssmrl.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "support/reference_cases.hpp"

namespace ssmrl::test::cuda_checks {

using ad::Index;
template <class S>
using Mat = ad::Matrix<S>;

//! Agreement asked of a device with the CPU backend: relative 1e-5 in float, 1e-12 in double.
template <class S>
constexpr double tolerance = std::is_same_v<S, float> ? 1e-5 : 1e-12;

//! max |got - want| / max(max |want|, tiny): the reference folder's rule, relative to the tensor.
template <class A, class B>
double relative_error(const A& got, const B& want) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  double scale = 1e-30;
  for (std::size_t i = 0; i < std::size(want); ++i) {
    worst = std::max(worst, std::abs(double(got[i]) - double(want[i])));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return worst / scale;
}

template <class S>
std::vector<S> values(const Mat<S>& m) {
  return {m.data(), m.data() + m.size()};
}

template <class S>
struct Sequences {
  Index batch = 0;
  Index steps = 0;
  Mat<S> obs, actions, weights, keep;  // keep empty: no restarts
  Mat<S> initial_state;                // state x batch; empty: zero
};

template <class S>
Sequences<S> random_sequences(const cuda::DiagSsmPolicyShape& shape, Index batch, Index steps, std::uint64_t seed,
                              bool restarts, bool initial_state = false) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_int_distribution<int> action(0, int(shape.actions) - 1);
  const Index cols = batch * steps;
  Sequences<S> s{batch, steps, Mat<S>(shape.obs, cols), Mat<S>(), Mat<S>(1, cols), Mat<S>(), Mat<S>()};
  for (Index i = 0; i < s.obs.size(); ++i) s.obs(i) = S(normal(rng));
  for (Index i = 0; i < cols; ++i) s.weights(i) = S(normal(rng));
  if (shape.head == cuda::Head::categorical) {
    s.actions.resize(1, cols);
    for (Index i = 0; i < cols; ++i) s.actions(i) = S(action(rng));
  } else {
    s.actions.resize(shape.actions, cols);
    for (Index i = 0; i < s.actions.size(); ++i) s.actions(i) = S(normal(rng));
  }
  if (restarts) {
    // Restarts at chunk boundaries of the scan (16 steps), right after the start, and at random.
    s.keep = Mat<S>::Ones(1, cols);
    std::bernoulli_distribution restart(0.03);
    for (Index t = 1; t < steps; ++t) {
      for (Index b = 0; b < batch; ++b) {
        if (t == 1 || t % 16 == 0 || restart(rng)) s.keep(t * batch + b) = S(0);
      }
    }
  }
  if (initial_state) {
    // A state carried in, dropped by the even samples' first step (an episode that starts there).
    s.initial_state.resize(shape.state, batch);
    for (Index i = 0; i < s.initial_state.size(); ++i) s.initial_state(i) = S(normal(rng));
    if (s.keep.size() == 0) s.keep = Mat<S>::Ones(1, cols);
    for (Index b = 0; b < batch; b += 2) s.keep(b) = S(0);
  }
  return s;
}

template <class S>
struct LossAndGradients {
  S loss{};
  std::vector<S> gradients;  // in the device's flat order
};

template <class S, class Policy>
LossAndGradients<S> on_cpu(const Policy& policy, const Sequences<S>& s) {
  ad::Tape<S> tape;
  const auto p = nn::on_tape(tape, policy.params());
  nn::SequenceOptions<S> options;
  if (s.keep.size() != 0) options.keep = s.keep.data();
  if (s.initial_state.size() != 0) options.initial_state = tape.constant(s.initial_state);
  const auto e = policy.evaluate(p, tape.constant(s.obs), s.batch, s.actions, options);
  const auto loss = rl::policy_gradient_loss(e.log_prob, tape.constant(s.weights));
  tape.backward(loss);
  const auto device_names = cuda::DiagSsmPolicy<S, cuda::HostDevice>::all_names;
  const std::size_t count = Policy::head_type::categorical ? 8 : 9;
  return {loss.item(), cuda::flatten<S>(nn::gradients_of<S>(p), std::span(device_names.data(), count))};
}

template <class S, class Device, class Policy>
LossAndGradients<S> on_device(Device& device, const Policy& policy, const Sequences<S>& s) {
  auto dp = cuda::to_device<S>(device, policy);
  const auto upload = [&](const Mat<S>& m) {
    cuda::Buffer<S, Device> b(device, m.size());
    b.upload(m.data(), m.size());
    return b;
  };
  const auto obs = upload(s.obs);
  const auto actions = upload(s.actions);
  const auto weights = upload(s.weights);
  const auto keep = upload(s.keep);
  const auto initial_state = upload(s.initial_state);
  cuda::Tape<S, Device> tape(device);
  dp.zero_gradients();
  const auto loss =
      dp.policy_gradient_loss(tape, {.obs = obs.data(),
                                     .actions = actions.data(),
                                     .weights = weights.data(),
                                     .keep = s.keep.size() != 0 ? keep.data() : nullptr,
                                     .batch = s.batch,
                                     .steps = s.steps,
                                     .initial_state = s.initial_state.size() != 0 ? initial_state.data() : nullptr});
  tape.backward(loss);
  return {tape.item(loss), dp.gradients_on_host()};
}

//! Each parameter's gradient compared as a tensor of its own.
template <class S, class Device>
void check_gradients(const cuda::DiagSsmPolicy<S, Device>& dp, const std::vector<S>& got, const std::vector<S>& want,
                     double limit) {
  REQUIRE(got.size() == want.size());
  std::size_t at = 0;
  for (std::size_t i = 0; i < dp.names().size(); ++i) {
    const auto [rows, cols] = dp.parameter_shape(i);
    const auto n = static_cast<std::size_t>(rows * cols);
    const std::vector<S> g(got.begin() + long(at), got.begin() + long(at + n));
    const std::vector<S> w(want.begin() + long(at), want.begin() + long(at + n));
    INFO("gradient of " << dp.names()[i]);
    CHECK(relative_error(g, w) <= limit);
    at += n;
  }
}

template <class S>
auto categorical_policy(Index obs, Index state, Index hidden, Index actions, std::uint64_t seed) {
  return policy::RecurrentPolicy<nn::DiagSsmCell<S>, policy::CategoricalHead<S>>(
      nn::DiagSsmCell<S>({.input = obs, .state = state, .output = hidden}), policy::CategoricalHead<S>(hidden, actions),
      {}, {}, seed);
}

template <class S>
auto gaussian_policy(Index obs, Index state, Index hidden, Index actions, std::uint64_t seed) {
  return policy::RecurrentPolicy<nn::DiagSsmCell<S>, policy::GaussianHead<S>>(
      nn::DiagSsmCell<S>({.input = obs, .state = state, .output = hidden}),
      policy::GaussianHead<S>({.input = hidden, .actions = actions, .initial_log_std = -0.5}), {}, {}, seed);
}

//! One policy's loss and gradients on the device against ad::Tape.
template <class S, class Device, class Policy>
void compare_with_cpu(Device& device, const Policy& policy, Index batch, Index steps, bool restarts,
                      bool initial_state = false) {
  const auto s =
      random_sequences<S>(cuda::shape_of(policy), batch, steps, 11 + std::uint64_t(batch), restarts, initial_state);
  const auto want = on_cpu(policy, s);
  const auto got = on_device(device, policy, s);
  CHECK(std::abs(double(got.loss) - double(want.loss)) <= tolerance<S> * std::max(1.0, std::abs(double(want.loss))));
  check_gradients(cuda::to_device<S>(device, policy), got.gradients, want.gradients, tolerance<S>);
}

//! Loss and gradients on the device against ad::Tape, with and without restarts, both heads.
template <class S, class Device>
void check_against_cpu(Device& device) {
  for (const bool restarts : {false, true}) {
    for (const Index steps : {Index(1), Index(37), Index(300)}) {
      CAPTURE(restarts);
      CAPTURE(steps);
      compare_with_cpu<S>(device, categorical_policy<S>(4, 16, 24, 3, 7 + std::uint64_t(steps)), 5, steps, restarts);
      compare_with_cpu<S>(device, gaussian_policy<S>(3, 8, 12, 2, 5 + std::uint64_t(steps)), 4, steps, restarts);
    }
  }
  // A state carried in from an earlier segment, dropped by the samples whose first step starts an episode.
  for (const Index steps : {Index(1), Index(37)}) {
    CAPTURE(steps);
    compare_with_cpu<S>(device, categorical_policy<S>(4, 16, 24, 3, 3 + std::uint64_t(steps)), 5, steps, true, true);
    compare_with_cpu<S>(device, gaussian_policy<S>(3, 8, 12, 2, 2 + std::uint64_t(steps)), 4, steps, false, true);
  }
}

//! The scan and its adjoint, 1000 steps (64 chunks, chunk length 16) and 37, with restarts, against
//! ad::diag_scan's sequential recurrence.
template <class S, class Device>
void check_scan(Device& device) {
  for (const Index steps : {Index(1000), Index(37), Index(1)}) {
    for (const bool reverse : {false, true}) {
      CAPTURE(steps);
      CAPTURE(reverse);
      const Index rows = 6;
      const Index batch = 3;
      std::mt19937_64 rng(17);
      std::uniform_real_distribution<double> uniform(0.5, 1.0);
      Mat<S> a(rows, 1);
      Mat<S> u(rows, steps * batch);
      for (Index i = 0; i < a.size(); ++i) a(i) = S(uniform(rng));
      for (Index i = 0; i < u.size(); ++i) u(i) = S(uniform(rng) - 0.75);
      const auto keep =
          random_sequences<S>({.obs = 1, .state = 1, .hidden = 1, .actions = 2}, batch, steps, 3, true).keep;
      ad::Tape<S> cpu;
      const auto want = ad::diag_scan(cpu.constant(a), cpu.constant(u), batch, keep.data(), reverse).value();
      cuda::Tape<S, Device> tape(device);
      const auto da = tape.constant(a.data(), rows, 1);
      const auto du = tape.constant(u.data(), rows, steps * batch);
      const auto dk = tape.constant(keep.data(), 1, steps * batch);
      S* out = tape.scratch(u.size());
      tape.scan(da.value, dk.value, du.value, out, rows, batch, steps, reverse);
      std::vector<S> got(static_cast<std::size_t>(u.size()));
      device.download(got.data(), out, got.size());
      CHECK(relative_error(got, values<S>(Mat<S>(want))) <= tolerance<S>);
    }
  }
}

//! A restart resets the state inside the scan, whatever came before: an infinite state before
//! the restart (0 * inf is NaN in a multiplied-out scan) leaves every state after it finite, in
//! every chunk (40 steps: 3 chunks, the restart in the second).
template <class S, class Device>
void check_scan_reset_isolates(Device& device) {
  const Index steps = 40;
  const Index restart = 20;
  const S a(0.5);
  Mat<S> u = Mat<S>::Ones(1, steps);
  u(3) = std::numeric_limits<S>::infinity();
  Mat<S> keep = Mat<S>::Ones(1, steps);
  keep(restart) = S(0);
  cuda::Tape<S, Device> tape(device);
  const auto da = tape.constant(&a, 1, 1);
  const auto du = tape.constant(u.data(), 1, steps);
  const auto dk = tape.constant(keep.data(), 1, steps);
  S* out = tape.scratch(steps);
  tape.scan(da.value, dk.value, du.value, out, 1, 1, steps, false);
  std::vector<S> got(static_cast<std::size_t>(steps));
  device.download(got.data(), out, got.size());
  S h = S(0);
  for (Index t = restart; t < steps; ++t) {
    h = t == restart ? S(1) : a * h + S(1);
    CAPTURE(t);
    CHECK(got[static_cast<std::size_t>(t)] == doctest::Approx(double(h)).epsilon(tolerance<S>));
  }
  CHECK(std::isinf(got[5]));
}

//! The batched step against RecurrentPolicy::act (greedy), over steps with episode restarts.
template <class S, class Device, class Policy>
void check_act(Device& device, Policy policy, Index envs) {
  auto dp = cuda::to_device<S>(device, policy);
  const auto shape = dp.shape();
  policy.set_num_envs(envs);
  cuda::Buffer<S, Device> state(device, shape.state * envs);
  cuda::Buffer<S, Device> obs(device, shape.obs * envs);
  cuda::Buffer<S, Device> keep(device, envs);
  cuda::Buffer<S, Device> head_out(device, shape.actions * envs);
  const Index action_rows = shape.head == cuda::Head::categorical ? 1 : shape.actions;
  cuda::Buffer<S, Device> actions(device, action_rows * envs);
  std::mt19937_64 rng(5);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (int step = 0; step < 6; ++step) {
    Mat<S> x(shape.obs, envs);
    for (Index i = 0; i < x.size(); ++i) x(i) = S(normal(rng));
    Mat<S> k = Mat<S>::Ones(1, envs);
    if (step == 3) {
      for (Index e = 0; e < envs; e += 3) {
        policy.reset(e);
        k(e) = S(0);
      }
    }
    const Mat<S> want = policy.act(x, policy::ActMode::greedy, rng).actions;
    obs.upload(x.data(), x.size());
    keep.upload(k.data(), k.size());
    dp.act(state.data(), obs.data(), keep.data(), envs, nullptr, head_out.data(), actions.data());
    Mat<S> got(action_rows, envs);
    actions.download(got.data(), got.size());
    CAPTURE(step);
    if (shape.head == cuda::Head::categorical) {
      CHECK(got == want);
    } else {
      CHECK(relative_error(values<S>(got), values<S>(want)) <= tolerance<S>);
    }
    Mat<S> h(shape.state, envs);
    state.download(h.data(), h.size());
    CHECK(relative_error(values<S>(h), values<S>(Mat<S>(policy.state()))) <= tolerance<S>);
  }
}

//! Every diag_ssm_gaussian case of the PyTorch references (float64): loss and gradients.
template <class Device>
int check_references(Device& device) {
  int checked = 0;
  for (const auto& file : test::reference_files(test::reference_dir())) {
    const auto c = test::read_json(file);
    if (c.at("model").get<std::string>() != "diag_ssm_gaussian") continue;
    INFO("case: " << file.filename().string());
    const auto& d = c.at("dims");
    auto policy = gaussian_policy<double>(d.at("obs").get<Index>(), d.at("state").get<Index>(),
                                          d.at("hidden").get<Index>(), d.at("actions").get<Index>(), 1);
    auto params = policy.params();
    nn::for_each_parameter(params, [&](std::string_view name, Mat<double>& m) {
      const std::string key(name.substr(name.rfind('.') + 1));
      REQUIRE(c["params"].contains(key));
      m = test::tensor(c["params"][key]);
    });
    policy.set_params(params);
    const auto b = test::batch(c["batch"]);
    const Sequences<double> s{b.batch, b.steps, b.obs, b.actions, b.advantages, Mat<double>(), Mat<double>()};
    const auto got = on_device(device, policy, s);
    CHECK(test::scalar_error(got.loss, c["loss"].get<double>()) <= 1e-9);
    auto dp = cuda::to_device<double>(device, policy);
    std::vector<double> want;
    for (const auto name : dp.names()) {
      const std::string key(name.substr(name.rfind('.') + 1));
      const auto m = test::tensor(c["grads"][key]);
      want.insert(want.end(), m.data(), m.data() + m.size());
    }
    check_gradients(dp, got.gradients, want, 1e-9);
    ++checked;
  }
  return checked;
}

}  // namespace ssmrl::test::cuda_checks
