#include "bounce/mime_walk.h"

#include <algorithm>
#include <mutex>
#include <string_view>

#include "base/text.h"
#include "bounce/bounded_text.h"

namespace bulkmail::bounce {
namespace {

constexpr std::size_t kMaxPartText = 1024 * 1024;  // decoded bytes kept from one part

// Whether the Content-Type header as written names `lower_type` ("message/rfc822"): GMime types
// an encoded message/rfc822 as application/octet-stream, whatever the header says.
bool declares_type(GMimeObject* o, std::string_view lower_type) {
  const char* declared = g_mime_object_get_header(o, "Content-Type");
  return declared && starts_with_ci(trim(declared), lower_type);
}

bool is_original(GMimeObject* o) {
  return GMIME_IS_MESSAGE_PART(o) || is_type(o, "message", "rfc822") ||
         is_type(o, "message", "global") || is_type(o, "text", "rfc822-headers") ||
         is_type(o, "message", "rfc822-headers") || is_type(o, "message", "global-headers") ||
         declares_type(o, "message/rfc822") || declares_type(o, "message/global");
}

}  // namespace

void init_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

bool is_type(GMimeObject* o, const char* type, const char* subtype) {
  GMimeContentType* ct = g_mime_object_get_content_type(o);
  return ct && g_mime_content_type_is_type(ct, type, subtype);
}

FieldBlock header_block(GMimeObject* o) {
  FieldBlock block;
  GMimeHeaderList* list = o ? g_mime_object_get_header_list(o) : nullptr;
  if (!list) return block;
  int count = std::min(g_mime_header_list_get_count(list), static_cast<int>(kMaxFieldsPerBlock));
  for (int i = 0; i < count; ++i) {
    GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
    const char* name = h ? g_mime_header_get_name(h) : nullptr;
    const char* value = h ? g_mime_header_get_value(h) : nullptr;
    if (!name || !value) continue;
    block.push_back({to_lower_ascii(name), {}});
    append(block.back().value, std::string_view(value).substr(0, kMaxValue));
  }
  return block;
}

std::string decode_header_text(const std::string& value) {
  init_gmime();
  char* decoded = g_mime_utils_header_decode_text(nullptr, value.c_str());
  if (!decoded) return value;
  std::string out(decoded);
  g_free(decoded);
  return out;
}

std::string part_text(GMimeObject* o) {
  if (!o || !GMIME_IS_PART(o)) return {};
  GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(o));
  if (!content) return {};
  GRef<GMimeStream> out(g_mime_stream_mem_new());
  if (!out) return {};
  g_mime_data_wrapper_write_to_stream(content, out.get());  // on an error, keep what was decoded
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
  if (!bytes || !bytes->data) return {};
  return std::string(reinterpret_cast<const char*>(bytes->data),
                     std::min<std::size_t>(bytes->len, kMaxPartText));
}

void walk(GMimeObject* o, int depth, const ReportLimits& limits, Parts& p) {
  if (!o) return;
  if (p.visited >= limits.max_parts) {
    p.cut = true;
    return;
  }
  ++p.visited;
  if (GMIME_IS_MULTIPART(o)) {
    if (depth >= limits.max_depth) {
      p.cut = true;
      return;
    }
    GMimeMultipart* multipart = GMIME_MULTIPART(o);
    int count = g_mime_multipart_get_count(multipart);
    for (int i = 0; i < count && !p.cut; ++i)
      walk(g_mime_multipart_get_part(multipart, i), depth + 1, limits, p);
  } else if (is_type(o, "message", "delivery-status") ||
             is_type(o, "message", "global-delivery-status")) {
    if (!p.status) {
      p.status = o;
      p.global = is_type(o, "message", "global-delivery-status");
    }
  } else if (is_type(o, "message", "feedback-report")) {
    if (!p.feedback) p.feedback = o;
  } else if (is_type(o, "text", "plain")) {  // before is_original, which reads the header
    if (!p.text) p.text = o;
  } else if (depth > 0 && is_original(o)) {  // the report itself is nobody's returned message
    if (!p.original) p.original = o;
  }
}

}  // namespace bulkmail::bounce
