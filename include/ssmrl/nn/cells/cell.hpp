// The Cell concept: a recurrent cell that steps a batch without a tape (inference) and records a
// whole sequence on a tape (training), with parameters given as variables so that MAML can pass
// adapted ones.
#pragma once

#include <array>
#include <concepts>
#include <utility>
#include <cstdint>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/core/backend.hpp"
#include "ssmrl/nn/init.hpp"
#include "ssmrl/nn/parameters.hpp"

namespace ssmrl::nn {

//! How a training sequence starts and where it restarts.
template <class Scalar>
struct SequenceOptions {
  //! state_size x batch; zero when empty.
  ad::Var<Scalar> initial_state{};
  //! 1 x (T * batch) or null: keep[t * batch + b] = 0 resets sample b's state before step t (an
  //! episode that ended at t - 1), 1 keeps it.
  const Scalar* keep = nullptr;
  //! Where not null, receives the state after the last step (state_size x batch): a caller that
  //! walks a sequence step by step (the MC policy's replay) continues from it.
  ad::Var<Scalar>* final_state = nullptr;
};

//! Opt-in: a type is a Cell only when it says so, as well as having the members.
template <class C>
inline constexpr bool enable_cell = false;

//! A Cell is a configuration and the behaviour on it; its parameters are a separate plain struct.
//!  - `scalar_type`, `backend_type` (a Backend), `template <class T> params_type` (a parameter
//!    struct over matrices or tape variables), `workspace_type`;
//!  - `input_size()`, `state_size()`, `output_size()`;
//!  - `init_params(rng)` and `check_shapes(params)` (throws ssmrl::InvalidArgument);
//!  - `make_workspace(batch)` and `step(params, state, input, output, workspace)`: one inference step
//!    of a batch, state (state_size x batch) updated in place, no tape and no allocation;
//!  - `forward_sequence(params_on_tape, inputs, batch, options)`: outputs (output_size x T*batch)
//!    of whole sequences, recorded on the tape of `inputs`;
//!  - `enable_cell<C>` true.
template <class C>
concept Cell = enable_cell<C> && Backend<typename C::backend_type> &&
    requires(const C& cell, typename C::workspace_type& ws, init::Rng& rng,
             const typename C::template params_type<ad::Matrix<typename C::scalar_type>>& params,
             Eigen::Ref<ad::Matrix<typename C::scalar_type>> state,
             Eigen::Ref<const ad::Matrix<typename C::scalar_type>> input,
             Eigen::Ref<ad::Matrix<typename C::scalar_type>> output,
             const typename C::template params_type<ad::Var<typename C::scalar_type>>& vars,
             const ad::Var<typename C::scalar_type>& inputs, ad::Index batch,
             const SequenceOptions<typename C::scalar_type>& options) {
      { cell.input_size() } -> std::same_as<ad::Index>;
      { cell.state_size() } -> std::same_as<ad::Index>;
      { cell.output_size() } -> std::same_as<ad::Index>;
      { cell.init_params(rng) } -> std::same_as<typename C::template params_type<ad::Matrix<typename C::scalar_type>>>;
      cell.check_shapes(params);
      { cell.make_workspace(batch) } -> std::same_as<typename C::workspace_type>;
      cell.step(params, state, input, output, ws);
      { cell.forward_sequence(vars, inputs, batch, options) } -> std::same_as<ad::Var<typename C::scalar_type>>;
    };

namespace detail {

//! What the state space cells share: their types, the configuration (with input, state and output
//! sizes) and its accessors. A cell derives from it and adds `using Base::config_;`.
template <class Scalar, class BackendT, template <class> class ParamsT, class ConfigT>
class SsmCellBase {
public:
  using scalar_type = Scalar;
  using backend_type = BackendT;
  template <class T>
  using params_type = ParamsT<T>;
  using Params = ParamsT<ad::Matrix<Scalar>>;
  using config_type = ConfigT;

  [[nodiscard]] ad::Index input_size() const noexcept { return config_.input; }
  [[nodiscard]] ad::Index state_size() const noexcept { return config_.state; }
  [[nodiscard]] ad::Index output_size() const noexcept { return config_.output; }
  [[nodiscard]] const ConfigT& config() const noexcept { return config_; }

protected:
  explicit SsmCellBase(const ConfigT& config) : config_(config) {}
  ConfigT config_;
};

template <class Scalar>
void check_sequence(const char* cell, const ad::Var<Scalar>& inputs, ad::Index input_size, ad::Index batch,
                    const SequenceOptions<Scalar>& options, ad::Index state_size) {
  SSMRL_REQUIRE(inputs.rows() == input_size, cell, "::forward_sequence: inputs have ", inputs.rows(),
                " rows, the cell expects ", input_size, " (input_size)");
  SSMRL_REQUIRE(batch > 0 && inputs.cols() > 0 && inputs.cols() % batch == 0, cell, "::forward_sequence: inputs have ",
                inputs.cols(), " columns, not a whole number of steps of batch ", batch);
  if (options.initial_state.valid()) {
    SSMRL_REQUIRE(options.initial_state.rows() == state_size && options.initial_state.cols() == batch, cell,
                  "::forward_sequence: initial_state is ", options.initial_state.rows(), "x",
                  options.initial_state.cols(), ", expected ", state_size, "x", batch);
  }
}

// Throws unless each parameter, in declaration order, has the expected rows x cols.
template <class Scalar, class P, std::size_t N>
void check_parameter_shapes(const char* cell, const P& params,
                            const std::array<std::pair<ad::Index, ad::Index>, N>& expected) {
  std::size_t i = 0;
  for_each_parameter(params, [&](std::string_view name, const ad::Matrix<Scalar>& m) {
    SSMRL_REQUIRE(i < N && m.rows() == expected[i].first && m.cols() == expected[i].second, cell, ": parameter ",
                  name, " is ", m.rows(), "x", m.cols(), ", expected ", i < N ? expected[i].first : 0, "x",
                  i < N ? expected[i].second : 0);
    ++i;
  });
}

// The previous state as step t sees it: multiplied by the keep mask when a sample restarts there.
template <class Scalar>
ad::Var<Scalar> kept_state(const ad::Var<Scalar>& state, const Scalar* keep, ad::Index t, ad::Index batch) {
  if (keep == nullptr) return state;
  const Scalar* k = keep + t * batch;
  bool all_kept = true;
  for (ad::Index b = 0; b < batch; ++b) all_kept = all_kept && k[b] == Scalar(1);
  if (all_kept) return state;
  return ad::mul(state, state.tape().constant(Eigen::Map<const ad::Matrix<Scalar>>(k, 1, batch)));
}

// A list of per-step variables that lives on the tape, so a training loop allocates nothing.
template <class Scalar>
class StepList {
public:
  StepList(ad::Tape<Scalar>& tape, ad::Index steps)
      : items_(tape.template allocate_array<ad::Var<Scalar>>(static_cast<std::size_t>(steps))) {}
  void set(ad::Index t, const ad::Var<Scalar>& v) { new (&items_[t]) ad::Var<Scalar>(v); }
  [[nodiscard]] std::span<const ad::Var<Scalar>> span(ad::Index steps) const {
    return {items_, static_cast<std::size_t>(steps)};
  }

private:
  ad::Var<Scalar>* items_;
};

}  // namespace detail

}  // namespace ssmrl::nn
