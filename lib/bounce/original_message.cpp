#include "bounce/original_message.h"

#include <string>
#include <utility>
#include <vector>

#include "base/text.h"
#include "bounce/bounded_text.h"
#include "bounce/mime_walk.h"
#include "bounce/report_fill.h"

namespace bulkmail::bounce {
namespace {

constexpr std::size_t kMaxListUnsubscribe = 4;  // URIs kept from List-Unsubscribe

// What the first <...> of `v` holds, or "" when there is none.
std::string_view first_bracketed(std::string_view v) {
  std::size_t open = v.find('<');
  if (open == std::string_view::npos) return {};
  std::size_t close = v.find('>', open + 1);
  if (close == std::string_view::npos) return {};
  return trim(v.substr(open + 1, close - open - 1));
}

std::string message_id_of(std::string_view v) {
  std::string_view id = first_bracketed(v);
  if (id.empty()) id = first_word(v);  // RFC 5965's own example has no brackets
  if (id.empty()) return {};
  return clean("<" + std::string(id) + ">", 998);
}

std::vector<std::string> bracketed_all(std::string_view v, std::size_t max) {
  std::vector<std::string> out;
  while (out.size() < max) {
    std::size_t open = v.find('<');
    if (open == std::string_view::npos) break;
    std::size_t close = v.find('>', open + 1);
    if (close == std::string_view::npos) break;
    std::string uri = clean(v.substr(open + 1, close - open - 1));
    if (!uri.empty()) out.push_back(std::move(uri));
    v.remove_prefix(close + 1);
  }
  return out;
}

}  // namespace

OriginalMessage original_from(const FieldBlock& headers) {
  OriginalMessage o;
  o.found = true;
  for (const Field& f : headers) {
    if (f.name == "message-id") {
      set_once(o.message_id, message_id_of(f.value));
    } else if (f.name == "list-unsubscribe") {
      if (o.list_unsubscribe.empty())
        o.list_unsubscribe = bracketed_all(f.value, kMaxListUnsubscribe);
    } else if (f.name == "list-id") {
      std::string_view id = first_bracketed(f.value);
      set_once(o.list_id, clean(id.empty() ? trim(f.value) : id));
    } else if (f.name == "return-path") {
      std::string_view rp = first_bracketed(f.value);
      if (rp.empty() && f.value.find('<') == std::string::npos) rp = trim(f.value);
      set_once(o.return_path, clean(rp, kMaxAddress));
    } else if (f.name == "to") {
      set_once(o.to, clean(f.value));
    } else if (f.name == "from") {
      set_once(o.from, clean(f.value));
    } else if (f.name == "subject") {
      set_once(o.subject, clean(f.value));
    }
  }
  return o;
}

OriginalMessage read_original(GMimeObject* o) {
  if (GMIME_IS_MESSAGE_PART(o)) {
    GMimeMessage* m = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
    return m ? original_from(header_block(GMIME_OBJECT(m))) : OriginalMessage{};
  }
  // text/rfc822-headers, or a message/rfc822 that GMime left as a leaf because it was base64 or
  // quoted-printable encoded (against RFC 2046, but Exchange does it).
  auto blocks = read_field_blocks(part_text(o), 1);
  return blocks.empty() ? OriginalMessage{} : original_from(blocks[0]);
}

}  // namespace bulkmail::bounce
