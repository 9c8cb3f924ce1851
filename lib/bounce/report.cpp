#include "bounce/report.h"

#include <gmime/gmime.h>

#include <algorithm>
#include <string>

#include "base/text.h"
#include "bounce/arf.h"
#include "bounce/auto_reply.h"
#include "bounce/bounded_text.h"
#include "bounce/dsn.h"
#include "bounce/field_block.h"
#include "bounce/mime_walk.h"
#include "bounce/original_message.h"
#include "bounce/report_fill.h"
#include "bounce/text_notice.h"

namespace bulkmail::bounce {
namespace {

// ---------------------------------------------------------------------------------------------
// The input's budget, before GMime sees it.

struct Cut {
  std::size_t length;
  std::string reason;
};

// How much of `in` may be read: whole lines only, within every limit.
Cut budget(std::string_view in, const ReportLimits& limits) {
  Cut cut{in.size(), {}};
  std::size_t max_bytes = std::max<std::size_t>(limits.max_bytes, 1);
  if (in.size() > max_bytes) {
    std::size_t nl = in.rfind('\n', max_bytes - 1);
    cut.length = nl == std::string_view::npos ? max_bytes : nl + 1;
    cut.reason = "the input is larger than " + std::to_string(max_bytes) +
                 " bytes: only the first " + std::to_string(cut.length) + " were read";
  }
  std::size_t lines = 0, types = 0, dashes = 0;
  // The header field (or body line) under way, with the lines folded onto it, and the run of
  // field-looking lines it ends.
  std::size_t field_start = 0, field_bytes = 0, field_colons = 0, fields_in_a_row = 0;
  for (std::size_t pos = 0; pos < cut.length;) {
    std::string_view rest = in.substr(pos, cut.length - pos);
    std::size_t nl = in.find('\n', pos);
    std::size_t end = nl == std::string_view::npos || nl >= cut.length ? cut.length : nl + 1;
    std::string_view line = in.substr(pos, end - pos);
    const char* over = nullptr;
    std::size_t at = pos;  // where to cut: before this line, or before the field it continues
    if (++lines > limits.max_lines) over = "lines";
    if (starts_with_ci(rest, "content-type") && ++types > limits.max_content_types)
      over = "Content-Type lines (MIME nesting)";
    if (rest.starts_with("--") && ++dashes > limits.max_boundaries)
      over = "lines starting with \"--\" (MIME parts)";
    std::size_t colon = line.find(':'), colons = 0;
    for (std::size_t c = colon; c != std::string_view::npos; c = line.find(':', c + 1)) ++colons;
    bool continues = !line.empty() && (line[0] == ' ' || line[0] == '\t');
    if (!continues) {
      field_start = pos;
      field_bytes = field_colons = 0;
      bool blank = line.find_first_not_of("\r\n") == std::string_view::npos;
      bool field_like = colon != std::string_view::npos && colon > 0 &&
                        line.substr(0, colon).find_first_of(" \t") == std::string_view::npos;
      fields_in_a_row = blank ? 0 : field_like ? fields_in_a_row + 1 : 0;
      if (fields_in_a_row > limits.max_fields_in_a_row) over = "header fields in a row";
    }
    field_bytes += line.size();
    field_colons += colons;
    if (field_bytes > limits.max_field_bytes || field_colons > limits.max_field_colons) {
      over = "bytes or colons in one header field";
      at = field_start;
    }
    if (over && at > 0) {
      return {at, std::string("too many ") + over + ": only the first " + std::to_string(at) +
                      " bytes were read"};
    }
    if (over) return {0, std::string("too many ") + over + " in the first line: nothing was read"};
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
  return cut;
}

// Appends `body` to `out` with the returned original message (a message/rfc822 or
// message/global part below the report's own header) relabelled, for GMime, as the header-only
// types a report may carry instead (text/rfc822-headers, message/global-headers): only its header
// block is read (original_message.h), and as a message GMime would build an object for every
// header field and part of it. A type folded onto the next line is left as it is (the message is
// then parsed whole).
void append_relabelled(std::string& out, std::string_view body) {
  constexpr std::string_view kField = "content-type:";
  std::size_t copied = 0;
  for (std::size_t pos = 0; pos < body.size();) {
    std::size_t nl = body.find('\n', pos);
    std::size_t line = pos;
    pos = nl == std::string_view::npos ? body.size() : nl + 1;
    if (!starts_with_ci(body.substr(line), kField)) continue;
    std::size_t v = line + kField.size();
    while (v < body.size() && (body[v] == ' ' || body[v] == '\t')) ++v;
    std::string_view value = body.substr(v);
    for (auto [type, header_type] : {std::pair{"message/rfc822", "text/rfc822-headers"},
                                     std::pair{"message/global", "message/global-headers"}}) {
      std::size_t n = std::string_view(type).size();
      if (starts_with_ci(value, type) &&
          (value.size() == n || value[n] == ';' || value[n] == ' ' || value[n] == '\t' ||
           value[n] == '\r' || value[n] == '\n')) {
        out.append(body.substr(copied, v - copied)).append(header_type);
        copied = v + n;
        break;
      }
    }
  }
  out.append(body.substr(copied));
}

// `in` without an mbox "From " line, as Postfix's local(8) and pipe(8) may add.
std::string_view skip_mbox_line(std::string_view in) {
  if (!in.starts_with("From ")) return in;
  std::size_t nl = in.find('\n');
  return nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
}

// The report's own header block and its body: split at the first blank line (LF or CRLF). A
// message without one is all header.
struct TopLevel {
  std::string_view header;
  std::string_view body;
  bool ended = false;  // a blank line ended the header
};

TopLevel split_top_level(std::string_view in) {
  std::size_t lf = in.find("\n\n");
  std::size_t crlf = in.find("\n\r\n");
  std::size_t at = std::min(lf, crlf);
  if (at == std::string_view::npos) return {in, {}, false};
  std::size_t body = at + (at == lf ? 2 : 3);
  return {in.substr(0, at + 1), in.substr(body), true};
}

bool is_mime_field(const Field& f) {
  return f.name == "content-type" || f.name == "content-transfer-encoding";
}

// The report's own header fields, read here (field_block.h) rather than by GMime, which would
// make an object of each and parse every address field. As many fields, each as long, as the
// budget lets through (so a Content-Type below 200 Received fields, or a long one, is whole).
// Encoded words (RFC 2047) are decoded by GMime, for the subjects of auto-replies
// ("=?utf-8?q?R=C3=A9ponse_automatique?="); the MIME fields are handed to GMime as they are.
FieldBlock top_level_fields(std::string_view header, const ReportLimits& limits) {
  FieldBlock fields = read_header_block(header, limits.max_fields_in_a_row, limits.max_field_bytes);
  for (Field& f : fields) {
    if (!is_mime_field(f) && f.value.find("=?") != std::string::npos) {
      f.value = decode_header_text(f.value);
    }
  }
  return fields;
}

// Whether the report is a message forwarded whole (Content-Type: message/rfc822 or
// message/global, not encoded): a person or a mail filter passing a bounce on to the bounce
// address. The report is then the message inside.
bool forwards_a_message(const FieldBlock& headers) {
  bool forwarded = false;
  for (const Field& f : headers) {
    std::string value = to_lower_ascii(first_word(f.value));
    if (f.name == "content-type") {
      forwarded = value == "message/rfc822" || value == "message/global";
    } else if (f.name == "content-transfer-encoding" && value != "7bit" && value != "8bit" &&
               value != "binary") {
      return false;
    }
  }
  return forwarded;
}

// What GMime is handed: the body (its returned message relabelled), below the two fields of the
// report's header that say how to read it (RFC 2045: Content-Type and Content-Transfer-Encoding),
// unfolded.
std::string mime_entity(const FieldBlock& headers, std::string_view body) {
  std::string out;
  out.reserve(body.size() + 256);
  for (const Field& f : headers) {
    if (f.name == "content-type") {
      out.append("Content-Type: ").append(f.value).append("\r\n");
    } else if (f.name == "content-transfer-encoding") {
      out.append("Content-Transfer-Encoding: ").append(f.value).append("\r\n");
    }
  }
  out.append("\r\n");
  append_relabelled(out, body);
  return out;
}

// Reads the report's header fields and its body, as GMime parsed it, into `r`.
void read_entity(const FieldBlock& headers, GMimeObject* body, const ReportLimits& limits,
                 Report& r) {
  Parts parts;
  walk(body, 0, limits, parts);
  if (parts.cut)
    add_note(r, "the MIME structure is deeper or larger than the limits: not all of it was read");

  std::string text;
  std::string_view copy;
  if (parts.status) {
    read_dsn(part_text(parts.status), parts.global, limits, r);
  } else if (parts.feedback) {
    read_arf(part_text(parts.feedback), limits, r);
  } else if (parts.text) {
    text = part_text(parts.text);
    read_notice(text, limits, r, copy, from_mail_system(headers));
  }
  bool report = parts.status || parts.feedback || !r.recipients.empty() ||
                (body && is_type(body, "multipart", "report")) || from_mail_system(headers);
  if (!report && looks_auto_reply(headers)) r.kind = ReportKind::auto_reply;

  if (parts.original) {
    r.original = read_original(parts.original);
  } else if (!copy.empty()) {
    auto blocks = read_field_blocks(copy, 1);
    if (!blocks.empty()) r.original = original_from(blocks[0]);
  }
}

}  // namespace
}  // namespace bulkmail::bounce

namespace bulkmail {

std::string_view to_string(ReportKind kind) {
  switch (kind) {
    case ReportKind::bounce:
      return "bounce";
    case ReportKind::delay:
      return "delay";
    case ReportKind::complaint:
      return "complaint";
    case ReportKind::auto_reply:
      return "auto-reply";
    case ReportKind::unknown:
      break;
  }
  return "unknown";
}

Result<Report> parse_report(std::string_view message, const ReportLimits& limits) {
  std::string_view in = message;
  if (in.starts_with("\xEF\xBB\xBF")) in.remove_prefix(3);  // a UTF-8 byte-order mark
  in = bounce::skip_mbox_line(in);
  if (trim(in).empty()) return make_error("the input is empty: it is not a mail message");
  std::string_view first = in.substr(0, in.find('\n'));
  if (first.ends_with('\r')) first.remove_suffix(1);
  std::string_view name, value;
  if (!bounce::split_field(first, name, value))
    return make_error("the input is not a mail message: it does not begin with a header field");

  Report r;
  bounce::Cut cut = bounce::budget(in, limits);
  if (!cut.reason.empty()) bounce::add_note(r, cut.reason);
  in = in.substr(0, cut.length);

  bounce::init_gmime();
  bounce::TopLevel top = bounce::split_top_level(in);
  bounce::FieldBlock headers = bounce::top_level_fields(top.header, limits);
  // A forwarded report: read the message inside (a forward of a forward, one level more).
  for (int unwrapped = 0; unwrapped < 2 && top.ended && bounce::forwards_a_message(headers);
       ++unwrapped) {
    bounce::TopLevel inner = bounce::split_top_level(top.body);
    if (inner.header.empty()) break;
    bounce::add_note(r, "a forwarded message: the report inside it was read");
    top = inner;
    headers = bounce::top_level_fields(top.header, limits);
  }
  if (!top.ended) bounce::add_note(r, "the input ends inside its header: there is no body");
  std::string entity = bounce::mime_entity(headers, top.body);
  bounce::GRef<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(entity.data(), entity.size()));
  bounce::GRef<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  bounce::GRef<GMimeObject> body(g_mime_parser_construct_part(parser.get(), nullptr));
  if (body) {
    bounce::read_entity(headers, body.get(), limits, r);
  } else {
    bounce::add_note(r, "GMime could not read the body: nothing else was read");
  }
  return r;
}

}  // namespace bulkmail
