#include "bounce/field_block.h"

#include <utility>

#include "base/text.h"
#include "bounce/bounded_text.h"

namespace bulkmail::bounce {

bool split_field(std::string_view line, std::string_view& name, std::string_view& value) {
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return false;
  name = line.substr(0, colon);
  while (!name.empty() && is_blank_char(name.back())) name.remove_suffix(1);
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (c < 33 || c > 126) return false;
  }
  value = line.substr(colon + 1);
  return true;
}

namespace {

// Reads a block's lines, one at a time, with the bounds it was given.
class BlockReader {
 public:
  BlockReader(std::size_t max_fields, std::size_t max_value)
      : max_fields_(max_fields), max_value_(max_value) {}

  // A line that is not blank: a field, a continuation, or neither (skipped).
  void add(std::string_view line) {
    if (is_blank_char(line[0])) {
      if (in_field_) append(block_.back().value, line.substr(0, max_value_), max_value_);
      return;
    }
    std::string_view name, value;
    in_field_ = block_.size() < max_fields_ && split_field(line, name, value);
    if (in_field_) {
      block_.push_back({to_lower_ascii(name), {}});
      append(block_.back().value, value.substr(0, max_value_), max_value_);
    }
  }
  // The block read so far; the reader starts a new one.
  FieldBlock take() {
    in_field_ = false;
    return std::exchange(block_, {});
  }

 private:
  std::size_t max_fields_, max_value_;
  FieldBlock block_;
  bool in_field_ = false;
};

}  // namespace

std::vector<FieldBlock> read_field_blocks(std::string_view text, std::size_t max_blocks) {
  std::vector<FieldBlock> blocks;
  BlockReader reader(kMaxFieldsPerBlock, kMaxValue);
  auto close = [&] {
    FieldBlock block = reader.take();
    if (!block.empty()) blocks.push_back(std::move(block));
  };
  Lines lines(text);
  std::string_view line;
  while (blocks.size() < max_blocks && lines.next(line)) {
    if (trim(line).empty()) {
      close();
    } else {
      reader.add(line);
    }
  }
  if (blocks.size() < max_blocks) close();
  return blocks;
}

FieldBlock read_header_block(std::string_view text, std::size_t max_fields, std::size_t max_value) {
  BlockReader reader(max_fields, max_value);
  Lines lines(text);
  std::string_view line;
  while (lines.next(line)) {
    if (!trim(line).empty()) reader.add(line);
  }
  return reader.take();
}

}  // namespace bulkmail::bounce
