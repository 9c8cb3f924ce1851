// The webhook's routes: what each HTTP request means and what it answers. Served by http_server.h
// inside bulkmaild.
//
//   GET|HEAD <unsubscribe path>/<token>   confirmation page; never changes anything
//   POST <unsubscribe path>/<token>       RFC 8058 one-click body: stops what the link says (the
//                                         token's category, all mail with ?scope=all); or the
//                                         page's scope=category|all, which says it instead
//   /api/v1/...                           bearer-token API (off without webhook.api_token_file);
//                                         JSON bodies with no key twice (json_strict.h):
//     GET|HEAD status[?campaign=NAME]     status_json, or campaign_status_json (store/status.h)
//     POST messages, POST suppressions    queue a message; add a suppression
//     GET|HEAD|DELETE suppressions/ADDR   the suppression in effect; lift it
//     GET|HEAD campaigns                  campaign_json of every campaign, oldest first
//     GET|HEAD campaigns/NAME             campaign_json
//     POST campaigns/NAME/pause|resume    as bulkmailctl pause and resume: campaign_json after it,
//                                         "changed" (false: it already was), and how many
//                                         waiting messages were "held" or "released"
//   GET /healthz, GET /metrics
//
// A route that throws (a bug) is answered 500; every answer, 500s included, is counted by route
// and status for /metrics.
//
// Routes never touch SQLite or the dispatcher themselves: they ask the WebhookBackend, which does
// the work on the daemon's threads and answers through a callback.
#pragma once

#include <utility>  // before Boost.Asio: Boost 1.74 uses std::exchange without including it

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "compose/composer.h"
#include "config/config.h"
#include "config/config_status.h"
#include "crypto/unsubscribe_token.h"
#include "delivery/dispatch_stats.h"
#include "intake/submission.h"
#include "store/store.h"
#include "store/suppression.h"
#include "web/metrics.h"
#include "web/unsubscribe_page.h"

namespace bulkmail {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;
using Responder = std::function<void(HttpResponse)>;

// What the routes need from the running daemon. Callbacks run on whichever thread did the work.
class WebhookBackend {
 public:
  virtual ~WebhookBackend() = default;
  // Records opt-outs durably, many in one transaction; `done(true)` once committed, `done(false)`
  // when the database failed.
  virtual void opt_out(Suppression s, std::function<void(bool)> done) = 0;
  // Runs `fn` on the store's writer thread (changes) or on a reader (queries), so that neither
  // the webhook's threads nor deliveries wait for the other's SQLite work.
  virtual void write(std::function<void(Store&)> fn) = 0;
  virtual void read(std::function<void(Store&)> fn) = 0;
  // A copy of the dispatcher's numbers, taken on its event loop (so an answer also proves the
  // loop is alive).
  virtual void dispatch_stats(std::function<void(DispatchStats)> done) = 0;
};

class Webhook {
 public:
  // `checker`: a composer made from `config` for the API's compose check (Composer::clone(false));
  // without one, the check loads the templates itself.
  Webhook(std::shared_ptr<const Config> config, WebhookBackend& backend,
          std::unique_ptr<Composer> checker = nullptr);

  // SIGHUP: new keys, categories, API token. Requests already running finish with the old ones.
  void reload(std::shared_ptr<const Config> config, std::unique_ptr<Composer> checker = nullptr);

  // Answers `req` through `respond`, exactly once, possibly from another thread.
  void handle(HttpRequest req, Responder respond);

  WebhookCounters& counters() { return counters_; }

  // Whether the config in effect is the file's (a failed reload keeps the older one): /healthz
  // answers "degraded" with the reason while it is not, and /metrics says so.
  void set_config_status(ConfigStatus status);

 private:
  struct State {
    std::shared_ptr<const Config> config;
    std::unique_ptr<TokenCodec> tokens;
    // The opt-out pages rendered for this config: replaced with it on reload.
    std::unique_ptr<const UnsubscribePages> pages;
    // Composes each queued message once, as a sender would, so that the API refuses what could
    // never be sent; null when the templates could not be loaded (the daemon refuses such a
    // config, so only tests see it).
    std::unique_ptr<ComposeCheck> compose_check;
  };
  std::shared_ptr<const State> state() const;
  ConfigStatus config_status() const;

  void unsubscribe(const State& st, const HttpRequest& req, std::string_view token, bool all,
                   Responder respond);
  void api(const std::shared_ptr<const State>& st, const HttpRequest& req, std::string_view path,
           Responder respond);
  // An API request past authentication and routing.
  struct ApiCall {
    std::shared_ptr<const State> state;
    std::shared_ptr<const HttpRequest> req;  // shared with the store's threads
    std::string_view rest;   // of req's path, between a prefix route's and its suffix
    std::string_view query;  // of req's target
    Responder respond;
  };
  struct ApiRoute;
  static const ApiRoute* find_api_route(std::string_view path);
  // Answers 404 (API off) or 401 and says false, unless `req` carries the API token.
  static bool api_authorized(const Config& c, const HttpRequest& req, const Responder& respond);
  void api_status(const ApiCall& call);
  void api_enqueue(const ApiCall& call);
  void api_suppress(const ApiCall& call);
  void api_suppression(const ApiCall& call);
  void api_campaigns(const ApiCall& call);
  void api_campaign(const ApiCall& call);
  void api_pause(const ApiCall& call);
  void api_resume(const ApiCall& call);
  void pause_campaign(const ApiCall& call, bool paused);
  void health(const HttpRequest& req, Responder respond);
  void metrics(Responder respond);

  WebhookBackend& backend_;
  WebhookCounters counters_;
  mutable std::mutex mu_;
  std::shared_ptr<const State> state_;
  ConfigStatus config_status_;  // guarded by mu_
};

}  // namespace bulkmail
