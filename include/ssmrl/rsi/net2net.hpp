// Function-preserving growth in the manner of Net2Net (Chen, Goodfellow and Shlens, 2016): a layer
// of n units becomes one of m >= n, unit j a copy of unit source(j); what the layer feeds reads each
// copy with its weight divided by the number of copies, so that the grown network computes what the
// original did. For recurrent and SSM cells the recurrent matrices take the same map on their rows
// and their columns. A LayerNorm over the grown units is not preserved (its mean and variance
// change with the copies). The same map also shrinks (Widening::keep): the kept units keep their
// weights, readers drop the others' columns, and the function is not preserved.
#pragma once

#include <algorithm>
#include <cstddef>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

#include "ssmrl/autodiff.hpp"
#include "ssmrl/core/error.hpp"
#include "ssmrl/nn/cells/diag_ssm.hpp"
#include "ssmrl/nn/cells/gru.hpp"
#include "ssmrl/nn/cells/mlp.hpp"
#include "ssmrl/nn/linear.hpp"

namespace ssmrl::rsi {

//! The map of a widening from `from` units to `to`: unit j of the new layer copies unit source(j)
//! of the old; the first `from` are the old units themselves.
class Widening {
public:
  //! The old units, then `to - from` copies of old units drawn uniformly with `rng`.
  template <class Rng>
  static Widening draw(ad::Index from, ad::Index to, Rng& rng) {
    SSMRL_REQUIRE(from > 0 && to >= from, "rsi::Widening::draw: from ", from, " and to ", to,
                  " must satisfy 0 < from <= to (growth only)");
    std::vector<ad::Index> source(static_cast<std::size_t>(to));
    for (ad::Index j = 0; j < from; ++j) source[static_cast<std::size_t>(j)] = j;
    std::uniform_int_distribution<ad::Index> pick(0, from - 1);
    for (ad::Index j = from; j < to; ++j) source[static_cast<std::size_t>(j)] = pick(rng);
    return Widening(from, std::move(source));
  }
  //! An explicit map: `source` has the new size, starts with 0 .. from - 1, and names old units only.
  Widening(ad::Index from, std::vector<ad::Index> source) : from_(from), source_(std::move(source)) {
    const auto to = static_cast<ad::Index>(source_.size());
    SSMRL_REQUIRE(from > 0 && to >= from, "rsi::Widening: from ", from, " and ", to,
                  " new units must satisfy 0 < from <= to");
    copies_.assign(static_cast<std::size_t>(from), 0);
    for (ad::Index j = 0; j < to; ++j) {
      const auto s = source_[static_cast<std::size_t>(j)];
      SSMRL_REQUIRE(s >= 0 && s < from && (j >= from || s == j), "rsi::Widening: new unit ", j, " copies ", s,
                    "; the first ", from, " must be the old units in order and the rest old units");
      ++copies_[static_cast<std::size_t>(s)];
    }
  }
  //! A shrinking map: the new layer keeps old units `kept` (increasing, at least one, fewer than
  //! `from`); its readers drop the columns of the rest. Not function-preserving.
  static Widening keep(ad::Index from, std::vector<ad::Index> kept) {
    SSMRL_REQUIRE(!kept.empty() && static_cast<ad::Index>(kept.size()) < from, "rsi::Widening::keep: ", kept.size(),
                  " units kept of ", from, "; keep at least one and fewer than all");
    for (std::size_t j = 0; j < kept.size(); ++j) {
      SSMRL_REQUIRE(kept[j] >= 0 && kept[j] < from && (j == 0 || kept[j] > kept[j - 1]),
                    "rsi::Widening::keep: kept unit ", kept[j], " at ", j, " is not an old unit (0 to ", from - 1,
                    ") after the previous one");
    }
    Widening w;
    w.from_ = from;
    w.source_ = std::move(kept);
    w.copies_.assign(static_cast<std::size_t>(from), 0);
    for (const auto s : w.source_) w.copies_[static_cast<std::size_t>(s)] = 1;
    return w;
  }
  //! The `to` units of `from` whose reading columns of `reader` (out x from) have the largest norms,
  //! in increasing order: what a shrink keeps.
  template <class Scalar>
  static Widening keep_strongest(const ad::Matrix<Scalar>& reader, ad::Index to) {
    const ad::Index from = reader.cols();
    SSMRL_REQUIRE(to >= 1 && to < from, "rsi::Widening::keep_strongest: ", to, " of ", from,
                  " units; keep at least one and fewer than all");
    std::vector<ad::Index> order(static_cast<std::size_t>(from));
    for (ad::Index j = 0; j < from; ++j) order[static_cast<std::size_t>(j)] = j;
    std::stable_sort(order.begin(), order.end(), [&](ad::Index a, ad::Index b) {
      return reader.col(a).squaredNorm() > reader.col(b).squaredNorm();
    });
    order.resize(static_cast<std::size_t>(to));
    std::sort(order.begin(), order.end());
    return keep(from, std::move(order));
  }
  [[nodiscard]] bool shrinks() const noexcept { return to() < from_; }
  [[nodiscard]] ad::Index from() const noexcept { return from_; }
  [[nodiscard]] ad::Index to() const noexcept { return static_cast<ad::Index>(source_.size()); }
  [[nodiscard]] ad::Index source(ad::Index j) const { return source_.at(static_cast<std::size_t>(j)); }
  //! How many new units copy old unit i (1 for a unit not copied).
  [[nodiscard]] int copies(ad::Index i) const { return copies_.at(static_cast<std::size_t>(i)); }

