// `ssmrl train` for meta-training configurations, then an evaluation on the held-out tasks.
#include <cstdio>
#include <type_traits>

#include "commands.hpp"
#include "configs.hpp"
#include "meta_commands.hpp"
#include "ranks.hpp"

namespace ssmrl::cli {

int run_train_meta(const TrainOptions& options) {
  int status = 0;
  visit_config(options.config, [&](const auto& c) {
    using C = std::decay_t<decltype(c)>;
    if constexpr (requires { typename C::Tasks; }) {
      status = train(c, options);
      if (status == 0 && !options.no_eval && ranks().writer()) {
        const fs::path dir = options.run_directory();
        const fs::path latest = dir / "latest.safetensors";
        std::printf("\nevaluation of the final policy on the held-out tasks:\n");
        print_table(evaluate(c, latest, io::read_safetensors(latest).metadata, 20, 3, false, 12345));
        std::printf("plot %s\n", (dir / "train.svg").string().c_str());
      }
    }
  });
  return status;
}

}  // namespace ssmrl::cli
