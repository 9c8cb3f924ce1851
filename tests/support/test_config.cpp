#include "test_config.h"

#include <cstdlib>
#include <stdexcept>

namespace bulkmail::test {

std::string source_dir() { return BULKMAIL_TEST_SOURCE_DIR; }
std::string bin_dir() { return BULKMAIL_TEST_BIN_DIR; }

std::string valid_config_yaml() {
  return "database: queue.db\n"
         "templates: " +
         source_dir() +
         "/templates\n"
         "sender:\n"
         "  organization: Example Telecom, Inc.\n"
         "  postal_address: 100 Example Parkway, Cary, NC 27513, USA\n"
         "  from: \"Example Telecom <updates@mail.example.com>\"\n"
         "  reply_to: support@example.com\n"
         "smtp:\n"
         "  url: smtp://127.0.0.1:2525\n"
         "  max_connections: 4\n"
         "throttle:\n"
         "  messages_per_second: 100\n"
         "unsubscribe:\n"
         "  url: https://mail.example.com/unsubscribe\n"
         "  secret_file: unsubscribe.key\n"
         "webhook:\n"
         "  listen: 127.0.0.1:8025\n"
         "  api_token_file: api.token\n"
         "categories:\n"
         "  customer-update: { template: customer-update, description: \"Updates about your "
         "services\" }\n"
         "  research-invitation: { template: research-invitation, description: \"Invitations to "
         "take part in research\" }\n";
}

std::string write_config(const TempDir& dir, const std::string& yaml) {
  // Secret files as an operator must keep them: the owner's alone, whatever the umask.
  for (const char* name : {"unsubscribe.key", "api.token"}) {
    auto path = dir.write(name, std::string(kTestSecret) + "\n");
    std::filesystem::permissions(
        path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  return dir.write("bulkmail.yaml", yaml).string();
}

std::string dkim_config_block(const TempDir& dir) {
  std::string command = "openssl genpkey -algorithm ed25519 -out " +
                        (dir.path() / "dkim.pem").string() + " 2>/dev/null";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("openssl genpkey failed");
  return "dkim:\n  domain: mail.example.com\n  selector: s1\n  key_file: dkim.pem\n";
}

}  // namespace bulkmail::test
