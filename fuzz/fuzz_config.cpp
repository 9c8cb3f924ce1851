// The YAML config: read once at start and on every SIGHUP, written by hand.
//
// Input: the config file's text, in the sandbox (sandbox.h): templates and secrets beside it.
//
// Properties: any text gives a config or errors, never an exception or a crash; a config that
// loads has nothing that reaches a header or a footer with a line break in it; every error and
// warning says what is wrong at a place inside the file. (Each is printed as one printable line
// whatever the file held: ConfigError::str() makes it so, and config_test checks it.)
#include <algorithm>
#include <filesystem>
#include <string>

#include "config/config.h"
#include "fuzz_check.h"
#include "sandbox.h"

using namespace bulkmail;
namespace fs = std::filesystem;

namespace {

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
  // Each problem says what is wrong, at a place inside the file.
  auto lines = static_cast<int>(std::count(data, data + size, '\n')) + 1;
  for (const auto* list : {&load.errors, &load.warnings}) {
    for (const auto& e : *list) {
      FUZZ_CHECK(!e.message.empty());
      FUZZ_CHECK(e.line >= 0 && e.line <= lines);
      FUZZ_CHECK(e.column >= 0);
    }
  }
  return 0;
}
