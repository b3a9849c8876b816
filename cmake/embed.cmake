# Turns a text file into a C++ source defining `std::string_view NAME()`.
# Usage: cmake -DIN=file -DOUT=file.cc -DNAME=Fn -DNS=drover -P embed.cmake
file(READ "${IN}" content)
file(WRITE "${OUT}" "// Generated from ${IN}; do not edit.\n#include <string_view>\nnamespace ${NS} {\nstd::string_view ${NAME}() {\n  static constexpr char kText[] = R\"EMBED(${content})EMBED\";\n  return {kText, sizeof(kText) - 1};\n}\n}  // namespace ${NS}\n")
