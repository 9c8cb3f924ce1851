// What every fuzz target shares: a property that does not hold is a crash, with the property's
// text, so libFuzzer keeps the input that broke it (and the replay driver fails on it).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "%s:%d: property does not hold: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace bulkmail::fuzz {

// The fuzzer's bytes as text.
inline std::string_view text(const unsigned char* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Cuts `in` at the first `sep`: the piece before it, and `in` left holding the rest (all of it,
// and `in` empty, when there is none). Targets that need several inputs read them this way, so
// that a seed file stays readable: "address\ncategory\n...".
inline std::string_view take(std::string_view& in, char sep = '\n') {
  std::size_t at = in.find(sep);
  std::string_view piece = in.substr(0, at);
  in = at == std::string_view::npos ? std::string_view() : in.substr(at + 1);
  return piece;
}

inline bool has_line_break(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

}  // namespace bulkmail::fuzz
