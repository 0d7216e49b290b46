// Command-line arguments: `--name value` options and `--flag` switches, each checked against the
// ones a subcommand accepts.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include <ssmrl/core/error.hpp>

namespace ssmrl::cli {

class Arguments {
public:
  //! `argv[first..argc)`; `options` take a value, `flags` do not.
  Arguments(int argc, char** argv, int first, const std::set<std::string>& options, const std::set<std::string>& flags) {
    for (int i = first; i < argc; ++i) {
      const std::string arg = argv[i];
      SSMRL_REQUIRE(arg.rfind("--", 0) == 0, "ssmrl: unexpected argument '", arg, "'");
      const std::string name = arg.substr(2);
      if (flags.count(name) == 1) {
        flags_.insert(name);
      } else if (options.count(name) == 1) {
        SSMRL_REQUIRE(i + 1 < argc, "ssmrl: --", name, " needs a value");
        values_[name] = argv[++i];
      } else {
        std::string known;
        for (const auto& o : options) known += " --" + o;
        for (const auto& f : flags) known += " --" + f;
        SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message("ssmrl: unknown option '", arg,
                                                                       "'; this command takes:", known));
      }
    }
  }

  [[nodiscard]] bool has(const std::string& name) const { return values_.count(name) == 1 || flags_.count(name) == 1; }
  [[nodiscard]] bool flag(const std::string& name) const { return flags_.count(name) == 1; }
  [[nodiscard]] std::string text(const std::string& name, const std::string& fallback = "") const {
    const auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  [[nodiscard]] long integer(const std::string& name, long fallback, long min = 0) const {
    const auto it = values_.find(name);
    if (it == values_.end()) return fallback;
    std::size_t used = 0;
    long v = 0;
    try {
      v = std::stol(it->second, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    SSMRL_REQUIRE(used == it->second.size() && v >= min, "ssmrl: --", name, " '", it->second,
                  "' is not an integer of at least ", min);
    return v;
  }

  //! --ckpt-dir, or runs/CONFIG[-first-order]-seedS.
  [[nodiscard]] std::string run_directory(const std::string& config) const {
    return text("ckpt-dir", "runs/" + config + (flag("first-order") ? "-first-order" : "") + "-seed" +
                                std::to_string(integer("seed", 1)));
  }

private:
  std::map<std::string, std::string> values_;
  std::set<std::string> flags_;
};

}  // namespace ssmrl::cli
