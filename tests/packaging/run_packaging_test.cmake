# Installs the built kasm into a fresh prefix, then configures, builds and runs a consumer project
# that uses find_package(kasm CONFIG REQUIRED COMPONENTS sqlite) and nothing from the source tree.
file(REMOVE_RECURSE "${KASM_WORK_DIR}")
set(prefix "${KASM_WORK_DIR}/prefix")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install "${KASM_BUILD_DIR}" --prefix "${prefix}")
foreach(f lib/cmake/kasm/kasmConfig.cmake lib/cmake/kasm/kasmConfigVersion.cmake include/kasm/kasm.hpp
          include/kasm/version.hpp)
  if(NOT EXISTS "${prefix}/${f}")
    message(FATAL_ERROR "install did not produce ${f}")
  endif()
endforeach()
run(${CMAKE_COMMAND} -S "${KASM_CONSUMER_SOURCE}" -B "${KASM_WORK_DIR}/build" -G "${KASM_GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${KASM_WORK_DIR}/build")
run("${KASM_WORK_DIR}/build/kasm_consumer")
string(FIND "${last_output}" "kasm ${KASM_EXPECTED_VERSION}" found)
if(found EQUAL -1)
  message(FATAL_ERROR "consumer printed '${last_output}', expected 'kasm ${KASM_EXPECTED_VERSION}'")
endif()
message(STATUS "consumer output: ${last_output}")
file(REMOVE_RECURSE "${KASM_WORK_DIR}")
