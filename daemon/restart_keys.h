// What a SIGHUP cannot change. The daemon reloads templates, categories, throttles, retries, keys
// and logging in place; the database, the number of sender threads and the webhook's socket and
// connection caps are fixed when it starts, and a changed value waits for a restart.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace bulkmail {

// The keys whose value differs between `running` and `fresh` but stays as in `running` until a
// restart, by name ("smtp.max_connections"), in the order of the config file.
std::vector<std::string> needs_restart(const Config& running, const Config& fresh);

// The warning a reload logs for them: "smtp.max_connections and webhook.listen changed but take
// effect only after a restart". Empty when `keys` is.
std::string restart_warning(const std::vector<std::string>& keys);

}  // namespace bulkmail
