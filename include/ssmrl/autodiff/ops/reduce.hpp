// Sums and means: of all entries, of each row (rowwise) and of each column (colwise).
#pragma once

#include "ssmrl/autodiff/ops/basic.hpp"

namespace ssmrl::ad {

//! Sum of all entries, 1x1.
template <class Scalar>
Var<Scalar> sum(const Var<Scalar>& x) { return detail::make_sum_to("sum", x, 1, 1, Scalar(1)); }
//! Mean of all entries, 1x1.
template <class Scalar>
Var<Scalar> mean(const Var<Scalar>& x) {
  return detail::make_sum_to("mean", x, 1, 1, Scalar(1) / static_cast<Scalar>(x.size()));
}
//! Sum of each row, rows x 1 (as Eigen's rowwise().sum()).
template <class Scalar>
Var<Scalar> rowwise_sum(const Var<Scalar>& x) { return detail::make_sum_to("rowwise_sum", x, x.rows(), 1, Scalar(1)); }
//! Sum of each column, 1 x cols: one value per sample.
template <class Scalar>
Var<Scalar> colwise_sum(const Var<Scalar>& x) { return detail::make_sum_to("colwise_sum", x, 1, x.cols(), Scalar(1)); }
template <class Scalar>
Var<Scalar> rowwise_mean(const Var<Scalar>& x) {
  return detail::make_sum_to("rowwise_mean", x, x.rows(), 1, Scalar(1) / static_cast<Scalar>(x.cols()));
}
template <class Scalar>
Var<Scalar> colwise_mean(const Var<Scalar>& x) {
  return detail::make_sum_to("colwise_mean", x, 1, x.cols(), Scalar(1) / static_cast<Scalar>(x.rows()));
}
//! Sum of the elementwise product, 1x1.
template <class Scalar>
Var<Scalar> dot(const Var<Scalar>& a, const Var<Scalar>& b) { return sum(mul(a, b)); }

}  // namespace ssmrl::ad
