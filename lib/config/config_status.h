// Whether the config the daemon runs on is the one on disk: after a SIGHUP whose file is invalid,
// the daemon keeps the config in effect, and says so in /healthz, /metrics and `bulkmailctl
// status` until a reload succeeds.
#pragma once

#include <string>

#include "base/clock.h"

namespace bulkmail {

struct ConfigStatus {
  UnixMillis loaded_at = 0;  // when the config in effect was loaded (start, or the last reload)
  // Set after a failed reload: the first problem found, with its file, line and key, and how
  // many more there were. Empty while the config in effect is the file's.
  std::string reload_problem;
  UnixMillis reload_failed_at = 0;

  bool reload_failed() const { return !reload_problem.empty(); }
  // "the config file is invalid (bulkmail.yaml:51:24: throttle...: must not be negative, and 2
  // more problems) since 2026-11-29T05:00:00.000Z; still running on the config loaded at ..."
  std::string describe() const;
};

}  // namespace bulkmail
