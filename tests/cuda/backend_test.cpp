// The CUDA backend's programs. Suite "host": on HostDevice every device program, the device tape and
// the policy step run on the host, so that they are checked on every machine. Suite "gpu" (built with
// ssmrl::cuda): the same checks on a GPU; without a device it reports itself skipped (exit 77).
#define DOCTEST_CONFIG_IMPLEMENT
#include "cuda/checks.hpp"

#include <cstring>
#include <iostream>

#if defined(SSMRL_TEST_GPU)
#include <ssmrl/cuda/backend.hpp>
#endif

using namespace ssmrl;
using namespace ssmrl::test::cuda_checks;

int main(int argc, char** argv) {
  bool gpu_suite = false;
  bool suite_named = false;
  for (int i = 1; i < argc; ++i) {
    gpu_suite = gpu_suite || std::strcmp(argv[i], "--test-suite=gpu") == 0;
    suite_named = suite_named || std::strncmp(argv[i], "--test-suite", 12) == 0 || std::strncmp(argv[i], "-ts", 3) == 0;
  }
  if (gpu_suite) {
#if defined(SSMRL_TEST_GPU)
    std::string why;
    if (cuda::device_count(&why) == 0) {
      std::cout << "SKIPPED: no CUDA device (" << why << "); the GPU checks did not run\n";
      return 77;
    }
#else
    std::cout << "SKIPPED: built without ssmrl::cuda (no CUDA compiler); the GPU checks did not run\n";
    return 77;
#endif
  }
  doctest::Context context(argc, argv);
  if (!suite_named) context.addFilter("test-suite", "host");  // the GPU checks only when asked for
  return context.run();
}

TEST_SUITE_BEGIN("host");

TEST_CASE_TEMPLATE("device tape: loss and gradients equal the CPU backend's, with restarts", S, float, double) {
  cuda::HostDevice device;
  check_against_cpu<S>(device);
}

TEST_CASE_TEMPLATE("device scan: the chunked reset-aware scan equals the sequential one", S, float, double) {
  cuda::HostDevice device;
  check_scan<S>(device);
  check_scan_reset_isolates<S>(device);
}

TEST_CASE_TEMPLATE("device policy step: a batch of environments equals RecurrentPolicy::act", S, float, double) {
  cuda::HostDevice device;
  check_act<S>(device, categorical_policy<S>(4, 16, 24, 3, 3), 37);
  check_act<S>(device, gaussian_policy<S>(3, 8, 12, 2, 4), 29);
}

TEST_CASE("device tape: the PyTorch references of the diagonal SSM") {
  cuda::HostDevice device;
  const int checked = check_references(device);
  MESSAGE("checked " << checked << " diag_ssm_gaussian case(s)");
  CHECK(checked > 0);
}

TEST_CASE("device tape: gradients change nothing they should not, and a second pass reuses the arena") {
  cuda::HostDevice device;
  auto policy = categorical_policy<double>(4, 16, 24, 3, 9);
  const auto s = random_sequences<double>(cuda::shape_of(policy), 5, 40, 1, true);
  auto dp = cuda::to_device<double>(device, policy);
  cuda::Tape<double, cuda::HostDevice> tape(device);
  cuda::Buffer<double, cuda::HostDevice> obs(device, s.obs.size()), actions(device, s.actions.size()),
      weights(device, s.weights.size()), keep(device, s.keep.size());
  obs.upload(s.obs.data(), s.obs.size());
  actions.upload(s.actions.data(), s.actions.size());
  weights.upload(s.weights.data(), s.weights.size());
  keep.upload(s.keep.data(), s.keep.size());
  const cuda::DeviceSequences<double> seq{obs.data(), actions.data(), weights.data(), keep.data(), 5, 40};
  const auto before = dp.parameters_on_host();
  dp.zero_gradients();
  tape.backward(dp.policy_gradient_loss(tape, seq));
  const auto first = dp.gradients_on_host();
  const auto reserved = tape.reserved_bytes();
  tape.clear();
  tape.backward(dp.policy_gradient_loss(tape, seq));
  const auto twice = dp.gradients_on_host();
  CHECK(dp.parameters_on_host() == before);
  CHECK(tape.reserved_bytes() == reserved);
  for (std::size_t i = 0; i < first.size(); ++i) CHECK(twice[i] == doctest::Approx(2 * first[i]).epsilon(1e-12));
}

