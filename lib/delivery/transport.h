// Delivering one message over SMTP. The Transport interface keeps the dispatcher testable; the real
// one is CurlTransport: one libcurl easy handle whose connection is reused from message to message.
// Each sender has a CurlTransport of its own, because one multi handle shared by the connections
// stalls them all on a slow relay.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "config/config.h"
#include "delivery/smtp_reply.h"

namespace bulkmail {

struct Envelope {
  std::string mail_from;  // the return path
  std::string rcpt_to;    // one recipient per transaction
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Sends `data` to `rcpt_to`. Never throws for anything the network or relay does.
  virtual AttemptResult deliver(const Envelope& envelope, std::string_view data) = 0;
  // Closes the connection (after a 421 or a failure that leaves it in an unknown state).
  virtual void drop_connection() = 0;
  // From any thread: makes a delivery in progress fail at once, and every later one.
  virtual void interrupt() = 0;
};

// libcurl's process-wide state, set up for as long as this lives: a program makes one before any
// CurlTransport, in main, before other threads start, and it cleans up on every path out.
class CurlGlobal {
 public:
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
  ~CurlGlobal() { curl_global_cleanup(); }
  CurlGlobal(const CurlGlobal&) = delete;
  CurlGlobal& operator=(const CurlGlobal&) = delete;
};

class CurlTransport final : public Transport {
 public:
  // `abort`, when set, keeps new connections from being opened (interrupt() ends the current one).
  CurlTransport(const SmtpConfig& smtp, const std::string& default_helo,
                const std::atomic<bool>* abort = nullptr);
  ~CurlTransport() override;
  AttemptResult deliver(const Envelope& envelope, std::string_view data) override;
  void drop_connection() override;
  void interrupt() override;

 private:
  struct EasyFree {
    void operator()(CURL* c) const { curl_easy_cleanup(c); }
  };
  void setup();
  bool aborting() const;

  SmtpConfig smtp_;
  const std::atomic<bool>* abort_;
  std::atomic<bool> interrupted_{false};
  std::mutex socket_mu_;  // the callbacks and interrupt() agree on which socket is open
  curl_socket_t socket_ = CURL_SOCKET_BAD;
  std::string url_;
  std::unique_ptr<CURL, EasyFree> easy_;
  char error_[CURL_ERROR_SIZE] = {};
  std::string last_reply_;
  std::string_view upload_;
  std::size_t upload_pos_ = 0;
};

}  // namespace bulkmail
