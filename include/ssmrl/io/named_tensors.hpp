// Tensors by name from a safetensors or .npz file, whichever it is, as matrices of a chosen scalar.
#pragma once

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ssmrl/io/npz.hpp"
#include "ssmrl/io/safetensors.hpp"
#include "ssmrl/io/tensor.hpp"

namespace ssmrl::io {

class NamedTensors {
public:
  NamedTensors(std::vector<Tensor> tensors, std::string origin, std::map<std::string, std::string> metadata = {})
      : tensors_(std::move(tensors)), origin_(std::move(origin)), metadata_(std::move(metadata)) {
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      SSMRL_REQUIRE(index_.emplace(tensors_[i].name, i).second, "io::NamedTensors: '", origin_, "' holds tensor ",
                    tensors_[i].name, " twice");
    }
  }
  //! Reads a .npz archive (it starts as a zip archive does) or else a safetensors file.
  static NamedTensors read(const std::filesystem::path& path) {
    auto bytes = read_file("io::NamedTensors::read", path);
    if (bytes.rfind("PK\x03\x04", 0) == 0 || bytes.rfind("PK\x05\x06", 0) == 0) {
      return NamedTensors(decode_npz(bytes, path.string()), path.string());
    }
    auto file = decode_safetensors(bytes, path.string());
    return NamedTensors(std::move(file.tensors), path.string(), std::move(file.metadata));
  }

  [[nodiscard]] bool contains(std::string_view name) const { return index_.count(std::string(name)) == 1; }
  [[nodiscard]] const Tensor& at(std::string_view name) const {
    const auto it = index_.find(std::string(name));
    if (it == index_.end()) {
      std::string known;
      for (const auto& t : tensors_) known += (known.empty() ? "" : ", ") + t.name;
      SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message("io::NamedTensors::at: '", origin_,
                                                                     "' has no tensor ", name, "; it has: ", known));
    }
    return tensors_[it->second];
  }
  //! A 2-D tensor as its matrix, a 1-D one as a column. float32 widens to double exactly; float64
  //! is not narrowed to float (convert before saving).
  template <class Scalar>
  [[nodiscard]] ad::Matrix<Scalar> matrix(std::string_view name) const {
    const Tensor& t = at(name);
    SSMRL_REQUIRE(t.shape.size() == 1 || t.shape.size() == 2, "io::NamedTensors::matrix: '", origin_, "': tensor ",
                  name, " has shape ", shape_text(t.shape), "; only 1-D and 2-D tensors are matrices");
    const ad::Index rows = t.shape[0];
    const ad::Index cols = t.shape.size() == 2 ? t.shape[1] : 1;
    if constexpr (std::is_same_v<Scalar, double>) {
      if (t.dtype == DType::f32) return to_matrix<float>(t, rows, cols).template cast<double>();
    }
    SSMRL_REQUIRE(t.dtype == dtype_of<Scalar>(), "io::NamedTensors::matrix: '", origin_, "': tensor ", name, " is ",
                  dtype_name(t.dtype), "; a ", dtype_name(dtype_of<Scalar>()), " model does not narrow it");
    return to_matrix<Scalar>(t, rows, cols);
  }
  //! matrix(), checked against the shape the caller expects.
  template <class Scalar>
  [[nodiscard]] ad::Matrix<Scalar> matrix(std::string_view name, ad::Index rows, ad::Index cols) const {
    auto m = matrix<Scalar>(name);
    SSMRL_REQUIRE(m.rows() == rows && m.cols() == cols, "io::NamedTensors::matrix: '", origin_, "': tensor ", name,
                  " has shape ", shape_text(at(name).shape), ", expected [", rows, ", ", cols, "]");
    return m;
  }

  [[nodiscard]] std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& t : tensors_) out.push_back(t.name);
    return out;
  }
  [[nodiscard]] const std::vector<Tensor>& tensors() const noexcept { return tensors_; }
  [[nodiscard]] const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }
  [[nodiscard]] const std::string& origin() const noexcept { return origin_; }

private:
  std::vector<Tensor> tensors_;
  std::string origin_;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, std::size_t> index_;
};

}  // namespace ssmrl::io
