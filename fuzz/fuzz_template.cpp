// Templates and their variables: the variables come from import files and the API, the templates
// from an operator who may be careless.
//
// Input: the subject template's line, then the variables as the store holds them (a JSON object
// on one line), then the text template, and after a line "====" the HTML template.
//
// Properties: rendering ends with the parts or an error, never a crash; the subject is one line
// (it becomes a header); the HTML has no more '<', '>', '"' or '\'' than its template (every
// value is escaped there); variables the store accepts survive a trip through it unchanged.
#include <algorithm>
#include <filesystem>
#include <string>

#include "compose/message_template.h"
#include "compose/vars.h"
#include "fuzz_check.h"
#include "sandbox.h"

using namespace bulkmail;

namespace {

std::filesystem::path folder() { return fuzz::sandbox() / "templates" / "fuzzed"; }

void write(const char* name, std::string_view text) { fuzz::write_file(folder() / name, text); }

std::string without_breaks(std::string_view s) {
  std::string out;
  for (std::size_t at = 0; at < s.size();) {
    if (s.substr(at, 5) == "<br>\n") {
      at += 5;
    } else {
      out += s[at++];
    }
  }
  return out;
}

std::size_t count(std::string_view s, char c) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), c));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::string_view in = fuzz::text(data, size);
  std::string_view subject = fuzz::take(in);
  std::string_view vars_json = fuzz::take(in);
  std::size_t cut = in.find("\n====\n");
  std::string_view text = in.substr(0, cut);
  std::string_view html = cut == std::string_view::npos ? "" : in.substr(cut + 6);

  auto vars = vars_from_json(vars_json);
  if (!vars) return 0;
  auto stored = vars_to_json(vars.value());
  if (stored) {
    auto back = vars_from_json(stored.value());
    FUZZ_CHECK(back && back.value() == vars.value());
  }
  std::filesystem::create_directories(folder());
  write("subject", subject);
  write("text", text);
  write("html", html);
  auto tmpl = MessageTemplate::load(folder());
  if (!tmpl) return 0;
  auto parts = tmpl.value()->render(vars.value());
  if (!parts) return 0;
  FUZZ_CHECK(!fuzz::has_line_break(parts.value().subject));
  // A value's line breaks become "<br>\n" in HTML (html_escape_lines): those are bulkmail's own.
  std::string out = without_breaks(parts.value().html), source = without_breaks(html);
  for (char c : {'<', '>', '"', '\''}) FUZZ_CHECK(count(out, c) <= count(source, c));
  return 0;
}
