# Strict warnings for the project's own targets only (LibTorch headers are system headers).
# Warnings are errors with the compiler the project is developed with (GCC); clang, used for
# the instrumented builds, warns about other things and only reports them.
function(linquant_strict_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
