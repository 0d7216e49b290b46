// `ssmrl adapt`: a meta-trained checkpoint's returns after policy-gradient steps on each held-out
// task, or (--strategy) a checkpoint deployed on shifted dynamics and adapted at test time.
#include "adapt_commands.hpp"
#include "commands.hpp"
#include "configs.hpp"
#include "meta_commands.hpp"
#include "plain_commands.hpp"

namespace ssmrl::cli {

int run_adapt(const EvalOptions& options) {
  const auto metadata = io::read_safetensors(options.checkpoint).metadata;
  const std::string config = metadata_value(metadata, "ssmrl.config", options.checkpoint);
  int status = 0;
  const bool found = visit_config(config, [&](const auto& c) {
    if (!options.strategy.empty()) {
      status = adapt_strategies(c, options.checkpoint, metadata, options);
      return;
    }
    const long steps = options.given.count("adapt-steps") == 1 ? options.adapt_steps : 3;
    const auto e = evaluate(c, options.checkpoint, metadata, options.episodes, steps, options.online, options.eval_seed);
    if (options.json) std::printf("%s\n", to_json(e).dump().c_str());
    else print_table(e);
  });
  SSMRL_REQUIRE(found, "ssmrl adapt: '", options.checkpoint, "' is a checkpoint of config '", config,
                "', which this program does not know; known: ", known_configs());
  return status;
}

}  // namespace ssmrl::cli
