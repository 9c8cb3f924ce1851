#include "restart_keys.h"

namespace bulkmail {

std::vector<std::string> needs_restart(const Config& running, const Config& fresh) {
  const WebhookConfig& a = running.webhook;
  const WebhookConfig& b = fresh.webhook;
  std::pair<const char*, bool> keys[] = {
      {"database", running.database != fresh.database},
      {"smtp.max_connections", running.smtp.max_connections != fresh.smtp.max_connections},
      {"webhook.listen", a.listen_host != b.listen_host || a.listen_port != b.listen_port},
      {"webhook.max_connections", a.max_connections != b.max_connections},
      {"webhook.max_connections_per_client",
       a.max_connections_per_client != b.max_connections_per_client},
      {"webhook.loopback_reserve", a.loopback_reserve != b.loopback_reserve},
  };
  std::vector<std::string> changed;
  for (const auto& [name, differs] : keys) {
    if (differs) changed.emplace_back(name);
  }
  return changed;
}

std::string restart_warning(const std::vector<std::string>& keys) {
  std::string list;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    list += i == 0 ? "" : i + 1 == keys.size() ? " and " : ", ";
    list += keys[i];
  }
  if (list.empty()) return list;
  return list + (keys.size() == 1 ? " changed but takes" : " changed but take") +
         " effect only after a restart";
}

}  // namespace bulkmail
