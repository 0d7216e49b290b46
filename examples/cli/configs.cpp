// `ssmrl configs`, and what the other commands ask of the configurations without training anything.
#include <cstdio>
#include <type_traits>

#include "commands.hpp"
#include "configs.hpp"

namespace ssmrl::cli {

int run_configs() {
  for (const auto& n : config_names()) {
    visit_config(n, [](const auto& c) {
      using C = std::decay_t<decltype(c)>;
      constexpr bool meta = requires { typename C::Tasks; };
      std::printf("%-26s %s (%ld %s)\n", c.name.c_str(), c.summary.c_str(), c.outer_steps,
                  meta ? "meta-iterations" : "updates at most");
    });
  }
  return 0;
}

bool is_meta_config(const std::string& name) {
  bool meta = false;
  const bool found = visit_config(name, [&](const auto& c) {
    using C = std::decay_t<decltype(c)>;
    meta = requires { typename C::Tasks; };
  });
  SSMRL_REQUIRE(found, "ssmrl train: unknown config '", name, "'; known: ", known_configs());
  return meta;
}

}  // namespace ssmrl::cli
