// Environments by name, for command lines and configuration files: a type-erased AnyEnv over every
// registered environment, built from its Gymnasium id.
//
// What AnyEnv is for: stepping an environment chosen by a string (inspection, random or scripted
// rollouts, recording traces, a tool that lists what is installed). EnvBatch, rl::Trainer and
// meta::MetaTrainer take the concrete type, whose sizes are compile-time constants: to train on an
// environment named at run time, map the name to its type in your program, as the command line's
// configurations do.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ssmrl/env/classic_control.hpp"
#include "ssmrl/env/navigation.hpp"

namespace ssmrl::env {

//! Any environment behind one interface. The state is not exposed: use the concrete type for that.
class AnyEnv {
public:
  virtual ~AnyEnv() = default;
  [[nodiscard]] virtual std::string_view id() const = 0;
  [[nodiscard]] virtual Space observation_space() const = 0;
  [[nodiscard]] virtual Space action_space() const = 0;
  [[nodiscard]] virtual std::size_t observation_size() const = 0;
  [[nodiscard]] virtual std::size_t action_size() const = 0;
  [[nodiscard]] virtual int max_episode_steps() const = 0;
  virtual void reset(std::mt19937_64& rng) = 0;
  virtual StepResult step(std::span<const float> action) = 0;
  virtual void observe(std::span<float> out) const = 0;
  [[nodiscard]] virtual bool needs_reset() const = 0;
  [[nodiscard]] virtual int elapsed_steps() const = 0;
};

template <Environment Env>
class AnyEnvOf final : public AnyEnv {
public:
  explicit AnyEnvOf(Env env) : env_(std::move(env)) {}
  [[nodiscard]] std::string_view id() const override { return env_.id(); }
  [[nodiscard]] Space observation_space() const override { return env_.observation_space(); }
  [[nodiscard]] Space action_space() const override { return env_.action_space(); }
  [[nodiscard]] std::size_t observation_size() const override { return Env::observation_size; }
  [[nodiscard]] std::size_t action_size() const override { return Env::action_size; }
  [[nodiscard]] int max_episode_steps() const override { return env_.max_episode_steps(); }
  void reset(std::mt19937_64& rng) override { env_.reset(rng); }
  StepResult step(std::span<const float> action) override { return env_.step(action); }
  void observe(std::span<float> out) const override { env_.observe(out); }
  [[nodiscard]] bool needs_reset() const override { return env_.needs_reset(); }
  [[nodiscard]] int elapsed_steps() const override { return env_.elapsed_steps(); }
  [[nodiscard]] Env& get() { return env_; }

private:
  Env env_;
};

//! A registry: a name to a factory, holding `Builtins` under their own id() from the start; add()
//! registers more (a later registration of a name replaces the earlier one). env::Registry is the
//! one with the classic-control ids and "Navigation2D". A registry is an object (build one to keep
//! additions local) with a process-wide instance() behind make() and add_env(), as
//! adapt::StrategyRegistry is. It is a template so that a file that never looks an environment up
//! by name does not compile the factories.
template <Environment... Builtins>
class RegistryOf {
public:
  using Factory = std::function<std::unique_ptr<AnyEnv>()>;

  RegistryOf() { (add_type<Builtins>(std::string(Builtins{}.id())), ...); }
  //! Registers `Env` under `id`, built by `factory`.
  template <Environment Env>
  void add_type(const std::string& id, std::function<Env()> factory = [] { return Env{}; }) {
    add(id, [f = std::move(factory)] { return std::make_unique<AnyEnvOf<Env>>(f()); });
  }

  static RegistryOf& instance() {
    static RegistryOf registry;
    return registry;
  }
  void add(const std::string& id, Factory factory) {
    SSMRL_REQUIRE(!id.empty() && factory, "env::Registry::add: an id and a factory are needed");
    factories_[id] = std::move(factory);
  }
  [[nodiscard]] std::unique_ptr<AnyEnv> make(const std::string& id) const {
    const auto it = factories_.find(id);
    if (it == factories_.end()) {
      std::string known;
      for (const auto& [name, f] : factories_) known += (known.empty() ? "" : ", ") + name;
      SSMRL_THROW(::ssmrl::InvalidArgument,
                  ::ssmrl::detail::message("env::make: unknown environment '", id, "'; known: ", known));
    }
    return it->second();
  }
  [[nodiscard]] std::vector<std::string> ids() const {
    std::vector<std::string> out;
    for (const auto& [name, f] : factories_) out.push_back(name);
    return out;
  }

private:
  std::map<std::string, Factory> factories_;
};

//! The registry of the built-in environments.
using Registry = RegistryOf<CartPole, Pendulum, MountainCar, MountainCarContinuous, Acrobot, Navigation2D>;

//! An environment by id ("CartPole-v1") from `R::instance()`; an unknown id throws, listing the
//! known ones.
template <class R = Registry>
std::unique_ptr<AnyEnv> make(const std::string& id) {
  return R::instance().make(id);
}
//! Registers a user environment type under `id` in `R::instance()`.
template <Environment Env, class R = Registry>
void add_env(const std::string& id, std::function<Env()> factory) {
  R::instance().template add_type<Env>(id, std::move(factory));
}
//! The ids `R::instance()` knows.
template <class R = Registry>
std::vector<std::string> registered_ids() {
  return R::instance().ids();
}

}  // namespace ssmrl::env
