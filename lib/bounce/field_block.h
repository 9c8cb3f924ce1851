// Header field blocks: a DSN's per-message and per-recipient groups, an ARF report, the headers
// of a returned message. RFC 5322 syntax, read leniently, within bounded_text.h's limits.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace bulkmail::bounce {

inline constexpr std::size_t kMaxFieldsPerBlock = 200;  // fields kept from one header block

struct Field {
  std::string name;   // lower-case
  std::string value;  // unfolded and trimmed, at most kMaxValue bytes
};
using FieldBlock = std::vector<Field>;

// "Name: value", where the name is printable ASCII without ':' (white space before the colon is
// tolerated, as RFC 5322's obsolete syntax allows). False when `line` is not a header field.
bool split_field(std::string_view line, std::string_view& name, std::string_view& value);

// The blank-line separated blocks of header fields in `text`, at most `max_blocks`. Folded
// lines are unfolded; lines that are neither a field nor a continuation are skipped. A line of
// white space only ends a block, as DSN writers separate their groups with such lines.
std::vector<FieldBlock> read_field_blocks(std::string_view text, std::size_t max_blocks);

// A message's header, `text` up to (not including) the empty line that ends it: one block of at
// most `max_fields` fields of at most `max_value` bytes each. A line of white space only folds,
// as it does for GMime and the MTAs, rather than ending the header.
FieldBlock read_header_block(std::string_view text, std::size_t max_fields, std::size_t max_value);

}  // namespace bulkmail::bounce
