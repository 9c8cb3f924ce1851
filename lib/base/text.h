// Small, pure checks on text that crosses a trust boundary: UTF-8 validity and the control
// characters that could split a mail header or a log line.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace bulkmail {

// True when s is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);
// The length (2 to 4) of the well-formed multi-byte UTF-8 sequence starting at s[i], 0 when there
// is none there (an ASCII byte included).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i);
// 0-15 for a hexadecimal digit (either case), -1 for anything else.
int hex_digit_value(char c);

// True when s holds CR, LF, NUL, any other C0 control character but TAB, or DEL. Such a value is
// refused wherever it could reach a header.
bool has_control_chars(std::string_view s);
// `s` fit for one line of a terminal, a log or a history: CR and LF (the line breaks) become
// `line_break`, every other control character but TAB '?'. For anyone's bytes (file names, keys
// of a config, relays' replies) on their way to a person.
std::string printable_line(std::string_view s, char line_break = '?');
void append_printable_line(std::string& out, std::string_view s, char line_break = '?');

// Whether `s` may stand in a header: valid UTF-8, no line break, no control character but TAB.
// The error is a predicate without a subject, for the caller to name the value: "holds a line
// break (CR or LF), which could inject a mail header".
Result<void> check_header_value(std::string_view s);
// Whether `s` may be a template variable's value: as check_header_value, except that line breaks
// (LF or CRLF) are allowed: a body may have paragraphs. Whether a value may reach a header is the
// template's to say (MessageTemplate::render refuses one with a line break in the subject).
Result<void> check_text_value(std::string_view s);

// & < > " ' as HTML entities: kainjow's own escaping, the one every value in HTML goes through,
// so the composer's check for the unsubscribe link and postal address agrees with the render.
std::string html_escape(std::string_view s);
// html_escape, and each line break (LF or CRLF) as <br> and a newline, so that a value's lines
// and paragraphs stay lines and paragraphs in the HTML part.
std::string html_escape_lines(std::string_view s);

std::string to_lower_ascii(std::string_view s);
// Whether `a` and `b` are equal but for the case of ASCII letters.
bool iequals(std::string_view a, std::string_view b);
std::string_view trim(std::string_view s);
bool is_ascii(std::string_view s);

}  // namespace bulkmail
