// libFuzzer's entry point for all targets in one program, compiled once: the environment variable
// SSMRL_FUZZ_TARGET names the target that a run fuzzes (safetensors, checkpoint, ...).
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fuzz/targets.hpp"

namespace {
int (*chosen)(const std::uint8_t*, std::size_t) = nullptr;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* name = std::getenv("SSMRL_FUZZ_TARGET");
  for (const auto& target : ssmrl::fuzz::targets()) {
    if (name != nullptr && std::strcmp(name, target.name) == 0) chosen = target.run;
  }
  if (chosen == nullptr) {
    std::fprintf(stderr, "fuzz_readers: SSMRL_FUZZ_TARGET is '%s'; set it to one of:", name != nullptr ? name : "");
    for (const auto& target : ssmrl::fuzz::targets()) std::fprintf(stderr, " %s", target.name);
    std::fprintf(stderr, "\n");
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { return chosen(data, size); }
