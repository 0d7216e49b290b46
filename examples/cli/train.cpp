// `ssmrl train`: meta-training and plain configurations share the command and its options.
#include "commands.hpp"
#include "ranks.hpp"

namespace ssmrl::cli {

int run_train(const TrainOptions& options) {
  const bool meta = is_meta_config(options.config);
  SSMRL_REQUIRE(meta || ranks().size() == 1, "ssmrl train: config '", options.config, "' trains one policy on one ",
                "environment; only meta-training configs share their tasks over MPI ranks (run it without mpirun)");
  return meta ? run_train_meta(options) : run_train_plain(options);
}

}  // namespace ssmrl::cli
