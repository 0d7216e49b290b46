// `ssmrl eval`: returns of a checkpoint's policy (on the held-out tasks of a meta configuration).
#include <type_traits>

#include "commands.hpp"
#include "configs.hpp"
#include "meta_commands.hpp"
#include "plain_commands.hpp"

namespace ssmrl::cli {

int run_eval(const EvalOptions& options) {
  SSMRL_REQUIRE(options.mc_when.empty() || fs::path(options.mc_when).extension() == ".svg", "ssmrl eval --mc-when: '",
                options.mc_when, "' does not end in .svg");
  const auto metadata = io::read_safetensors(options.checkpoint).metadata;
  const std::string config = metadata_value(metadata, "ssmrl.config", options.checkpoint);
  const bool found = visit_config(config, [&](const auto& c) {
    using C = std::decay_t<decltype(c)>;
    constexpr bool mc_plain = requires { typename C::Policy::registry_type; } && !requires { typename C::Tasks; };
    SSMRL_REQUIRE(options.mc_when.empty() || mc_plain, "ssmrl eval --mc-when: config '", c.name,
                  "' has no MC actions");
    const auto e = evaluate(c, options.checkpoint, metadata, options.episodes, 0, false, options.eval_seed);
    if (options.json) std::printf("%s\n", to_json(e).dump().c_str());
    else print_table(e);
    if constexpr (mc_plain) {
      if (!options.mc_when.empty()) write_mc_when(c, options.checkpoint, options);
    }
  });
  SSMRL_REQUIRE(found, "ssmrl eval: '", options.checkpoint, "' is a checkpoint of config '", config,
                "', which this program does not know; known: ", known_configs());
  return 0;
}

}  // namespace ssmrl::cli
