#include "compose/mime.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>

#include "base/text.h"
#include "crypto/base64.h"

namespace bulkmail {
namespace {

constexpr std::size_t kFoldAt = 78;
constexpr std::size_t kMaxLine = 998;
constexpr char kHex[] = "0123456789ABCDEF";

bool is_atext_or_space(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ')
    return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

// Splits UTF-8 text into encoded-words of at most 30 input bytes each (52 characters encoded),
// never inside a character, joined by folding white space.
std::string encoded_words(std::string_view s) {
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t n = std::min<std::size_t>(30, s.size() - i);
    while (n > 0 && i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80) --n;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64_encode(s.substr(i, n)) + "?=";
    i += n;
  }
  return out;
}

// Folds "Name: value" before a space so lines stay within 78 characters where a space allows it
// (never right after "Name: "); checks the 998-octet hard limit.
Result<std::string> fold(std::string_view name, std::string_view value) {
  std::string out(name);
  out += ": ";
  std::size_t line_len = out.size();
  std::size_t i = 0;
  while (i < value.size()) {
    // The next chunk runs to just before the next space (or the end).
    std::size_t j = value.find(' ', i + 1);
    std::size_t end = j == std::string_view::npos ? value.size() : j;
    std::string_view chunk = value.substr(i, end - i);
    if (line_len + chunk.size() > kFoldAt && line_len > name.size() + 2 && chunk.front() == ' ') {
      out += "\r\n";
      line_len = 0;
    }
    out += chunk;
    line_len += chunk.size();
    if (line_len > kMaxLine)
      return make_error(std::string(name) + " has a part longer than 998 octets");
    i = end;
  }
  out += "\r\n";
  return out;
}

}  // namespace

std::string quoted_printable(std::string_view text) {
  std::string out;
  append_quoted_printable(out, text);
  return out;
}

void append_quoted_printable(std::string& out, std::string_view text) {
  // Which bytes must be written as =XX anywhere in a line (white space only at a line's end).
  static const auto kEncode = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = c == '=' || c >= 0x7F || (c < 0x20 && c != '\t');
    return t;
  }();
  out.reserve(out.size() + text.size() + text.size() / 16 + 64);
  std::size_t pos = 0;
  while (true) {
    std::size_t nl = text.find('\n', pos);
    std::size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::size_t stop = end;
    if (stop > pos && text[stop - 1] == '\r') --stop;
    std::size_t col = 0;
    std::size_t k = pos;
    while (k < stop) {
      // Copy the run of bytes that need no encoding in one append, up to the column limit.
      if (col > 0 || (text[k] != '.' && text[k] != 'F')) {
        std::size_t run = k;
        std::size_t limit = std::min(stop, k + (75 - col));
        while (run < limit && !kEncode[static_cast<unsigned char>(text[run])]) ++run;
        if (run == stop && run > k && (text[run - 1] == ' ' || text[run - 1] == '\t')) --run;
        if (run > k) {
          out.append(text.data() + k, run - k);
          col += run - k;
          k = run;
          if (col >= 75 && k < stop) {
            out.append("=\r\n", 3);
            col = 0;
          }
          continue;
        }
      }
      auto c = static_cast<unsigned char>(text[k]);
      bool encode = kEncode[c] || ((c == ' ' || c == '\t') && k + 1 == stop) ||
                    (col == 0 && (c == '.' || (c == 'F' && text.substr(k, 5) == "From ")));
      std::size_t width = encode ? 3 : 1;
      if (col + width > 75) {  // leave room for the soft break's '='
        out.append("=\r\n", 3);
        col = 0;
        continue;  // look at this byte again at the start of a line
      }
      if (encode) {
        char enc[3] = {'=', kHex[c >> 4], kHex[c & 0xF]};
        out.append(enc, 3);
      } else {
        out.push_back(static_cast<char>(c));
      }
      col += width;
      ++k;
    }
    out.append("\r\n", 2);
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
    if (pos == text.size()) break;  // a final line end ends the text
  }
}

Result<std::string> unstructured_header(std::string_view name, std::string_view value) {
  if (auto text = check_header_value(value); !text)
    return make_error(std::string(name) + " " + text.error().message);
  bool plain = true;
  for (char c : value) {
    if (static_cast<unsigned char>(c) >= 0x7F || c == '\t') plain = false;
  }
  // "=?" in plain text would be read as an encoded-word: encode such a value too.
  if (value.find("=?") != std::string_view::npos) plain = false;
  if (plain) return fold(name, value);
  return std::string(name) + ": " + encoded_words(value) + "\r\n";
}

Result<std::string> mailbox_text(std::string_view display_name, std::string_view address) {
  if (auto text = check_header_value(display_name); !text)
    return make_error("display name " + text.error().message);
  if (auto text = check_header_value(address); !text)
    return make_error("address " + text.error().message);
  if (display_name.empty()) return std::string(address);
  std::string out;
  if (!is_ascii(display_name)) {
    out = encoded_words(display_name);
  } else {
    bool atoms = true;
    for (char c : display_name) atoms = atoms && is_atext_or_space(c);
    if (atoms) {
      out = std::string(display_name);
    } else {
      out = "\"";
      for (char c : display_name) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += "\"";
    }
  }
  return out + " <" + std::string(address) + ">";
}

Result<std::string> structured_header(std::string_view name, std::string_view value) {
  if (auto text = check_header_value(value); !text)
    return make_error(std::string(name) + " " + text.error().message);
  return fold(name, value);
}

namespace {

// Writes the date of second `secs` into `buf`; returns its length.
std::size_t format_date(std::time_t secs, char (&buf)[64]) {
  std::tm tm{};
  gmtime_r(&secs, &tm);
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int n = std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                        tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                        tm.tm_sec);
  return n < 0 ? 0 : std::min(static_cast<std::size_t>(n), sizeof buf - 1);
}

}  // namespace

std::string rfc5322_date(UnixMillis t) {
  char buf[64];
  return std::string(buf, format_date(static_cast<std::time_t>(t / 1000), buf));
}

void DateCache::append(std::string& out, UnixMillis t) {
  UnixMillis second = t / 1000;
  if (text_.empty() || second != second_) {
    char buf[64];
    text_.assign(buf, format_date(static_cast<std::time_t>(second), buf));  // keeps its capacity
    second_ = second;
  }
  out += text_;
}

}  // namespace bulkmail