  //! Rows of `m` copied by the map, in `blocks` consecutive blocks of `from` rows each (the gate
  //! blocks of a GRU or LSTM): what a grown layer computes.
  template <class Scalar>
  [[nodiscard]] ad::Matrix<Scalar> copy_rows(const ad::Matrix<Scalar>& m, ad::Index blocks = 1) const {
    SSMRL_REQUIRE(blocks > 0 && m.rows() == blocks * from_, "rsi::Widening::copy_rows: ", m.rows(),
                  " rows are not ", blocks, " blocks of ", from_, " units");
    ad::Matrix<Scalar> out(blocks * to(), m.cols());
    for (ad::Index b = 0; b < blocks; ++b)
      for (ad::Index j = 0; j < to(); ++j) out.row(b * to() + j) = m.row(b * from_ + source(j));
    return out;
  }
  //! Columns of `m` (a consumer of the grown units) copied by the map and divided by the number of
  //! copies, so that the consumer sums to what it did.
  template <class Scalar>
  [[nodiscard]] ad::Matrix<Scalar> split_cols(const ad::Matrix<Scalar>& m) const {
    SSMRL_REQUIRE(m.cols() == from_, "rsi::Widening::split_cols: ", m.cols(), " columns, not the ", from_,
                  " units grown");
    ad::Matrix<Scalar> out(m.rows(), to());
    for (ad::Index j = 0; j < to(); ++j) {
      out.col(j) = m.col(source(j)) / static_cast<Scalar>(copies(source(j)));
    }
    return out;
  }

private:
  Widening() = default;
  ad::Index from_ = 0;
  std::vector<ad::Index> source_;
  std::vector<int> copies_;
};

//! A cell and its parameters after growth.
template <class CellT>
struct Grown {
  CellT cell;
  typename CellT::Params params;
};

//! A consumer of grown features (a policy head, a value head, the next layer): its inputs widened.
template <class Scalar>
[[nodiscard]] nn::LinearParams<ad::Matrix<Scalar>> widen_input(const nn::LinearParams<ad::Matrix<Scalar>>& p,
                                                              const Widening& w) {
  return {w.split_cols(p.W), p.b};
}

//! A GRU or LSTM with its hidden units widened: the gate rows of every weight and bias copied, the
//! recurrent weights' columns split. Its state (h, and c for the LSTM) grows by copy_rows of the same
//! map; its output (h) feeds consumers through widen_input.
template <template <class, class> class RnnCell, class Scalar, class B>
  requires std::is_base_of_v<nn::detail::TorchRnnCell<Scalar, RnnCell<Scalar, B>>, RnnCell<Scalar, B>>
[[nodiscard]] Grown<RnnCell<Scalar, B>> widen_hidden(const RnnCell<Scalar, B>& cell,
                                                     const typename RnnCell<Scalar, B>::Params& p,
                                                     const Widening& w) {
  using Cell = RnnCell<Scalar, B>;
  cell.check_shapes(p);
  SSMRL_REQUIRE(w.from() == cell.config().hidden, "rsi::widen_hidden: the widening is from ", w.from(),
                " units, the ", Cell::cell_name, " has ", cell.config().hidden);
  constexpr ad::Index gates = Cell::gates;
  typename Cell::Params grown;
  grown.weight_ih = w.copy_rows(p.weight_ih, gates);
  grown.weight_hh = w.split_cols(w.copy_rows(p.weight_hh, gates));
  grown.bias_ih = w.copy_rows(p.bias_ih, gates);
  grown.bias_hh = w.copy_rows(p.bias_hh, gates);
  return {Cell({.input = cell.config().input, .hidden = w.to()}), std::move(grown)};
}

//! A diagonal SSM with its state widened: each copied state keeps its decay, step and input row;
//! the readout C splits its columns. Its output is unchanged.
template <class Scalar, class B>
[[nodiscard]] Grown<nn::DiagSsmCell<Scalar, B>> widen_state(const nn::DiagSsmCell<Scalar, B>& cell,
                                                           const typename nn::DiagSsmCell<Scalar, B>::Params& p,
                                                           const Widening& w) {
  cell.check_shapes(p);
  SSMRL_REQUIRE(w.from() == cell.config().state, "rsi::widen_state: the widening is from ", w.from(),
                " states, the DiagSsmCell has ", cell.config().state);
  auto grown = p;
  grown.log_a = w.copy_rows(p.log_a);
  grown.log_dt = w.copy_rows(p.log_dt);
  grown.B = w.copy_rows(p.B);
  grown.C = w.split_cols(p.C);
  auto config = cell.config();
  config.state = w.to();
  return {nn::DiagSsmCell<Scalar, B>(config), std::move(grown)};
}

//! A diagonal SSM with its output widened (rows of C, D and c copied); consumers take widen_input.
template <class Scalar, class B>
[[nodiscard]] Grown<nn::DiagSsmCell<Scalar, B>> widen_output(const nn::DiagSsmCell<Scalar, B>& cell,
                                                            const typename nn::DiagSsmCell<Scalar, B>::Params& p,
                                                            const Widening& w) {
  cell.check_shapes(p);
  SSMRL_REQUIRE(w.from() == cell.config().output, "rsi::widen_output: the widening is from ", w.from(),
                " outputs, the DiagSsmCell has ", cell.config().output);
  auto grown = p;
  grown.C = w.copy_rows(p.C);
  grown.D = w.copy_rows(p.D);
  grown.c = w.copy_rows(p.c);
  auto config = cell.config();
  config.output = w.to();
  return {nn::DiagSsmCell<Scalar, B>(config), std::move(grown)};
}

//! An MLP cell with hidden layer `layer` widened; the next layer reads it split. Widening the last
//! layer widens the cell's output, whose consumers take widen_input.
template <class Scalar, class B>
[[nodiscard]] Grown<nn::MlpCell<Scalar, B>> widen_layer(const nn::MlpCell<Scalar, B>& cell,
                                                       const typename nn::MlpCell<Scalar, B>::Params& p,
                                                       std::size_t layer, const Widening& w) {
  cell.check_shapes(p);
  const auto& hidden = cell.config().hidden;
  SSMRL_REQUIRE(layer < hidden.size(), "rsi::widen_layer: layer ", layer, " of ", hidden.size(),
                " layers does not exist");
  SSMRL_REQUIRE(w.from() == hidden[layer], "rsi::widen_layer: layer ", layer, " has ", hidden[layer],
                " units; the widening is from ", w.from());
  auto grown = p;
  grown.layers[layer].W = w.copy_rows(p.layers[layer].W);
  grown.layers[layer].b = w.copy_rows(p.layers[layer].b);
  if (layer + 1 < hidden.size()) grown.layers[layer + 1].W = w.split_cols(p.layers[layer + 1].W);
  auto config = cell.config();
  config.hidden[layer] = w.to();
  return {nn::MlpCell<Scalar, B>(config), std::move(grown)};
}

}  // namespace ssmrl::rsi
