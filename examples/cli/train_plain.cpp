// `ssmrl train` for plain configurations: policy-gradient training on one environment.
#include <type_traits>

#include "commands.hpp"
#include "configs.hpp"
#include "plain_commands.hpp"

namespace ssmrl::cli {

int run_train_plain(const TrainOptions& options) {
  int status = 0;
  visit_config(options.config, [&](const auto& c) {
    using C = std::decay_t<decltype(c)>;
    if constexpr (!requires { typename C::Tasks; }) status = train(c, options);
  });
  return status;
}

}  // namespace ssmrl::cli
