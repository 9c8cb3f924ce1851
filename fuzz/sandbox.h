// A folder of its own for a fuzz target that needs files: a config's templates and secrets, a
// queue database. Made on first use in the temporary folder, removed when the process exits.
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "config/config.h"

namespace bulkmail::fuzz {

// Holds templates/customer-update and templates/research-invitation, unsubscribe.key and
// api.token (mode 0600).
const std::filesystem::path& sandbox();

// Writes `text` to `path`, replacing it.
void write_file(const std::filesystem::path& path, std::string_view text);

// A config that loads from the sandbox: both categories, the API on with kApiToken, the
// unsubscribe links under https://mail.bulkmail-fuzz.net/unsubscribe, the queue in the sandbox's
// q.db.
std::shared_ptr<const Config> sandbox_config();
inline constexpr std::string_view kApiToken = "an api token of thirty-two characters at least";

}  // namespace bulkmail::fuzz
