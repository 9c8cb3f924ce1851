#include "config/config_status.h"

namespace bulkmail {

std::string ConfigStatus::describe() const {
  if (!reload_failed()) return "";
  return "the config file is invalid (" + reload_problem + ") since " +
         format_iso8601(reload_failed_at) + "; still running on the config loaded at " +
         format_iso8601(loaded_at);
}

}  // namespace bulkmail
