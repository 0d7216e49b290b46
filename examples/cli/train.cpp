// `ssmrl train`: meta-training and plain configurations share the command and its options.
#include "commands.hpp"

namespace ssmrl::cli {

int run_train(const TrainOptions& options) {
  return is_meta_config(options.config) ? run_train_meta(options) : run_train_plain(options);
}

}  // namespace ssmrl::cli
