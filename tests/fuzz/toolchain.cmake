# What MPCTL_FUZZ needs of the compiler, checked before anything is built, so that a missing piece is one
# clear message at configure time rather than a wall of errors later (or, in CI, a stage silently skipped).
include(CheckCXXSourceCompiles)

function(mpctl_check_fuzzing_toolchain)
  set(hint "apt-get install clang-19 libclang-rt-19-dev, then configure with CC=clang-19 CXX=clang++-19")
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MPCTL_FUZZ needs clang (libFuzzer), not ${CMAKE_CXX_COMPILER_ID}: ${hint}")
  endif()
  # libstdc++ 12 declares std::expected only for a compiler whose __cpp_concepts is 202002L: clang 19 and
  # later. Debian 12's default clang (14) and clang 16 see an empty <expected>.
  set(CMAKE_REQUIRED_FLAGS -std=c++23)
  check_cxx_source_compiles([[
    #include <expected>
    int main() { std::expected<int, int> e = 1; return *e - 1; }
  ]] MPCTL_FUZZ_HAS_EXPECTED)
  if(NOT MPCTL_FUZZ_HAS_EXPECTED)
    message(FATAL_ERROR "${CMAKE_CXX_COMPILER} ${CMAKE_CXX_COMPILER_VERSION} cannot use this standard "
                        "library's std::expected (clang 19 or later can): ${hint}")
  endif()
  set(CMAKE_REQUIRED_FLAGS -fsanitize=fuzzer,address,undefined)
  check_cxx_source_compiles([[
    #include <cstddef>
    #include <cstdint>
    extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }
  ]] MPCTL_FUZZ_HAS_LIBFUZZER)
  if(NOT MPCTL_FUZZ_HAS_LIBFUZZER)
    message(FATAL_ERROR "${CMAKE_CXX_COMPILER} cannot link -fsanitize=fuzzer,address,undefined (the runtime "
                        "is libclang-rt-<version>-dev): ${hint}")
  endif()
endfunction()
