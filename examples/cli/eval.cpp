// `ssmrl eval`: returns of a checkpoint's policy (on the held-out tasks of a meta configuration).
#include "commands.hpp"
#include "configs.hpp"
#include "meta_commands.hpp"
#include "plain_commands.hpp"

namespace ssmrl::cli {

int run_eval(const EvalOptions& options) {
  const auto metadata = io::read_safetensors(options.checkpoint).metadata;
  const std::string config = metadata_value(metadata, "ssmrl.config", options.checkpoint);
  const bool found = visit_config(config, [&](const auto& c) {
    const auto e = evaluate(c, options.checkpoint, metadata, options.episodes, 0, false, options.eval_seed);
    if (options.json) std::printf("%s\n", to_json(e).dump().c_str());
    else print_table(e);
  });
  SSMRL_REQUIRE(found, "ssmrl eval: '", options.checkpoint, "' is a checkpoint of config '", config,
                "', which this program does not know; known: ", known_configs());
  return 0;
}

}  // namespace ssmrl::cli
