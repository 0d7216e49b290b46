// One tensor as files store it (name, dtype, shape, row-major little-endian bytes), a file of them
// with string metadata, and their conversion to and from matrices. No file format here: safetensors.hpp
// and npz.hpp read and write these.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "ssmrl/autodiff/tape.hpp"
#include "ssmrl/core/error.hpp"

namespace ssmrl::io {

static_assert(std::endian::native == std::endian::little, "ssmrl::io: files are written on little-endian machines only");

enum class DType { f32, f64 };

inline const char* dtype_name(DType d) { return d == DType::f32 ? "F32" : "F64"; }
inline std::size_t dtype_size(DType d) { return d == DType::f32 ? 4 : 8; }
template <class Scalar>
constexpr DType dtype_of() {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>, "ssmrl::io: float or double only");
  return std::is_same_v<Scalar, float> ? DType::f32 : DType::f64;
}

//! One tensor: its values as stored (row-major, little-endian).
struct Tensor {
  std::string name;
  DType dtype = DType::f64;
  std::vector<std::int64_t> shape;
  std::string bytes;

  //! The product of the dimensions; throws ssmrl::InvalidArgument for a negative dimension or a
  //! product beyond 2^62.
  [[nodiscard]] std::int64_t element_count() const {
    std::int64_t n = 1;
    for (const auto s : shape) {
      SSMRL_REQUIRE(s >= 0, "io::Tensor::element_count: tensor '", name, "' has a negative dimension ", s);
      SSMRL_REQUIRE(s == 0 || n <= max_elements / s, "io::Tensor::element_count: tensor '", name,
                    "' has more than 2^62 elements");
      n *= s;
    }
    return n;
  }
  //! Whether byte_size() is defined (at most 2^59 elements), checked without throwing.
  [[nodiscard]] bool element_count_fits() const {
    std::int64_t n = 1;
    for (const auto s : shape) {
      if (s < 0 || (s != 0 && n > max_elements / 8 / s)) return false;
      n *= s;
    }
    return true;
  }
  //! element_count() times the dtype's size, checked the same way.
  [[nodiscard]] std::int64_t byte_size() const {
    const auto n = element_count();
    SSMRL_REQUIRE(n <= max_elements / 8, "io::Tensor::byte_size: tensor '", name, "' has more than 2^62 bytes");
    return n * static_cast<std::int64_t>(dtype_size(dtype));
  }
  static constexpr std::int64_t max_elements = std::int64_t(1) << 62;
};

//! "[2, 3]": a shape as messages show it.
inline std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

//! Tensors and string metadata: what a safetensors file holds.
struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::vector<Tensor> tensors;  //!< in order of their data offsets
};

//! A column vector (n x 1) is stored 1-D, as PyTorch stores biases; anything else as [rows, cols].
template <class Scalar>
Tensor to_tensor(const std::string& name, const ad::Matrix<Scalar>& m) {
  Tensor t;
  t.name = name;
  t.dtype = dtype_of<Scalar>();
  t.shape = m.cols() == 1 ? std::vector<std::int64_t>{m.rows()} : std::vector<std::int64_t>{m.rows(), m.cols()};
  const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major = m;
  t.bytes.assign(reinterpret_cast<const char*>(row_major.data()), static_cast<std::size_t>(m.size()) * sizeof(Scalar));
  return t;
}

//! The tensor's values as a rows x cols matrix. Throws ssmrl::InvalidArgument (nothing read) unless
//! its dtype is Scalar's and it holds exactly rows x cols values: a Tensor built in memory can carry
//! any bytes, whatever its shape says.
template <class Scalar>
ad::Matrix<Scalar> to_matrix(const Tensor& t, ad::Index rows, ad::Index cols) {
  SSMRL_REQUIRE(rows >= 0 && cols >= 0 && t.dtype == dtype_of<Scalar>() &&
                    t.bytes.size() == static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols) * sizeof(Scalar),
                "io::to_matrix: tensor '", t.name, "' holds ", t.bytes.size(), " bytes of ", dtype_name(t.dtype),
                "; a ", rows, " x ", cols, " matrix of ", dtype_name(dtype_of<Scalar>()), " needs ",
                static_cast<std::size_t>(std::max<ad::Index>(rows, 0)) * static_cast<std::size_t>(std::max<ad::Index>(cols, 0)) * sizeof(Scalar));
  Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> row_major(rows, cols);
  if (!t.bytes.empty()) std::memcpy(row_major.data(), t.bytes.data(), t.bytes.size());
  return row_major;
}

}  // namespace ssmrl::io
