# Installs the package into a fresh prefix, then configures, builds and runs a consumer project.
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run_step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "${what}: ok")
endfunction()

run_step("install" ${CMAKE_COMMAND} --install "${SSMRL_BINARY_DIR}" --prefix "${prefix}")
run_step("configure consumer" ${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build"
         "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}")
run_step("build consumer" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run_step("run consumer" "${WORK_DIR}/build/consumer")
run_step("run core consumer" "${WORK_DIR}/build/core_consumer")
# What the package installs beside the headers.
if(NOT EXISTS "${prefix}/share/ssmrl/python/ssmrl_state_dict.py")
  message(FATAL_ERROR "share/ssmrl/python/ssmrl_state_dict.py is not installed")
endif()
if(EXPECT_CLI)
  run_step("run the installed command line" "${prefix}/bin/ssmrl" configs)
endif()
