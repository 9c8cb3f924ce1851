#include "bounce/bounded_text.h"

#include <algorithm>

#include "base/text.h"

namespace bulkmail::bounce {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

bool is_blank_char(char c) { return c == ' ' || c == '\t'; }

bool starts_with_ci(std::string_view s, std::string_view lower_prefix) {
  if (s.size() < lower_prefix.size()) return false;
  for (std::size_t i = 0; i < lower_prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower_prefix[i]) return false;
  }
  return true;
}

std::string clean(std::string_view s, std::size_t max) {
  std::string out;
  out.reserve(std::min(s.size(), max));
  bool space = false;
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::string_view piece;
    if (c < 0x80) {
      if (c <= 0x20 || c == 0x7F) {
        space = true;
        ++i;
        continue;
      }
      piece = s.substr(i, 1);
      ++i;
    } else if (std::size_t len = utf8_sequence_length(s, i)) {
      piece = s.substr(i, len);
      i += len;
    } else {
      piece = kReplacement;
      ++i;
    }
    bool gap = space && !out.empty();
    if (out.size() + (gap ? 1 : 0) + piece.size() > max) break;
    if (gap) out += ' ';
    out += piece;
    space = false;
  }
  return out;
}

void append(std::string& value, std::string_view more, std::size_t max) {
  more = trim(more);
  if (more.empty() || value.size() >= max) return;
  if (!value.empty()) value += ' ';
  value.append(more.substr(0, max - std::min(value.size(), max)));
}

std::string_view first_word(std::string_view v) {
  v = trim(v);
  return v.substr(0, v.find_first_of(" \t;("));
}

std::string_view strip_type(std::string_view v, std::string* type) {
  v = trim(v);
  std::size_t semi = v.find(';');
  if (semi == std::string_view::npos || semi == 0 || semi > 32) return v;
  std::string_view t = trim(v.substr(0, semi));
  for (char c : t) {
    bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '.' || c == '_';
    if (!word) return v;
  }
  if (t.empty()) return v;
  if (type) *type = to_lower_ascii(t);
  return trim(v.substr(semi + 1));
}

std::string_view unbracket(std::string_view v) {
  v = trim(v);
  if (v.size() >= 2 && v.front() == '<' && v.back() == '>') v = trim(v.substr(1, v.size() - 2));
  return v;
}

}  // namespace bulkmail::bounce
