# Instrumented builds: LINQUANT_SANITIZE (AddressSanitizer + UndefinedBehaviorSanitizer for
# every target of the project; LibTorch and the other Debian libraries stay uninstrumented)
# and LINQUANT_BUILD_FUZZERS (the same, plus libFuzzer's coverage instrumentation, so the
# harnesses in tests/fuzz are guided through the library code they call). Both need clang:
# libFuzzer comes with it, and one compiler keeps one sanitizer runtime in the process.
if(LINQUANT_BUILD_FUZZERS)
  set(LINQUANT_SANITIZE ON)
endif()

if(LINQUANT_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "LINQUANT_SANITIZE and LINQUANT_BUILD_FUZZERS need clang "
                        "(configure with -DCMAKE_CXX_COMPILER=clang++-14)")
  endif()
  # Stop at the first undefined-behaviour report instead of printing and going on, so a
  # test or fuzz run cannot pass over one.
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  if(LINQUANT_BUILD_FUZZERS)
    add_compile_options(-fsanitize=fuzzer-no-link)
  endif()
endif()

# OpenMP for ATen's parallel_for (see src/CMakeLists.txt). Debian's clang has no OpenMP
# runtime of its own (libomp is not installed) and cannot generate code for LibTorch's
# libgomp, so instrumented builds run parallel_for on one thread: slower, same results.
macro(linquant_find_openmp)
  if(LINQUANT_SANITIZE)
    find_package(OpenMP)
    if(NOT OpenMP_CXX_FOUND)
      message(STATUS "Instrumented build without OpenMP: parallel_for runs on one thread")
      add_library(OpenMP::OpenMP_CXX INTERFACE IMPORTED)
    endif()
  else()
    find_package(OpenMP REQUIRED)
  endif()
endmacro()
