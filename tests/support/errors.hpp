// Runs a callable that must throw E, and returns the message, for checks on error texts.
#pragma once

#include <doctest/doctest.h>

#include <string>

namespace ssmrl::test {

template <class E, class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  FAIL("expected an exception");
  return {};
}

}  // namespace ssmrl::test
