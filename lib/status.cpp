#include "status.h"

namespace bulkmail {

nlohmann::json status_json(const StateCounts& counts) {
  nlohmann::json j = nlohmann::json::object();
  for (MessageState s : kAllMessageStates) j[std::string(to_string(s))] = counts[s];
  return j;
}

}  // namespace bulkmail
