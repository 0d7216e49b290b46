// With SSMRL_DEBUG_CHECKS, a variable used after its tape was cleared or rewound is caught.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <ssmrl/autodiff.hpp>

#include <string>

using namespace ssmrl;

#ifndef SSMRL_DEBUG_CHECKS
#error "this test is built with SSMRL_DEBUG_CHECKS"
#endif

TEST_CASE("a variable of a cleared tape is caught") {
  ad::Tape<double> tape;
  const auto x = tape.variable(ad::Matrix<double>::Ones(2, 2));
  const auto y = ad::tanh(x);
  tape.clear();
  // Same shapes again, so the stale handles point at reused, valid-looking memory.
  const auto fresh = tape.variable(ad::Matrix<double>::Ones(2, 2));
  CHECK_THROWS_AS((void)ad::exp(y), UsageError);
  CHECK_THROWS_AS((void)y.value(), UsageError);
  try {
    (void)ad::add(fresh, x);
  } catch (const UsageError& e) {
    CHECK(std::string(e.what()).find("cleared or rewound") != std::string::npos);
  }
  CHECK_NOTHROW((void)ad::exp(fresh));
}

TEST_CASE("a variable recorded inside a scope is caught after the scope ends") {
  ad::Tape<double> tape;
  const auto x = tape.variable(ad::Matrix<double>::Ones(2, 2));
  ad::Var<double> inner;
  {
    ad::Tape<double>::Scope scope(tape);
    inner = ad::square(x);
  }
  const auto after = ad::square(x);  // reuses the slot the scope freed
  CHECK_THROWS_AS((void)ad::sum(inner), UsageError);
  CHECK_NOTHROW((void)ad::sum(after));
  CHECK_NOTHROW((void)ad::sum(x));
}