TEST_CASE("device policy: refusals name the function and the values") {
  cuda::HostDevice device;
  CHECK_THROWS_WITH_AS((cuda::DiagSsmPolicy<float, cuda::HostDevice>(device, {.obs = 2, .state = 0, .hidden = 3, .actions = 2})),
                       doctest::Contains("cuda::DiagSsmPolicy: sizes obs 2, state 0"), InvalidArgument);
  CHECK_THROWS_WITH_AS((cuda::DiagSsmPolicy<float, cuda::HostDevice>(device, {.obs = 2, .state = 4, .hidden = 3, .actions = 1})),
                       doctest::Contains("categorical head needs 2 or more actions, not 1"), InvalidArgument);
  auto dp = cuda::to_device<float>(device, categorical_policy<float>(4, 8, 6, 2, 1));
  const std::vector<float> wrong(3, 0.0f);
  const auto before = dp.parameters_on_host();
  CHECK_THROWS_WITH_AS(dp.set_parameters(wrong), doctest::Contains("cuda::Buffer::upload: 3 numbers for a buffer of"),
                       InvalidArgument);
  CHECK(dp.parameters_on_host() == before);
  // A squashing head and a state-dependent log_std are not what the device runs.
  policy::RecurrentPolicy<nn::DiagSsmCell<float>, policy::GaussianHead<float>> squashed(
      nn::DiagSsmCell<float>({.input = 2, .state = 4, .output = 3}),
      policy::GaussianHead<float>({.input = 3, .actions = 1, .squash = true}), {}, {}, 1);
  CHECK_THROWS_WITH_AS(cuda::shape_of(squashed), doctest::Contains("without squashing"), InvalidArgument);
  policy::RecurrentPolicy<nn::DiagSsmCell<float>, policy::GaussianHead<float, policy::GaussianStd::state_dependent>> dependent(
      nn::DiagSsmCell<float>({.input = 2, .state = 4, .output = 3}),
      policy::GaussianHead<float, policy::GaussianStd::state_dependent>({.input = 3, .actions = 1}), {}, {}, 1);
  CHECK_THROWS_WITH_AS((cuda::to_device<float>(device, dependent)), doctest::Contains("cuda::flatten: parameter 8 is 'head.log_std.W'"),
                       InvalidArgument);
  policy::RecurrentPolicy<nn::DiagSsmCell<float>, policy::CategoricalHead<float>> relu(
      nn::DiagSsmCell<float>({.input = 2, .state = 4, .output = 3, .activation = nn::Activation::relu}),
      policy::CategoricalHead<float>(3, 2), {}, {}, 1);
  CHECK_THROWS_WITH_AS(cuda::shape_of(relu), doctest::Contains("tanh readout with bias"), InvalidArgument);
  cuda::Tape<float, cuda::HostDevice> tape(device);
  const std::vector<float> data(6, 1.0f);
  const auto a = tape.constant(data.data(), 2, 3);
  CHECK_THROWS_WITH_AS(static_cast<void>(tape.matmul(a, a)), doctest::Contains("cuda::Tape::matmul: a is 2x3, b is 2x3"), InvalidArgument);
  CHECK_THROWS_WITH_AS(static_cast<void>(tape.diag_scan(tape.constant(data.data(), 2, 1), a, 2, nullptr)),
                       doctest::Contains("3 columns, not a whole number of steps of batch 2"), InvalidArgument);
  CHECK_THROWS_WITH_AS(static_cast<void>(tape.diag_scan(tape.constant(data.data(), 2, 1), a, 1, nullptr,
                                                        tape.constant(data.data(), 2, 3))),
                       doctest::Contains("cuda::Tape::diag_scan: initial is 2x3, expected 2x1"), InvalidArgument);
}

TEST_SUITE_END();

#if defined(SSMRL_TEST_GPU)
TEST_SUITE_BEGIN("gpu");

TEST_CASE_TEMPLATE("GPU: loss and gradients equal the CPU backend's (1e-5 float, 1e-12 double)", S, float, double) {
  cuda::GpuDevice device;
  MESSAGE("device: " << device.description());
  check_against_cpu<S>(device);
}

TEST_CASE_TEMPLATE("GPU: the reset-aware parallel scan equals the sequential one", S, float, double) {
  cuda::GpuDevice device;
  check_scan<S>(device);
  check_scan_reset_isolates<S>(device);
}

TEST_CASE_TEMPLATE("GPU: the batched policy step equals RecurrentPolicy::act", S, float, double) {
  cuda::GpuDevice device;
  check_act<S>(device, categorical_policy<S>(4, 16, 24, 3, 3), 4096);
  check_act<S>(device, gaussian_policy<S>(3, 8, 12, 2, 4), 4096);
}

TEST_CASE("GPU: the PyTorch references of the diagonal SSM") {
  cuda::GpuDevice device;
  const int checked = check_references(device);
  MESSAGE("checked " << checked << " diag_ssm_gaussian case(s)");
  CHECK(checked > 0);
}

TEST_SUITE_END();
#endif
