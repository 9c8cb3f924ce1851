// Runs a real program, feeding its standard input and capturing its output and exit status.
#pragma once

#include <string>
#include <vector>

namespace bulkmail::test {

struct ProcessResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
};

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = "",
                          const std::vector<std::string>& extra_env = {});

// Peak resident set size of the last child waited for, in KiB (getrusage RUSAGE_CHILDREN maximum).
long children_max_rss_kib();

}  // namespace bulkmail::test
