// libFuzzer's entry point for one target, chosen at compile time (SSMRL_FUZZ_TARGET).
#include "fuzz/targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return ssmrl::fuzz::SSMRL_FUZZ_TARGET(data, size);
}
