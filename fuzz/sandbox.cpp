#include "sandbox.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "fuzz_check.h"

namespace bulkmail::fuzz {

namespace fs = std::filesystem;

void write_file(const fs::path& path, std::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  FUZZ_CHECK(out.good());
}

namespace {

// The folder, removed with everything in it when the process exits.
struct Folder {
  fs::path path;
  ~Folder() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

Folder make_sandbox() {
  std::string d = (fs::temp_directory_path() / "bulkmail-fuzz-XXXXXX").string();
  FUZZ_CHECK(mkdtemp(d.data()) != nullptr);
  fs::path p(d);
  for (const char* name : {"customer-update", "research-invitation"}) {
    fs::create_directories(p / "templates" / name);
    write_file(p / "templates" / name / "subject", "News for {{first_name}}\n");
    write_file(p / "templates" / name / "text", "Hello {{first_name}}.\n");
    write_file(p / "templates" / name / "html", "<p>Hello {{first_name}}.</p>\n");
  }
  write_file(p / "unsubscribe.key", "a secret of thirty-two characters at least, for fuzzing\n");
  write_file(p / "api.token", std::string(kApiToken) + "\n");
  chmod((p / "unsubscribe.key").c_str(), 0600);
  chmod((p / "api.token").c_str(), 0600);
  return {p};
}

}  // namespace

const fs::path& sandbox() {
  static const Folder folder = make_sandbox();
  return folder.path;
}

std::shared_ptr<const Config> sandbox_config() {
  static const std::shared_ptr<const Config> config = [] {
    fs::path file = sandbox() / "webhook.yaml";
    write_file(file, R"(database: q.db
templates: templates
sender:
  organization: Fuzzing Telecom, Inc.
  postal_address: 1 Fuzz Way, Cary, NC 27513, USA
  from: "Fuzzing Telecom <updates@mail.bulkmail-fuzz.net>"
smtp:
  url: smtp://127.0.0.1:2525
unsubscribe:
  url: https://mail.bulkmail-fuzz.net/unsubscribe
  secret_file: unsubscribe.key
webhook:
  listen: 127.0.0.1:8025
  api_token_file: api.token
categories:
  customer-update: { template: customer-update, description: "Updates about your services" }
  research-invitation: { template: research-invitation, description: "Invitations to studies" }
)");
    ConfigLoad load = load_config(file);
    if (!load.ok()) {
      for (const auto& e : load.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
      FUZZ_CHECK(load.ok());
    }
    return load.config;
  }();
  return config;
}

}  // namespace bulkmail::fuzz
