// Backends: where a model's parameters live and its inference steps run. CPU (Eigen) is always
// built; another backend is another type satisfying Backend, not an #ifdef in the algorithms.
#pragma once

#include <Eigen/Core>

#include <concepts>

namespace ssmrl {

//! Opt-in: a type is a backend only when it says so, as well as having the members.
template <class B>
inline constexpr bool enable_backend = false;

//! A Backend has a name and a matrix type for each scalar type:
//!  - `B::name`: a null-terminated name, for messages and registries;
//!  - `typename B::template matrix<Scalar>`: dense column-major storage of one parameter or buffer;
//!  - `enable_backend<B>` is true.
template <class B>
concept Backend = enable_backend<B> && requires {
  { B::name } -> std::convertible_to<const char*>;
  typename B::template matrix<float>;
  typename B::template matrix<double>;
};

namespace backend {
//! The CPU backend: Eigen matrices; the tape and every training path run here.
struct Cpu {
  static constexpr const char* name = "cpu";
  template <class Scalar>
  using matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
};
}  // namespace backend

template <>
inline constexpr bool enable_backend<backend::Cpu> = true;

}  // namespace ssmrl
