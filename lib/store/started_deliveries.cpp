#include "store/started_deliveries.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/read_file.h"

namespace bulkmail {
namespace {

constexpr std::size_t kSlot = 8;

void write_slot(unsigned char* out, std::uint64_t v) {
  for (std::size_t i = 0; i < kSlot; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}

}  // namespace

Result<std::unique_ptr<StartedDeliveries>> StartedDeliveries::open(
    const std::filesystem::path& database, int senders) {
  std::filesystem::path path = database;
  path += "-started";
  std::optional<std::vector<MessageId>> left;
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    auto data = read_file(path);
    if (!data) return data.error();
    left.emplace();
    for (std::size_t off = 0; off + kSlot <= data->size(); off += kSlot) {
      std::uint64_t v = 0;
      for (std::size_t i = 0; i < kSlot; ++i)
        v |= std::uint64_t{static_cast<unsigned char>((*data)[off + i])} << (8 * i);
      if (v) left->push_back(static_cast<MessageId>(v));
    }
  }
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return make_error("cannot open " + path.string() + ": " + std::strerror(errno));
  std::vector<unsigned char> zeros(kSlot * static_cast<std::size_t>(senders > 0 ? senders : 0));
  if (!zeros.empty() &&
      ::pwrite(fd.get(), zeros.data(), zeros.size(), 0) != static_cast<ssize_t>(zeros.size())) {
    int err = errno;
    return make_error("cannot write " + path.string() + ": " + std::strerror(err));
  }
  std::unique_ptr<StartedDeliveries> s(new StartedDeliveries(path, std::move(fd)));
  s->left_ = std::move(left);
  return s;
}

void StartedDeliveries::mark(int sender, MessageId id) {
  unsigned char slot[kSlot];
  write_slot(slot, static_cast<std::uint64_t>(id));
  auto off = static_cast<off_t>(kSlot * static_cast<std::size_t>(sender));
  if (::pwrite(fd_.get(), slot, kSlot, off) != static_cast<ssize_t>(kSlot) &&
      !failed_.exchange(true)) {
    ::unlink(path_.c_str());
  }
}

}  // namespace bulkmail
