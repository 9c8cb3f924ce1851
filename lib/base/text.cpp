#include "base/text.h"

#include <kainjow/mustache.hpp>

namespace bulkmail {

std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (len == 0 || c > 0xF4 || i + len > s.size()) return 0;
  char32_t cp = c & (0x7F >> len);
  for (std::size_t k = 1; k < len; ++k) {
    auto d = static_cast<unsigned char>(s[i + k]);
    if ((d & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (d & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return len;
}

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
    } else if (std::size_t len = utf8_sequence_length(s, i)) {
      i += len;
    } else {
      return false;
    }
  }
  return true;
}

int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool has_control_chars(std::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7F) return true;
  }
  return false;
}

Result<void> check_header_value(std::string_view s) {
  if (!is_valid_utf8(s)) return make_error("is not valid UTF-8");
  for (unsigned char c : s) {
    if (c == '\r' || c == '\n')
      return make_error("holds a line break (CR or LF), which could inject a mail header");
    if ((c < 0x20 && c != '\t') || c == 0x7F) return make_error("holds a control character");
  }
  return {};
}

Result<void> check_text_value(std::string_view s) {
  if (!is_valid_utf8(s)) return make_error("is not valid UTF-8");
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n' || c == '\t') continue;
    if (c == '\r') {
      if (i + 1 < s.size() && s[i + 1] == '\n') continue;
      return make_error("holds a carriage return that does not end a line");
    }
    if (c < 0x20 || c == 0x7F) return make_error("holds a control character");
  }
  return {};
}

std::string html_escape(std::string_view s) {
  return kainjow::mustache::html_escape<std::string>(std::string(s));
}

std::string html_escape_lines(std::string_view s) {
  std::string out = html_escape(s);
  if (out.find('\n') == std::string::npos) return out;
  std::string lines;
  lines.reserve(out.size() + 32);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\r' && i + 1 < out.size() && out[i + 1] == '\n') continue;
    if (out[i] == '\n') {
      lines += "<br>\n";
    } else {
      lines += out[i];
    }
  }
  return lines;
}

std::string to_lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n";
  auto b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

bool is_ascii(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80) return false;
  }
  return true;
}

void append_printable_line(std::string& out, std::string_view s, char line_break) {
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    out += (c == '\n' || c == '\r') ? line_break : ((u < 0x20 && c != '\t') || u == 0x7f) ? '?' : c;
  }
}

std::string printable_line(std::string_view s, char line_break) {
  std::string out;
  out.reserve(s.size());
  append_printable_line(out, s, line_break);
  return out;
}

}  // namespace bulkmail
