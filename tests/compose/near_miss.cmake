# Compiles tests/compose/near_miss.cpp with -D${CASE} and fails (FATAL_ERROR) exactly when the
# compiler refuses it naming ${CONCEPT} in the first 20 lines of its output; the test is WILL_FAIL,
# so that is its pass. A file that compiles, or an error that does not name the concept there
# early, ends normally: the test fails, printing those lines.
cmake_policy(SET CMP0007 NEW)
string(REPLACE "|" ";" includes "${INCLUDES}")  # the include flags, joined by | to pass as one value
execute_process(COMMAND ${COMPILER} -std=c++20 -fsyntax-only ${includes} -D${CASE} ${SOURCE}
                RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output)
string(REPLACE "\n" ";" lines "${output}")
list(SUBLIST lines 0 20 first)
list(JOIN first "\n" head)
if(status EQUAL 0)
  message("${CASE}: compiled, but the type lacks what ${CONCEPT} asks for")
elseif(head MATCHES "${CONCEPT}")
  message(FATAL_ERROR "${CASE}: refused, naming ${CONCEPT} in the first 20 lines (expected)")
else()
  message("${CASE}: refused without naming ${CONCEPT} in the first 20 lines:\n${head}")
endif()
