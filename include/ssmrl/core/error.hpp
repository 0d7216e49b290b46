// Error reporting for ssmrl: the exception types and the overridable SSMRL_THROW / SSMRL_ASSERT pair.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ssmrl {

//! Bad input at an API boundary: a wrong shape, size or value. Nothing was changed.
class InvalidArgument : public std::invalid_argument {
public:
  using std::invalid_argument::invalid_argument;
};

//! Misuse of an object's lifetime or protocol (a variable of a cleared tape, say).
class UsageError : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

//! A failed internal check under SSMRL_DEBUG_CHECKS.
class AssertionError : public std::logic_error {
public:
  using std::logic_error::logic_error;
};

namespace detail {
// Builds an error message from its pieces; only called on the failing path.
template <class... Parts>
[[nodiscard]] std::string message(Parts&&... parts) {
  std::ostringstream out;
  (out << ... << std::forward<Parts>(parts));
  return out.str();
}
}  // namespace detail

}  // namespace ssmrl

#ifndef SSMRL_THROW
//! Throws `Exception(message)`. Define before including ssmrl to route errors elsewhere.
#define SSMRL_THROW(Exception, msg) throw Exception(msg)
#endif

#ifndef SSMRL_ASSERT
#ifdef SSMRL_DEBUG_CHECKS
//! Checks `cond` under SSMRL_DEBUG_CHECKS and throws ssmrl::AssertionError(msg) when it fails.
#define SSMRL_ASSERT(cond, msg)                                   \
  do {                                                            \
    if (!(cond)) SSMRL_THROW(::ssmrl::AssertionError, (msg));     \
  } while (false)
#else
#define SSMRL_ASSERT(cond, msg) \
  do {                          \
  } while (false)
#endif
#endif

//! Throws ssmrl::InvalidArgument with a message made of the given pieces when `cond` fails.
#define SSMRL_REQUIRE(cond, ...)                                                   \
  do {                                                                             \
    if (!(cond)) SSMRL_THROW(::ssmrl::InvalidArgument, ::ssmrl::detail::message(__VA_ARGS__)); \
  } while (false)
