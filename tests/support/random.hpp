// Deterministic random matrices for tests.
#pragma once

#include <ssmrl/autodiff/tape.hpp>

#include <cstdint>
#include <random>

namespace ssmrl::test {

inline ad::Matrix<double> random_matrix(ad::Index rows, ad::Index cols, std::uint64_t seed, double lo = -1.0,
                                        double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  ad::Matrix<double> m(rows, cols);
  for (ad::Index i = 0; i < m.size(); ++i) m.data()[i] = u(rng);
  return m;
}

}  // namespace ssmrl::test
