# Strict warnings for the project's own targets only (LibTorch headers are system headers).
function(linquant_strict_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Werror)
endfunction()
