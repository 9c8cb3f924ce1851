#include "web/form_data.h"

#include "base/text.h"

namespace bulkmail {
namespace {

// `header` parameter `name` (e.g. boundary, name), unquoted; nullopt when absent.
std::optional<std::string> header_parameter(std::string_view header, std::string_view name) {
  std::size_t pos = header.find(';');
  while (pos != std::string_view::npos) {
    std::size_t next = header.find(';', pos + 1);
    std::string_view param = trim(header.substr(
        pos + 1, next == std::string_view::npos ? std::string_view::npos : next - pos - 1));
    std::size_t eq = param.find('=');
    if (eq != std::string_view::npos && to_lower_ascii(trim(param.substr(0, eq))) == name) {
      std::string_view value = trim(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"') {
        // A quoted string may hold ';': take it up to its closing quote.
        std::size_t close = header.find('"', header.find('"', pos) + 1);
        if (close == std::string_view::npos) return std::nullopt;
        std::size_t open = header.find('"', pos);
        return std::string(header.substr(open + 1, close - open - 1));
      }
      return std::string(value);
    }
    pos = next;
  }
  return std::nullopt;
}

}  // namespace

std::string media_type(std::string_view content_type) {
  return to_lower_ascii(trim(content_type.substr(0, content_type.find(';'))));
}

Result<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 1 < s.size() ? hex_digit_value(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex_digit_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return make_error("a '%' is not followed by two hex digits");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
      continue;
    }
    out += (plus_is_space && c == '+') ? ' ' : c;
  }
  return out;
}

Result<FormFields> parse_urlencoded(std::string_view body) {
  FormFields fields;
  std::size_t pos = 0;
  while (pos <= body.size()) {
    std::size_t amp = body.find('&', pos);
    std::string_view piece =
        body.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    if (!piece.empty()) {
      std::size_t eq = piece.find('=');
      auto name = percent_decode(piece.substr(0, eq), true);
      if (!name) return name.error();
      auto value = percent_decode(
          eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1), true);
      if (!value) return value.error();
      fields.emplace_back(std::move(*name), std::move(*value));
    }
    if (amp == std::string_view::npos) break;
    pos = amp + 1;
  }
  return fields;
}

Result<FormFields> parse_multipart(std::string_view body, std::string_view boundary) {
  if (boundary.empty() || boundary.size() > 70) return make_error("bad multipart boundary");
  const std::string delimiter = "--" + std::string(boundary);
  const std::string line_delimiter = "\r\n" + delimiter;
  FormFields fields;
  // The first delimiter opens the body or a line of its own after a preamble (RFC 2046 5.1.1).
  std::size_t pos = 0;
  if (body.substr(0, delimiter.size()) != delimiter) {
    pos = body.find(line_delimiter);
    if (pos == std::string_view::npos)
      return make_error("the multipart body has no opening boundary");
    pos += 2;
  }
  pos += delimiter.size();
  while (true) {
    if (body.substr(pos, 2) == "--") return fields;  // the closing delimiter
    if (body.substr(pos, 2) != "\r\n") return make_error("a multipart boundary line is malformed");
    pos += 2;
    // The part's headers end with an empty line, which is all there is of a part without any.
    bool no_headers = body.substr(pos, 2) == "\r\n";
    std::size_t blank = no_headers ? pos : body.find("\r\n\r\n", pos);
    if (blank == std::string_view::npos) return make_error("a multipart part has no body");
    std::string_view headers = no_headers ? std::string_view() : body.substr(pos, blank - pos + 2);
    std::size_t content_begin = no_headers ? pos + 2 : blank + 4;
    std::size_t next = body.find(line_delimiter, content_begin);
    if (next == std::string_view::npos) return make_error("the multipart body is not closed");
    std::optional<std::string> name;
    std::size_t line_begin = 0;
    while (line_begin < headers.size()) {
      std::size_t line_end = headers.find("\r\n", line_begin);
      std::string_view line = headers.substr(line_begin, line_end - line_begin);
      line_begin = line_end + 2;
      std::size_t colon = line.find(':');
      if (colon == std::string_view::npos)
        return make_error("a multipart part header is malformed");
      if (to_lower_ascii(trim(line.substr(0, colon))) != "content-disposition") continue;
      std::string_view value = line.substr(colon + 1);
      if (media_type(value) != "form-data") return make_error("a part is not form-data");
      if (header_parameter(value, "filename")) return make_error("file uploads are not accepted");
      name = header_parameter(value, "name");
    }
    if (!name) return make_error("a multipart part has no field name");
    fields.emplace_back(std::move(*name),
                        std::string(body.substr(content_begin, next - content_begin)));
    pos = next + 2 + delimiter.size();
  }
}

Result<FormFields> parse_form(std::string_view content_type, std::string_view body) {
  std::string type = media_type(content_type);
  if (type.empty() || type == "application/x-www-form-urlencoded") return parse_urlencoded(body);
  if (type == "multipart/form-data") {
    auto boundary = header_parameter(content_type, "boundary");
    if (!boundary) return make_error("multipart/form-data without a boundary");
    return parse_multipart(body, *boundary);
  }
  return make_error("unsupported content type " + type);
}

std::optional<std::string_view> form_value(const FormFields& fields, std::string_view name) {
  for (const auto& [n, v] : fields) {
    if (n == name) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<std::string> query_value(std::string_view query, std::string_view name) {
  auto fields = parse_urlencoded(query);
  if (!fields) return std::nullopt;
  auto v = form_value(*fields, name);
  return v ? std::optional<std::string>(std::string(*v)) : std::nullopt;
}

}  // namespace bulkmail
