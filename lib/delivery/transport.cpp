#include "delivery/transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

namespace bulkmail {
namespace {

struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

CurlTransport::CurlTransport(const SmtpConfig& smtp, const std::string& default_helo,
                             const std::atomic<bool>* abort)
    : smtp_(smtp), abort_(abort) {
  // The URL's path is the name libcurl sends in EHLO.
  std::string base = smtp.url;
  auto scheme_end = base.find("://");
  auto path = base.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  if (path != std::string::npos) base.resize(path);
  url_ = base + "/" + (smtp.helo.empty() ? default_helo : smtp.helo);
  setup();
}

CurlTransport::~CurlTransport() = default;

void CurlTransport::setup() {
  easy_.reset(curl_easy_init());
  if (!easy_) throw std::runtime_error("curl_easy_init failed");
  CURL* e = easy_.get();
  curl_easy_setopt(e, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);  // sender threads: no SIGALRM for timeouts
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error_);
  curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, static_cast<long>(smtp_.connect_timeout_seconds));
  curl_easy_setopt(e, CURLOPT_TIMEOUT, static_cast<long>(smtp_.message_timeout_seconds));
  switch (smtp_.tls) {
    case SmtpConfig::Tls::required:
      curl_easy_setopt(e, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL));
      break;
    case SmtpConfig::Tls::opportunistic:
      curl_easy_setopt(e, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_TRY));
      break;
    case SmtpConfig::Tls::none:
      curl_easy_setopt(e, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_NONE));
      break;
  }
  // The relay's certificate is always verified (name and chain); ca_file trusts a private CA.
  if (!smtp_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, smtp_.ca_file.c_str());
  if (!smtp_.username.empty()) {
    curl_easy_setopt(e, CURLOPT_USERNAME, smtp_.username.c_str());
    curl_easy_setopt(e, CURLOPT_PASSWORD, smtp_.password.c_str());
  }
  // libcurl hands every SMTP reply line to the header callback: keep the last one, so outcomes
  // record what the relay actually said. (Its debug callback sees them too, but CURLOPT_VERBOSE
  // costs about 5 us of formatting per message.)
  curl_easy_setopt(e, CURLOPT_HEADERDATA, this);
  curl_easy_setopt(
      e, CURLOPT_HEADERFUNCTION, +[](char* buf, size_t size, size_t n, void* self) -> size_t {
        auto* t = static_cast<CurlTransport*>(self);
        std::string_view line(buf, size * n);
        // After a refusal libcurl sends QUIT; its "221" answer is not the reply that matters.
        if (line.rfind("221", 0) != 0) assign_reply_line(t->last_reply_, line);
        return size * n;
      });
  // Aborting: interrupt() shuts the socket down under libcurl's feet, which fails the transfer
  // at once wherever it waits. (A progress callback would do too, but libcurl calls it on every
  // turn of its loop: about 8 us a message in the fast-sink benchmark.) Once aborting, no new
  // connection is opened.
  curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(
      e, CURLOPT_OPENSOCKETFUNCTION,
      +[](void* self, curlsocktype, curl_sockaddr* a) -> curl_socket_t {
        auto* t = static_cast<CurlTransport*>(self);
        std::lock_guard lock(t->socket_mu_);
        if (t->aborting()) return CURL_SOCKET_BAD;
        t->socket_ = ::socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
        return t->socket_;
      });
  curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, this);
  curl_easy_setopt(
      e, CURLOPT_CLOSESOCKETFUNCTION, +[](void* self, curl_socket_t fd) -> int {
        auto* t = static_cast<CurlTransport*>(self);
        std::lock_guard lock(t->socket_mu_);
        if (t->socket_ == fd) t->socket_ = CURL_SOCKET_BAD;
        return ::close(fd);
      });
  curl_easy_setopt(e, CURLOPT_READDATA, this);
  curl_easy_setopt(
      e, CURLOPT_READFUNCTION, +[](char* buf, size_t size, size_t n, void* self) -> size_t {
        auto* t = static_cast<CurlTransport*>(self);
        std::size_t want = std::min(size * n, t->upload_.size() - t->upload_pos_);
        std::memcpy(buf, t->upload_.data() + t->upload_pos_, want);
        t->upload_pos_ += want;
        return want;
      });
}

AttemptResult CurlTransport::deliver(const Envelope& env, std::string_view data) {
  CURL* e = easy_.get();
  std::string from = "<" + env.mail_from + ">";
  std::unique_ptr<curl_slist, SlistFree> rcpt(
      curl_slist_append(nullptr, ("<" + env.rcpt_to + ">").c_str()));
  curl_easy_setopt(e, CURLOPT_MAIL_FROM, from.c_str());
  curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(data.size()));
  upload_ = data;
  upload_pos_ = 0;
  error_[0] = '\0';
  last_reply_.clear();
  AttemptResult r;
  r.curl_code = curl_easy_perform(e);
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.response_code);
  curl_off_t pretransfer = 0;
  curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
  r.reached_transfer = pretransfer > 0;
  r.error_text = error_;
  r.last_reply = last_reply_;
  curl_easy_setopt(e, CURLOPT_MAIL_RCPT, nullptr);
  upload_ = {};
  return r;
}

void CurlTransport::drop_connection() { setup(); }

bool CurlTransport::aborting() const {
  return interrupted_.load(std::memory_order_relaxed) ||
         (abort_ && abort_->load(std::memory_order_relaxed));
}

void CurlTransport::interrupt() {
  interrupted_ = true;
  std::lock_guard lock(socket_mu_);
  if (socket_ != CURL_SOCKET_BAD) ::shutdown(socket_, SHUT_RDWR);
}

}  // namespace bulkmail
