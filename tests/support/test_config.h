// A valid bulkmail config in a temporary folder, with its secret files, pointing at the project's
// real templates. Tests change one thing at a time to see exactly that thing refused.
#pragma once

#include <string>

#include "temp_dir.h"

namespace bulkmail::test {

// The project's source folder (templates/, config/), from the build.
std::string source_dir();
// The folder holding the built binaries.
std::string bin_dir();

// A 64-character hex secret, valid for unsubscribe.secret_file and webhook.api_token_file.
inline const char* kTestSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// The YAML text of a valid config whose relative paths resolve inside `dir`.
std::string valid_config_yaml();

// Writes valid_config_yaml() (or `yaml`) and its secret files (mode 0600) into `dir`; returns the
// config path.
std::string write_config(const TempDir& dir, const std::string& yaml = valid_config_yaml());

// Generates an Ed25519 key as dkim.pem in `dir` (openssl genpkey) and returns the config block that
// signs with it (domain mail.example.com, selector s1), to append to valid_config_yaml().
std::string dkim_config_block(const TempDir& dir);

}  // namespace bulkmail::test
