#include "web/webhook.h"

#include <openssl/crypto.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <tuple>
#include <variant>

#include "base/address.h"
#include "base/clock.h"
#include "base/json_strict.h"
#include "base/log.h"
#include "crypto/digest.h"
#include "intake/submission.h"
#include "intake/suppression_lift.h"
#include "store/status.h"
#include "web/api_request.h"
#include "web/form_data.h"
#include "web/http_framing.h"
#include "web/unsubscribe_page.h"

namespace bulkmail {
namespace {

namespace http = boost::beast::http;
using json = nlohmann::json;

HttpResponse response(const HttpRequest& req, http::status status, const char* content_type,
                      std::string body) {
  HttpResponse res{status, req.version()};
  res.set(http::field::server, "bulkmail");
  res.set(http::field::content_type, content_type);
  res.set(http::field::cache_control, "no-store");
  res.set("X-Content-Type-Options", "nosniff");
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();  // HEAD: the server drops the body and keeps its length
  return res;
}

// Pages for browsers: nothing from elsewhere, no scripts, no framing, and the token in the URL
// never leaves in a Referer header.
HttpResponse page(const HttpRequest& req, http::status status, std::string html) {
  HttpResponse res = response(req, status, "text/html; charset=utf-8", std::move(html));
  res.set("Content-Security-Policy",
          "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
          "frame-ancestors 'none'; base-uri 'none'");
  res.set("Referrer-Policy", "no-referrer");
  res.set("X-Frame-Options", "DENY");
  return res;
}

HttpResponse json_response(const HttpRequest& req, http::status status, const json& body) {
  // An error may quote what a client sent, which need not be UTF-8: such bytes become U+FFFD
  // rather than making dump() throw.
  return response(req, status, "application/json",
                  body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
}

// 400 and friends for the API: {"error": "...", "field": "..."} (field only when one is at fault).
HttpResponse json_error(const HttpRequest& req, http::status status, const std::string& message,
                        const std::string& field = "") {
  json body = {{"error", field.empty() ? message : field + ": " + message}};
  if (!field.empty()) body["field"] = field;
  return json_response(req, status, body);
}

HttpResponse not_allowed(const HttpRequest& req, const char* allow, bool api) {
  HttpResponse res =
      api ? json_error(req, http::status::method_not_allowed,
                       std::string(req.method_string()) + " is not allowed here")
          : page(req, http::status::method_not_allowed,
                 error_page("Not allowed", "This page does not accept that kind of request."));
  res.set(http::field::allow, allow);
  return res;
}

bool is_get(const HttpRequest& req) {
  return req.method() == http::verb::get || req.method() == http::verb::head;
}

// Splits "/a/b?x=1" into its path and query.
std::pair<std::string_view, std::string_view> split_target(std::string_view target) {
  std::size_t q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

// Constant-time comparison of the presented bearer token with the configured one: both are
// hashed first, so neither their contents nor their lengths show in the time taken.
bool token_matches(std::string_view presented, const std::string& expected) {
  std::string a = sha256_hex(presented), b = sha256_hex(expected);
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// An expected failure of a request's content: 400, naming the field at fault when one is.
HttpResponse bad_request(const HttpRequest& req, const Error& e) {
  json body = {{"error", e.message}};
  if (!e.field.empty()) body["field"] = e.field;
  return json_response(req, http::status::bad_request, body);
}

// The request's JSON object body with only `allowed` fields, or the answer refusing it.
std::variant<json, HttpResponse> read_object(const HttpRequest& req,
                                             std::initializer_list<std::string_view> allowed) {
  if (!is_json_media_type(sv(req[http::field::content_type]))) {
    return json_error(req, http::status::unsupported_media_type,
                      "send the body as application/json");
  }
  auto body = read_json_object(req.body(), allowed);
  if (!body) return bad_request(req, body.error());
  return std::move(body).value();
}

// 404 for a campaign no enqueue or import ever named: a typo, not a campaign with nothing in it.
HttpResponse unknown_campaign(const HttpRequest& req, const std::string& name) {
  return json_error(req, http::status::not_found,
                    "unknown campaign '" + name + "' (GET /api/v1/campaigns lists them)");
}

// The store did not answer: 503, and the reason in the log only.
void unavailable(const HttpRequest& req, const Responder& respond, const std::exception& e) {
  log_error(std::string("API request failed: ") + e.what());
  respond(json_error(req, http::status::service_unavailable, "the database is not available"));
}

}  // namespace

Webhook::Webhook(std::shared_ptr<const Config> config, WebhookBackend& backend,
                 std::unique_ptr<Composer> checker)
    : backend_(backend) {
  reload(std::move(config), std::move(checker));
}

void Webhook::reload(std::shared_ptr<const Config> config, std::unique_ptr<Composer> checker) {
  auto st = std::make_shared<State>();
  st->tokens =
      std::make_unique<TokenCodec>(config->unsubscribe.keys, config->unsubscribe.token_expiry_days);
  if (checker) {
    st->compose_check = ComposeCheck::create(config, std::move(checker));
  } else if (auto check = ComposeCheck::create(config)) {
    st->compose_check = std::move(check.value());
  }
  st->pages = std::make_unique<UnsubscribePages>(*config);
  st->config = std::move(config);
  std::lock_guard lock(mu_);
  state_ = std::move(st);
}

void Webhook::set_config_status(ConfigStatus status) {
  std::lock_guard lock(mu_);
  config_status_ = std::move(status);
}

ConfigStatus Webhook::config_status() const {
  std::lock_guard lock(mu_);
  return config_status_;
}

std::shared_ptr<const Webhook::State> Webhook::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

void Webhook::handle(HttpRequest req, Responder respond) {
  auto st = state();
  auto [path, query] = split_target(sv(req.target()));
  const std::string& base = st->config->unsubscribe.path;
  bool unsubscribe_route = path.size() > base.size() + 1 && path.substr(0, base.size()) == base &&
                           path[base.size()] == '/' &&
                           path.find('/', base.size() + 1) == std::string_view::npos;
  bool api_route = path == "/api/v1" || path.substr(0, 8) == "/api/v1/";
  const char* route = unsubscribe_route    ? "unsubscribe"
                      : api_route          ? "api"
                      : path == "/healthz" ? "healthz"
                      : path == "/metrics" ? "metrics"
                                           : "other";

  // Count every answer by route and status for /metrics. A route answers once; should one answer
  // and then throw, the 500 below is neither sent nor counted.
  auto once = std::make_shared<std::atomic<bool>>(false);
  Responder counted = [this, respond = std::move(respond), route, once](HttpResponse res) {
    if (once->exchange(true)) return;
    counters_.request(route, res.result_int());
    respond(std::move(res));
  };

  try {
    if (unsubscribe_route) {
      // The link's own scope: the footer's "all mail" link carries ?scope=all.
      bool all = query_value(query, "scope") == "all";
      return unsubscribe(*st, req, path.substr(base.size() + 1), all, counted);
    }
    if (api_route) return api(st, req, path, counted);
    if (path == "/healthz") return health(req, counted);
    if (path == "/metrics") {
      if (!is_get(req)) return counted(not_allowed(req, "GET, HEAD", false));
      return metrics(counted);
    }
    counted(page(req, http::status::not_found,
                 error_page("Not found", "There is no page at this address.")));
  } catch (const std::exception& e) {
    // A bug of ours, not the client's fault: 500, counted like every other answer.
    log_error(std::string("webhook request failed: ") + e.what());
    counted(response(req, http::status::internal_server_error, "text/plain; charset=utf-8",
                     "internal error\n"));
  }
}

void Webhook::unsubscribe(const State& st, const HttpRequest& req, std::string_view token, bool all,
                          Responder respond) {
  const Config& c = *st.config;
  bool post = req.method() == http::verb::post;
  if (!post && !is_get(req)) return respond(not_allowed(req, "GET, HEAD, POST", false));

  TokenCheck check = st.tokens->verify(token, now_millis());
  if (check.status != TokenStatus::valid) {
    // Forged, cut short or expired: one generic answer, and nothing changes.
    return respond(page(req, http::status::bad_request, st.pages->invalid()));
  }
  const TokenClaims& claims = check.claims;
  const CategoryConfig* category = c.category(claims.category);
  std::string description = category ? category->description : claims.category;
  std::string masked = mask_address(claims.address);

  if (!post) {
    return respond(page(req, http::status::ok, st.pages->confirm(masked, description, token, all)));
  }

  auto form = parse_form(sv(req[http::field::content_type]), req.body());
  if (!form) {
    return respond(page(
        req, http::status::bad_request,
        error_page("Request not understood",
                   "The unsubscribe request could not be read: " + form.error().message + ".")));
  }
  std::string source;
  if (form_value(*form, "List-Unsubscribe") == "One-Click") {
    // RFC 8058: what the link says. The List-Unsubscribe header carries the category link, so a
    // mailbox provider's one-click stops the category; the footer's ?scope=all link stops all mail.
    source = "one-click";
  } else if (auto scope = form_value(*form, "scope"); scope == "category" || scope == "all") {
    source = "web";
    all = *scope == "all";
  } else {
    return respond(page(req, http::status::bad_request,
                        error_page("Request not understood",
                                   "The request does not say what to unsubscribe from.")));
  }
  Suppression s{claims.address, all ? std::string() : claims.category,
                SuppressionReason::unsubscribe, source, 0};
  std::string done_page = st.pages->done(masked, description, all, token);
  if (log_enabled(LogLevel::debug)) {
    log_debug("opt-out (" + source + ") from " + (all ? "all mail" : claims.category) + " for " +
              log_address(claims.address));
  }
  HttpRequest answer_to{req.method(), "", req.version()};
  answer_to.keep_alive(req.keep_alive());
  backend_.opt_out(
      std::move(s), [this, req = std::move(answer_to), source, done_page = std::move(done_page),
                     respond = std::move(respond)](bool ok) mutable {
        if (!ok) {
          HttpResponse res =
              page(req, http::status::service_unavailable,
                   error_page("Please try again",
                              "Your request could not be recorded just now. Please try again in a "
                              "minute; nothing has changed yet."));
          res.set(http::field::retry_after, "60");
          return respond(std::move(res));
        }
        counters_.unsubscribe(source);
        respond(page(req, http::status::ok, std::move(done_page)));
      });
}

// The API's routes: a path (or a path prefix, whose rest up to a suffix the handler reads), the
// methods it answers, and its handler. The first that matches is taken.
struct Webhook::ApiRoute {
  std::string_view path;
  bool prefix;
  // Of a prefix route, what the path ends with ("/pause"): the rest is what lies between, which
  // may be empty (for the handler to refuse). "": the rest is everything after the prefix, and
  // not empty.
  std::string_view suffix;
  std::initializer_list<http::verb> methods;
  const char* allow;  // the methods, for 405's Allow header
  void (Webhook::*handler)(const ApiCall&);
};

const Webhook::ApiRoute* Webhook::find_api_route(std::string_view path) {
  // Each list of methods written out in place: its array then lives as long as the table.
  static const ApiRoute kRoutes[] = {
      {"/api/v1/status",
       false,
       "",
       {http::verb::get, http::verb::head},
       "GET, HEAD",
       &Webhook::api_status},
      {"/api/v1/messages", false, "", {http::verb::post}, "POST", &Webhook::api_enqueue},
      {"/api/v1/suppressions", false, "", {http::verb::post}, "POST", &Webhook::api_suppress},
      {"/api/v1/suppressions/",
       true,
       "",
       {http::verb::get, http::verb::head, http::verb::delete_},
       "GET, HEAD, DELETE",
       &Webhook::api_suppression},
      {"/api/v1/campaigns",
       false,
       "",
       {http::verb::get, http::verb::head},
       "GET, HEAD",
       &Webhook::api_campaigns},
      // A campaign's name holds no '/': .../NAME/pause is never a campaign named "NAME/pause".
      {"/api/v1/campaigns/", true, "/pause", {http::verb::post}, "POST", &Webhook::api_pause},
      {"/api/v1/campaigns/", true, "/resume", {http::verb::post}, "POST", &Webhook::api_resume},
      {"/api/v1/campaigns/",
       true,
       "",
       {http::verb::get, http::verb::head},
       "GET, HEAD",
       &Webhook::api_campaign},
  };
  for (const ApiRoute& r : kRoutes) {
    bool match = !r.prefix          ? path == r.path
                 : r.suffix.empty() ? path.size() > r.path.size() && path.starts_with(r.path)
                                    : path.size() >= r.path.size() + r.suffix.size() &&
                                          path.starts_with(r.path) && path.ends_with(r.suffix);
    if (match) return &r;
  }
  return nullptr;
}

bool Webhook::api_authorized(const Config& c, const HttpRequest& req, const Responder& respond) {
  if (c.webhook.api_token.empty()) {
    respond(json_error(req, http::status::not_found,
                       "the API is off: no webhook.api_token_file is configured"));
    return false;
  }
  std::string_view auth = sv(req[http::field::authorization]);
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() <= kBearer.size() || auth.substr(0, kBearer.size()) != kBearer ||
      !token_matches(auth.substr(kBearer.size()), c.webhook.api_token)) {
    HttpResponse res =
        json_error(req, http::status::unauthorized, "a valid bearer token is required");
    res.set(http::field::www_authenticate, "Bearer realm=\"bulkmail\"");
    respond(std::move(res));
    return false;
  }
  return true;
}

void Webhook::api(const std::shared_ptr<const State>& st, const HttpRequest& req,
                  std::string_view path, Responder respond) {
  if (!api_authorized(*st->config, req, respond)) return;
  const ApiRoute* route = find_api_route(path);
  if (!route) return respond(json_error(req, http::status::not_found, "no such API route"));
  bool allowed = false;
  for (http::verb m : route->methods) allowed = allowed || req.method() == m;
  if (!allowed) return respond(not_allowed(req, route->allow, true));
  // The request travels to the store's threads, shared; the views of its path and query point
  // into that copy, so they live as long as it does.
  auto shared = std::make_shared<const HttpRequest>(req);
  auto [own_path, own_query] = split_target(sv(shared->target()));
  std::string_view rest;
  if (route->prefix) {
    rest = own_path.substr(route->path.size(),
                           own_path.size() - route->path.size() - route->suffix.size());
  }
  ApiCall call{st, shared, rest, own_query, std::move(respond)};
  (this->*route->handler)(call);
}

void Webhook::api_status(const ApiCall& call) {
  auto campaign = query_value(call.query, "campaign");
  if (campaign) {
    if (auto named = check_campaign_name(*campaign); !named) {
      return call.respond(bad_request(*call.req, field_error("campaign", named.error().message)));
    }
  }
  backend_.read([req = call.req, campaign, respond = call.respond](Store& store) {
    try {
      // The daemon answering this is the one running.
      if (!campaign) {
        StateCounts counts = store.counts(std::nullopt);
        // Several daemons on the database: what they do together (status.h).
        std::vector<DaemonState> daemons = store.daemons();
        UnixMillis now = now_millis();
        auto dispatch = daemons.empty() ? store.dispatch_state() : cluster_dispatch(daemons, now);
        return respond(json_response(*req, http::status::ok,
                                     status_json(counts, dispatch, true, daemons, now)));
      }
      auto c = store.campaign(*campaign);
      if (!c) return respond(unknown_campaign(*req, *campaign));
      respond(json_response(*req, http::status::ok,
                            campaign_status_json(*c, store.dispatch_state(), true)));
    } catch (const std::exception& e) {
      unavailable(*req, respond, e);
    }
  });
}

void Webhook::api_enqueue(const ApiCall& call) {
  const HttpRequest& req = *call.req;
  auto parsed = read_object(req, {"category", "to", "vars", "campaign"});
  if (auto* err = std::get_if<HttpResponse>(&parsed)) return call.respond(std::move(*err));
  auto sub = submission_from_json(std::get<json>(parsed));
  if (!sub) return call.respond(bad_request(req, sub.error()));
  const State& st = *call.state;
  auto msg = st.compose_check ? validate_submission(*st.compose_check, *sub)
                              : validate_submission(*st.config, *sub);
  if (!msg) return call.respond(bad_request(req, msg.error()));
  backend_.write(
      [req = call.req, msg = std::move(msg.value()), respond = call.respond](Store& store) {
        try {
          EnqueueResult r = store.enqueue({&msg, 1}, "api", now_millis()).front();
          if (r.status == EnqueueStatus::already_queued) {
            return respond(json_error(*req, http::status::conflict,
                                      "the campaign already holds this recipient: nothing changed",
                                      "campaign"));
          }
          respond(json_response(
              *req, http::status::created,
              {{"id", r.id != 0 ? json(r.id) : json(nullptr)},
               {"state", r.status == EnqueueStatus::queued ? "queued" : "suppressed"}}));
        } catch (const std::exception& e) {
          unavailable(*req, respond, e);
        }
      });
}

void Webhook::api_suppress(const ApiCall& call) {
  const HttpRequest& req = *call.req;
  auto parsed = read_object(req, {"email", "category", "reason"});
  if (auto* err = std::get_if<HttpResponse>(&parsed)) return call.respond(std::move(*err));
  auto s = suppression_from_json(std::get<json>(parsed), *call.state->config);
  if (!s) return call.respond(bad_request(req, s.error()));
  backend_.write([this, req = call.req, s = std::move(*s), respond = call.respond](Store& store) {
    try {
      UnixMillis now = now_millis();
      SuppressOutcome outcome = store.suppress({&s, 1}, now).front();
      bool added = outcome == SuppressOutcome::added;
      if (outcome != SuppressOutcome::unchanged && s.reason == SuppressionReason::unsubscribe)
        counters_.unsubscribe("api");
      auto in_effect = store.find_suppression(s.address, s.category);
      Suppression shown = in_effect && in_effect->category == s.category ? *in_effect : s;
      if (!in_effect) shown.created_at = now;
      respond(json_response(*req, added ? http::status::created : http::status::ok,
                            suppression_json(shown)));
    } catch (const std::exception& e) {
      unavailable(*req, respond, e);
    }
  });
}

void Webhook::api_suppression(const ApiCall& call) {
  const HttpRequest& req = *call.req;
  auto target = suppression_target(call.rest, call.query, *call.state->config);
  if (!target) return call.respond(bad_request(req, target.error()));
  if (is_get(req)) {
    return backend_.read([req = call.req, t = *target, respond = call.respond](Store& store) {
      try {
        auto s = store.find_suppression(t.address, t.category);
        if (!s) {
          return respond(json_error(*req, http::status::not_found,
                                    t.category.empty() ? "not suppressed for all mail"
                                                       : "not suppressed for this category"));
        }
        respond(json_response(*req, http::status::ok, suppression_json(*s)));
      } catch (const std::exception& e) {
        unavailable(*req, respond, e);
      }
    });
  }
  backend_.write([req = call.req, t = *target, respond = call.respond](Store& store) {
    try {
      LiftResult r = lift_suppression(store, t.address, t.category, t.force, "api", now_millis());
      if (r.status == LiftStatus::not_found) {
        return respond(json_error(*req, http::status::not_found, "no such suppression to remove"));
      }
      if (r.status == LiftStatus::needs_consent) {
        return respond(
            json_error(*req, http::status::conflict,
                       needs_consent_message(*r.suppression) + "add ?force=true if you have it"));
      }
      respond(json_response(*req, http::status::ok, suppression_json(*r.suppression)));
    } catch (const std::exception& e) {
      unavailable(*req, respond, e);
    }
  });
}

void Webhook::api_campaigns(const ApiCall& call) {
  backend_.read([req = call.req, respond = call.respond](Store& store) {
    try {
      json all = json::array();
      for (const Campaign& c : store.campaigns()) all.push_back(campaign_json(c));
      respond(json_response(*req, http::status::ok, all));
    } catch (const std::exception& e) {
      unavailable(*req, respond, e);
    }
  });
}

void Webhook::api_campaign(const ApiCall& call) {
  // .../NAME/anything-else is a route there is not, rather than a name with a '/' in it.
  if (call.rest.find('/') != std::string_view::npos) {
    return call.respond(json_error(*call.req, http::status::not_found, "no such API route"));
  }
  auto name = campaign_segment(call.rest);
  if (!name) return call.respond(bad_request(*call.req, name.error()));
  backend_.read([req = call.req, name = std::move(*name), respond = call.respond](Store& store) {
    try {
      auto c = store.campaign(name);
      if (!c) return respond(unknown_campaign(*req, name));
      respond(json_response(*req, http::status::ok, campaign_json(*c)));
    } catch (const std::exception& e) {
      unavailable(*req, respond, e);
    }
  });
}

void Webhook::api_pause(const ApiCall& call) { pause_campaign(call, true); }
void Webhook::api_resume(const ApiCall& call) { pause_campaign(call, false); }

void Webhook::pause_campaign(const ApiCall& call, bool paused) {
  auto name = campaign_segment(call.rest);
  if (!name) return call.respond(bad_request(*call.req, name.error()));
  backend_.write(
      [req = call.req, name = std::move(*name), paused, respond = call.respond](Store& store) {
        try {
          // As bulkmailctl pause and resume: a campaign already so is left as it is, and says so.
          auto before = store.campaign(name);
          if (!before) return respond(unknown_campaign(*req, name));
          bool change = before->paused_at.has_value() != paused;
          std::optional<std::int64_t> moved = 0;
          if (change) moved = store.set_campaign_paused(name, paused, now_millis());
          auto after = moved ? store.campaign(name) : std::nullopt;
          if (!after) return respond(unknown_campaign(*req, name));
          json body = campaign_json(*after);
          body["changed"] = change;
          body[paused ? "held" : "released"] = *moved;
          respond(json_response(*req, http::status::ok, body));
        } catch (const std::exception& e) {
          unavailable(*req, respond, e);
        }
      });
}

void Webhook::health(const HttpRequest& req, Responder respond) {
  if (!is_get(req)) return respond(not_allowed(req, "GET, HEAD", false));
  // Healthy when the database answers a query and the event loop answers a post. A part that
  // never answers leaves the request to the server's deadline, which answers 503.
  auto shared_req = std::make_shared<const HttpRequest>(req);
  backend_.read([this, shared_req, respond](Store& store) {
    try {
      store.dispatch_state();
    } catch (const std::exception& e) {
      return respond(response(*shared_req, http::status::service_unavailable,
                              "text/plain; charset=utf-8",
                              std::string("database: ") + e.what() + "\n"));
    }
    backend_.dispatch_stats([this, shared_req, respond](DispatchStats stats) {
      // A database that answers reads but cannot record (its disk full) fails too: opt-outs
      // cannot be honoured, and nothing is sent.
      if (stats.database_away)
        return respond(response(*shared_req, http::status::service_unavailable,
                                "text/plain; charset=utf-8",
                                "database: " + stats.pause_reason + "\n"));
      // Degraded, not failing (200): the daemon sends and honours opt-outs on the config it has,
      // but the file an operator edited is not what runs.
      std::string problem = config_status().describe();
      std::string body = problem.empty() ? "ok" : "degraded (" + problem + ")";
      if (stats.paused) body += " (sending paused: " + stats.pause_reason + ")";
      respond(response(*shared_req, http::status::ok, "text/plain; charset=utf-8", body + "\n"));
    });
  });
}

void Webhook::metrics(Responder respond) {
  // Messages by state and the feedback counters from the store, then the loop's numbers, then
  // ours.
  backend_.read([this, respond](Store& store) {
    StateCounts counts;
    FeedbackCounters feedback;
    HttpRequest req{http::verb::get, "/metrics", 11};
    try {
      counts = store.counts(std::nullopt);
      feedback = store.feedback_counters();
    } catch (const std::exception& e) {
      return respond(response(req, http::status::service_unavailable, "text/plain; charset=utf-8",
                              std::string("database: ") + e.what() + "\n"));
    }
    backend_.dispatch_stats(
        [this, counts, feedback = std::move(feedback), req, respond](DispatchStats stats) {
          respond(response(
              req, http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
              prometheus_text(counts, stats, counters_.snapshot(), config_status(), feedback)));
        });
  });
}

}  // namespace bulkmail
