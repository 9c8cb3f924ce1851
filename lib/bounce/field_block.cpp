#include "bounce/field_block.h"

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

std::vector<FieldBlock> read_field_blocks(std::string_view text, std::size_t max_blocks) {
  std::vector<FieldBlock> blocks;
  FieldBlock block;
  bool in_field = false;
  auto close = [&] {
    if (!block.empty()) blocks.push_back(std::move(block));
    block.clear();
    in_field = false;
  };
  Lines lines(text);
  std::string_view line;
  while (blocks.size() < max_blocks && lines.next(line)) {
    if (trim(line).empty()) {
      close();
    } else if (is_blank_char(line[0])) {
      if (in_field) append(block.back().value, line.substr(0, kMaxValue));
    } else {
      std::string_view name, value;
      in_field = block.size() < kMaxFieldsPerBlock && split_field(line, name, value);
      if (in_field) {
        block.push_back({to_lower_ascii(name), {}});
        append(block.back().value, value.substr(0, kMaxValue));
      }
    }
  }
  if (blocks.size() < max_blocks) close();
  return blocks;
}

}  // namespace bulkmail::bounce
