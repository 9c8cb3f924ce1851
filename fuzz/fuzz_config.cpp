// The YAML config: read once at start and on every SIGHUP, written by hand.
//
// Input: the config file's text, in the sandbox (sandbox.h): templates and secrets beside it.
//
// Properties: any text gives a config or errors, never an exception or a crash; a config that
// loads has nothing that reaches a header or a footer with a line break in it; every error and
// warning is one printable line, whatever bytes the file held (the operator reads them in a
// terminal and in the journal).
#include <filesystem>
#include <string>

#include "config/config.h"
#include "fuzz_check.h"
#include "sandbox.h"

using namespace bulkmail;
namespace fs = std::filesystem;

namespace {

bool printable_line(std::string_view s) {
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

void check_loaded(const Config& c) {
  for (std::string_view s :
       {std::string_view(c.sender.organization), std::string_view(c.sender.postal_address),
        std::string_view(c.sender.from.display_name), std::string_view(c.sender.feedback_id),
        std::string_view(c.smtp.helo), std::string_view(c.unsubscribe.url)})
    FUZZ_CHECK(!fuzz::has_line_break(s));
  if (c.dkim) {
    FUZZ_CHECK(!fuzz::has_line_break(c.dkim->domain));
    FUZZ_CHECK(!fuzz::has_line_break(c.dkim->selector));
  }
  for (const auto& [name, category] : c.categories) {
    FUZZ_CHECK(!fuzz::has_line_break(name));
    FUZZ_CHECK(!fuzz::has_line_break(category.description));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  fs::path file = fuzz::sandbox() / "bulkmail.yaml";
  fuzz::write_file(file, fuzz::text(data, size));
  ConfigLoad load = load_config(file);
  FUZZ_CHECK(load.ok() == (load.config != nullptr));
  if (load.config) check_loaded(*load.config);
  for (const auto& e : load.errors) FUZZ_CHECK(printable_line(e.str()));
  for (const auto& w : load.warnings) FUZZ_CHECK(printable_line(w.str()));
  return 0;
}
