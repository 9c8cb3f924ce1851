// Bounded text, for every reader of a report: every string that reaches a Report goes through
// clean(), every line through Lines, every field block through read_field_blocks()
// (field_block.h). None of them looks at a byte twice. Internal to lib/bounce.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace bulkmail::bounce {

inline constexpr std::size_t kMaxValue = 8 * 1024;  // one field value, unfolded
inline constexpr std::size_t kMaxShown = 2 * 1024;  // one string in a Report
inline constexpr std::size_t kMaxAddress = 512;     // one address in a Report

bool is_blank_char(char c);  // ' ' or '\t'

// Whether `s` begins with `lower_prefix` (lower-case ASCII), whatever the case of its letters.
bool starts_with_ci(std::string_view s, std::string_view lower_prefix);

// `s` as one trimmed line of valid UTF-8, at most `max` bytes: a byte that is not UTF-8 becomes
// U+FFFD; control characters and runs of white space become one space.
std::string clean(std::string_view s, std::size_t max = kMaxShown);

// Appends `more` to a value being unfolded, with one space between, up to `max` bytes.
void append(std::string& value, std::string_view more, std::size_t max = kMaxValue);

// The lines of a text, without their LF or CRLF.
class Lines {
 public:
  explicit Lines(std::string_view text) : text_(text) {}
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    std::size_t end = text_.find('\n', pos_);
    if (end == std::string_view::npos) end = text_.size();
    line = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return true;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// The first word of a value, up to white space, ';' or '(' ("failed" of "failed (permanent)").
std::string_view first_word(std::string_view v);

// "rfc822; a@example.com" without its type ("rfc822", stored in *type when asked for). A value
// whose text before ';' is not one word has no type.
std::string_view strip_type(std::string_view v, std::string* type = nullptr);

// "<a@example.com>" without its angle brackets.
std::string_view unbracket(std::string_view v);

}  // namespace bulkmail::bounce
