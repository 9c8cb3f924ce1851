// The reference for the fast-sink benchmark: bare libcurl sending one prebuilt message N times
// from T threads, each with one easy handle whose SMTP connection is reused. No queue, no
// composition, no store: the ceiling bulkmaild is compared against.
// Usage: curl_reference URL MESSAGES THREADS MESSAGE_FILE   (prints msg/s)
#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {
struct Upload {
  const std::string* data;
  std::size_t pos;
};
size_t read_cb(char* buf, size_t size, size_t n, void* p) {
  auto* u = static_cast<Upload*>(p);
  std::size_t want = std::min(size * n, u->data->size() - u->pos);
  std::memcpy(buf, u->data->data() + u->pos, want);
  u->pos += want;
  return want;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s URL MESSAGES THREADS MESSAGE_FILE\n", argv[0]);
    return 2;
  }
  std::string url = argv[1];
  long total = std::stol(argv[2]);
  int threads = std::stoi(argv[3]);
  std::ifstream in(argv[4], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string message = ss.str();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::atomic<long> next{0}, failed{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      CURL* e = curl_easy_init();
      curl_slist* rcpt = curl_slist_append(nullptr, "<b@y.test>");
      curl_easy_setopt(e, CURLOPT_URL, url.c_str());
      curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(e, CURLOPT_MAIL_FROM, "<a@x.test>");
      curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpt);
      curl_easy_setopt(e, CURLOPT_READFUNCTION, read_cb);
      curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(message.size()));
      Upload u{&message, 0};
      curl_easy_setopt(e, CURLOPT_READDATA, &u);
      while (next.fetch_add(1) < total) {
        u.pos = 0;
        if (curl_easy_perform(e) != CURLE_OK) ++failed;
      }
      curl_slist_free_all(rcpt);
      curl_easy_cleanup(e);
    });
  }
  for (auto& th : pool) th.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.0f\n", static_cast<double>(total - failed) / secs);
  curl_global_cleanup();
  return failed ? 1 : 0;
}
