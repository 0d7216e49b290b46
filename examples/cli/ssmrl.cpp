// The ssmrl command line: meta-train a policy on a named configuration, evaluate a checkpoint on
// held-out tasks, and adapt it with policy-gradient steps.
//
//   ssmrl train --config NAME [--seed S] [--outer-steps N] [--tasks-per-batch N] [--ckpt-dir DIR]
//               [--resume] [--first-order] [--save-every N] [--threads N] [--no-eval] [--quiet]
//   ssmrl eval  --checkpoint FILE [--episodes N] [--json]
//   ssmrl adapt --checkpoint FILE [--episodes N] [--adapt-steps K] [--online] [--json]
//               [--strategy none|entropy|policy_gradient|hybrid|all] [--lr LR] [--steps-per-call N] [--no-guards]
//   ssmrl configs
#include <cstdio>
#include <exception>
#include <string>
#include <type_traits>

#include "arguments.hpp"
#include "configs.hpp"
#include "console.hpp"
#include "adapt_commands.hpp"
#include "meta_commands.hpp"
#include "plain_commands.hpp"

using namespace ssmrl;
using namespace ssmrl::cli;

namespace {

constexpr const char* usage =
    "usage:\n"
    "  ssmrl train --config NAME [--seed S] [--outer-steps N] [--tasks-per-batch N] [--ckpt-dir DIR]\n"
    "              [--resume] [--first-order] [--save-every N] [--threads N] [--no-eval] [--quiet]\n"
    "  ssmrl eval  --checkpoint FILE [--episodes N] [--json]\n"
    "  ssmrl adapt --checkpoint FILE [--episodes N] [--adapt-steps K] [--online] [--json]\n"
    "              [--strategy none|entropy|policy_gradient|hybrid|all] [--lr LR] [--steps-per-call N] [--no-guards]\n"
    "  ssmrl configs\n";

std::string known_configs() {
  std::string s;
  for (const auto& n : config_names()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

template <class F>
void with_config(const std::string& name, F&& f) {
  SSMRL_REQUIRE(visit_config(name, f), "ssmrl: unknown config '", name, "'; known: ", known_configs());
}

void report(const Evaluation& e, bool json) {
  if (json) std::printf("%s\n", to_json(e).dump().c_str());
  else print_table(e);
}

// eval is adapt with no steps.
int evaluate_command(const Arguments& args, long default_steps) {
  const std::string path = args.text("checkpoint");
  SSMRL_REQUIRE(!path.empty(), "ssmrl: --checkpoint is required");
  const auto metadata = io::read_safetensors(path).metadata;
  const std::string config = metadata_value(metadata, "ssmrl.config", path);
  if (args.has("strategy")) {
    int status = 0;
    with_config(config, [&](const auto& c) { status = adapt_strategies(c, path, metadata, args); });
    return status;
  }
  const long episodes = args.integer("episodes", 0, 1);  // 0: the configuration's default
  const long steps = args.integer("adapt-steps", default_steps, 0);
  with_config(config, [&](const auto& c) { report(evaluate(c, path, metadata, episodes, steps, args.flag("online")), args.flag("json")); });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(usage, stderr);
    return 2;
  }
  const std::string command = argv[1];
  try {
    if (command == "train") {
      const Arguments args(argc, argv, 2, {"config", "seed", "outer-steps", "tasks-per-batch", "ckpt-dir", "save-every", "threads"},
                           {"resume", "first-order", "no-eval", "quiet"});
      SSMRL_REQUIRE(args.has("config"), "ssmrl train: --config is required; known: ", known_configs());
      int status = 0;
      with_config(args.text("config"), [&](const auto& c) {
        status = train(c, args);
        using C = std::decay_t<decltype(c)>;
        if constexpr (requires { typename C::Tasks; }) {
          if (status == 0 && !args.flag("no-eval")) {
            const fs::path dir = args.run_directory(c.name);
            const fs::path latest = dir / "latest.safetensors";
            std::printf("\nevaluation of the final policy on the held-out tasks:\n");
            print_table(evaluate(c, latest, io::read_safetensors(latest).metadata, 20, 3, false));
            std::printf("plot %s\n", (dir / "train.svg").string().c_str());
          }
        }
      });
      return status;
    }
    if (command == "eval") return evaluate_command(Arguments(argc, argv, 2, {"checkpoint", "episodes"}, {"json"}), 0);
    if (command == "adapt") {
      return evaluate_command(
          Arguments(argc, argv, 2, {"checkpoint", "episodes", "adapt-steps", "strategy", "lr", "steps-per-call"}, {"online", "json", "no-guards"}), 3);
    }
    if (command == "configs") {
      for (const auto& n : config_names()) {
        visit_config(n, [](const auto& c) { std::printf("%-26s %s (%ld meta-iterations)\n", c.name.c_str(), c.summary.c_str(), c.outer_steps); });
      }
      return 0;
    }
    if (command == "--help" || command == "help") {
      std::fputs(usage, stdout);
      return 0;
    }
    std::fprintf(stderr, "ssmrl: unknown command '%s'\n%s", command.c_str(), usage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
