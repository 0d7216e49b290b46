// Mean and population standard deviation of the examples' results over seeds.
#pragma once

#include <cmath>
#include <vector>

namespace examples {

struct Spread {
  double mean = 0;
  double std = 0;
};

inline Spread spread(const std::vector<double>& v) {
  Spread s;
  for (const double x : v) s.mean += x / static_cast<double>(v.size());
  for (const double x : v) s.std += (x - s.mean) * (x - s.mean) / static_cast<double>(v.size());
  s.std = std::sqrt(s.std);
  return s;
}

}  // namespace examples
