// Reading the PyTorch reference cases (see the reference folder's README for the format).
#pragma once

#include <nlohmann/json.hpp>
#include <ssmrl/autodiff/tape.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace ssmrl::test {

//! The folder named by SSMRL_REFERENCE_DIR at run time, else the one fixed at configure time.
inline std::filesystem::path reference_dir() {
  if (const char* env = std::getenv("SSMRL_REFERENCE_DIR"); env != nullptr && *env != '\0') return env;
  return SSMRL_REFERENCE_DIR_DEFAULT;
}

//! Every *.json in the folder, sorted by name.
inline std::vector<std::filesystem::path> reference_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  if (!std::filesystem::is_directory(dir)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

inline nlohmann::json read_json(const std::filesystem::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

//! A parameter or gradient: a list of rows becomes a matrix, a flat list a column vector.
inline ad::Matrix<double> tensor(const nlohmann::json& j) {
  if (j.empty() || !j[0].is_array()) {
    ad::Matrix<double> v(static_cast<ad::Index>(j.size()), 1);
    for (std::size_t i = 0; i < j.size(); ++i) v(static_cast<ad::Index>(i), 0) = j[i].get<double>();
    return v;
  }
  ad::Matrix<double> m(static_cast<ad::Index>(j.size()), static_cast<ad::Index>(j[0].size()));
  for (std::size_t r = 0; r < j.size(); ++r) {
    for (std::size_t c = 0; c < j[r].size(); ++c) {
      m(static_cast<ad::Index>(r), static_cast<ad::Index>(c)) = j[r][c].get<double>();
    }
  }
  return m;
}

//! A batch in the library's layout: column t * B + b holds sample b at step t.
struct Batch {
  ad::Index batch = 0;
  ad::Index steps = 0;
  ad::Matrix<double> obs;             //!< obs x (T * B)
  ad::Matrix<double> actions;     //!< action_dim x (T * B); categorical: 1 x (T * B) indices
  ad::Matrix<double> advantages;  //!< 1 x (T * B)
};

//! Converts PyTorch's batch-major [B][T][...] layout.
inline Batch batch(const nlohmann::json& j) {
  Batch out;
  out.batch = static_cast<ad::Index>(j["obs"].size());
  out.steps = static_cast<ad::Index>(j["obs"][0].size());
  const auto obs_dim = static_cast<ad::Index>(j["obs"][0][0].size());
  const ad::Index columns = out.batch * out.steps;
  out.obs.resize(obs_dim, columns);
  out.advantages.resize(1, columns);
  const bool gaussian = j["actions"][0][0].is_array();
  out.actions.resize(gaussian ? static_cast<ad::Index>(j["actions"][0][0].size()) : 1, columns);
  for (ad::Index b = 0; b < out.batch; ++b) {
    for (ad::Index t = 0; t < out.steps; ++t) {
      const ad::Index col = t * out.batch + b;
      const auto& o = j["obs"][b][t];
      for (ad::Index i = 0; i < obs_dim; ++i) out.obs(i, col) = o[i].get<double>();
      out.advantages(0, col) = j["advantages"][b][t].get<double>();
      const auto& a = j["actions"][b][t];
      if (gaussian) {
        for (ad::Index i = 0; i < out.actions.rows(); ++i) out.actions(i, col) = a[i].get<double>();
      } else {
        out.actions(0, col) = a.get<double>();
      }
    }
  }
  return out;
}

//! |x_i - y_i| <= tol * max_j |y_j|, the reference README's rule for tensors.
inline double tensor_error(const ad::Matrix<double>& got, const ad::Matrix<double>& expected) {
  if (got.rows() != expected.rows() || got.cols() != expected.cols()) return std::numeric_limits<double>::infinity();
  const double scale = expected.cwiseAbs().maxCoeff();
  const double diff = (got - expected).cwiseAbs().maxCoeff();
  return scale > 0 ? diff / scale : diff;
}

//! |x - y| <= tol * max(1, |y|), the rule for scalars.
inline double scalar_error(double got, double expected) {
  return std::abs(got - expected) / std::max(1.0, std::abs(expected));
}

}  // namespace ssmrl::test
