// GMime: parsing, and walking the parts of a report. Every object we own is held by a GRef; what
// GMime's getters return is borrowed from its parent.
#pragma once

#include <gmime/gmime.h>

#include <cstddef>
#include <memory>
#include <string>

#include "bounce/field_block.h"
#include "bounce/report.h"

namespace bulkmail::bounce {

struct GObjectUnref {
  void operator()(gpointer p) const {
    if (p) g_object_unref(p);
  }
};
template <class T>
using GRef = std::unique_ptr<T, GObjectUnref>;

// Initialises GMime, once, on the first call from any thread.
void init_gmime();

// Whether `o`'s content type is type/subtype, as GMime parsed it.
bool is_type(GMimeObject* o, const char* type, const char* subtype);

// The header fields of `o` (a message or a part; null has none): names lower-case, values
// trimmed, at most kMaxFieldsPerBlock fields of kMaxValue bytes each.
FieldBlock header_block(GMimeObject* o);

// A header field's value with its encoded words (RFC 2047) decoded by GMime, as UTF-8.
std::string decode_header_text(const std::string& value);

// A leaf part's content, with its transfer encoding undone, at most kMaxPartText (1 MiB) bytes;
// "" for anything but a leaf part.
std::string part_text(GMimeObject* o);

// The parts of a report: found among the top-level multiparts, never inside a returned message.
struct Parts {
  GMimeObject* status = nullptr;  // message/delivery-status or message/global-delivery-status
  bool global = false;
  GMimeObject* feedback = nullptr;  // message/feedback-report
  GMimeObject* original = nullptr;  // the returned message or its headers
  GMimeObject* text = nullptr;      // the first text/plain
  std::size_t visited = 0;
  bool cut = false;
};

// Finds the report's parts in `o`, `depth` multipart levels down, into `p`: the first of each
// kind. A returned message is not walked into. Past limits.max_depth or limits.max_parts, p.cut
// is set and the walk stops.
void walk(GMimeObject* o, int depth, const ReportLimits& limits, Parts& p);

}  // namespace bulkmail::bounce
