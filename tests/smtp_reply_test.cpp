#include "delivery/smtp_reply.h"

#include <curl/curl.h>
#include <doctest/doctest.h>

#include <cstdlib>
#include <string>

using namespace bulkmail;

TEST_CASE("classification: libcurl's result first, then the reply") {
  struct Case {
    const char* name;
    AttemptResult in;
    Verdict verdict;
    int code;
    bool drop, trouble;
  };
  const Case cases[] = {
      {"accepted",
       {CURLE_OK, 250, "", "250 2.0.0 Ok: queued as ABC"},
       Verdict::sent,
       250,
       false,
       false},
      {"user unknown at RCPT",
       {CURLE_SEND_ERROR, 550, "RCPT failed: 550", "550 5.1.1 No such user"},
       Verdict::bounced,
       550,
       false,
       false},
      {"greylisted at RCPT",
       {CURLE_SEND_ERROR, 451, "RCPT failed: 451", "451 4.7.1 Try later"},
       Verdict::deferred,
       451,
       false,
       false},
      {"421 at RCPT",
       {CURLE_SEND_ERROR, 421, "RCPT failed: 421", "421 4.7.0 Too busy"},
       Verdict::deferred,
       421,
       true,
       true},
      {"sender refused",
       {CURLE_SEND_ERROR, 553, "MAIL failed: 553", "553 5.7.1 Sender denied"},
       Verdict::rejected,
       553,
       false,
       false},
      {"content refused after DATA (libcurl 7.88)",
       {CURLE_WEIRD_SERVER_REPLY, 554, "", "554 5.7.1 Spam"},
       Verdict::rejected,
       554,
       false,
       false},
      {"content refused after DATA (older libcurl)",
       {CURLE_RECV_ERROR, 554, "", "554 5.7.1 Spam"},
       Verdict::rejected,
       554,
       false,
       false},
      {"452 after DATA",
       {CURLE_WEIRD_SERVER_REPLY, 452, "", "452 4.3.1 Insufficient storage"},
       Verdict::deferred,
       452,
       false,
       false},
      {"DATA command refused",
       {CURLE_SEND_ERROR, 554, "DATA failed: 554", "554 no valid recipients"},
       Verdict::rejected,
       554,
       false,
       false},
      {"dropped, stale 250, no error text",
       {CURLE_RECV_ERROR, 250, "", ""},
       Verdict::deferred,
       0,
       true,
       false},
      {"421 greeting",
       {CURLE_WEIRD_SERVER_REPLY, 421, "Got unexpected smtp-server response: 421", "421 closing"},
       Verdict::deferred,
       421,
       true,
       true},
      {"connection refused",
       {CURLE_COULDNT_CONNECT, 0, "Failed to connect to 127.0.0.1 port 1", ""},
       Verdict::deferred,
       0,
       true,
       true},
      // A dropped connection after an earlier message's 250: the stale code must not count.
      {"dropped mid-DATA, stale 250",
       {CURLE_RECV_ERROR, 250, "Connection died", ""},
       Verdict::deferred,
       0,
       true,
       false},
      {"dropped, send failure, stale 250",
       {CURLE_SEND_ERROR, 250, "Send failure: Broken pipe", ""},
       Verdict::deferred,
       0,
       true,
       false},
      {"timeout mid-message",
       {CURLE_OPERATION_TIMEDOUT, 354, "Operation timed out", ""},
       Verdict::deferred,
       0,
       true,
       false},
      {"timeout before greeting",
       {CURLE_OPERATION_TIMEDOUT, 0, "Connection timed out", ""},
       Verdict::deferred,
       0,
       true,
       true},
      {"AUTH refused",
       {CURLE_LOGIN_DENIED, 535, "Login denied", "535 5.7.8 bad credentials"},
       Verdict::deferred,
       0,
       true,
       true},
      // Failing before the transfer began (connect, greeting, EHLO, AUTH) is the relay's
      // trouble whatever code came last; after it began, a timeout is this message's.
      {"timeout during AUTH, after the greeting",
       {CURLE_OPERATION_TIMEDOUT, 334, "Operation timed out after 2001 milliseconds",
        "334 UGFzc3dvcmQ6", false},
       Verdict::deferred,
       0,
       true,
       true},
      {"timeout mid-message, after the transfer began",
       {CURLE_OPERATION_TIMEDOUT, 354, "Operation timed out", "354 go ahead", true},
       Verdict::deferred,
       0,
       true,
       false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Classification r = classify_attempt(c.in);
    CHECK(r.verdict == c.verdict);
    CHECK(r.code == c.code);
    CHECK(r.drop_connection == c.drop);
    CHECK(r.relay_trouble == c.trouble);
    CHECK_FALSE(r.reply.empty());
  }
}

TEST_CASE("the reply text kept is the server's line when it matches the code") {
  auto r = classify_attempt(
      {CURLE_SEND_ERROR, 550, "RCPT failed: 550", "550 5.1.1 <x@example.com>: unknown"});
  CHECK(r.reply == "550 5.1.1 <x@example.com>: unknown");
  r = classify_attempt({CURLE_SEND_ERROR, 550, "RCPT failed: 550", "250 stale line"});
  CHECK(r.reply == "550 (RCPT failed: 550)");
}

TEST_CASE("a refusal to RCPT TO means what it would in a bounce report") {
  // Classified as a report's recipient is (bounce_class.h): only a dead address, or a refusal
  // that gives no reason, suppresses the recipient; a block is the sender's problem.
  struct Case {
    const char* reply;
    Verdict verdict;
    BounceClass bounce_class;
  };
  const Case cases[] = {
      {"550 5.1.1 <pat@example.com>: Recipient address rejected: User unknown", Verdict::bounced,
       BounceClass::hard},
      {"550 Requested action not taken", Verdict::bounced, BounceClass::hard},
      {"550 5.7.1 Service unavailable; client host [192.0.2.1] blocked using zen.spamhaus.org",
       Verdict::rejected, BounceClass::policy},
      {"554 5.7.1 Message rejected due to sender reputation", Verdict::rejected,
       BounceClass::policy},
      {"552 5.2.2 Mailbox full", Verdict::rejected, BounceClass::soft},
      {"550 5.7.1 <pat@example.com>: user unknown", Verdict::bounced, BounceClass::hard},
  };
  for (const Case& c : cases) {
    CAPTURE(c.reply);
    int code = std::atoi(c.reply);
    AttemptResult a{CURLE_SEND_ERROR, code, "RCPT failed: " + std::to_string(code), c.reply};
    Classification got = classify_attempt(a);
    CHECK(got.verdict == c.verdict);
    CHECK(got.bounce_class == c.bounce_class);
  }
  // The same policy refusal after DATA rejects the message and counts as a block.
  Classification data =
      classify_attempt({CURLE_WEIRD_SERVER_REPLY, 554, "", "554 5.7.1 Spam content rejected"});
  CHECK(data.verdict == Verdict::rejected);
  CHECK(data.bounce_class == BounceClass::policy);
}

TEST_CASE("a relay's reply is recorded as one printable line, whatever bytes it held") {
  CHECK(reply_line("250 2.0.0 Ok: queued\r\n") == "250 2.0.0 Ok: queued");
  CHECK(reply_line("550 5.1.1 no\rFAKE 250 ok\x1b[2J\tuser") ==
        "550 5.1.1 no?FAKE 250 ok?[2J\tuser");
  CHECK(reply_line(std::string(600, 'x')).size() == kMaxReplyLine);
  // Through the classification too: the reply or libcurl's error text, either way one line.
  AttemptResult a;
  a.curl_code = CURLE_SEND_ERROR;
  a.error_text = "RCPT failed: 550";
  a.last_reply = "550 5.1.1 gone\r\nX-Injected: yes";
  auto c = classify_attempt(a);
  CHECK(c.reply.find_first_of("\r\n") == std::string::npos);
  CHECK(c.reply.rfind("550 5.1.1 gone", 0) == 0);
}

TEST_CASE("a transfer libcurl calls done without a 2xx records no made-up reply code") {
  AttemptResult a;
  a.curl_code = CURLE_OK;
  a.response_code = 5;  // not a reply code: recorded as none
  auto c = classify_attempt(a);
  CHECK(c.verdict == Verdict::deferred);
  CHECK(c.code == 0);
  a.response_code = 354;
  CHECK(classify_attempt(a).code == 354);
}

TEST_CASE("a 4xx to RCPT TO is about that recipient, other 4xx and 421 about the server") {
  auto recipient_only = [](AttemptResult a) { return classify_attempt(a).recipient_only; };
  CHECK(recipient_only({CURLE_SEND_ERROR, 451, "RCPT failed: 451", "451 4.7.1 Greylisted"}));
  CHECK(recipient_only({CURLE_SEND_ERROR, 450, "RCPT failed: 450", "450 4.2.0 Greylisted"}));
  CHECK(recipient_only({CURLE_SEND_ERROR, 452, "RCPT failed: 452", "452 4.2.2 Mailbox full"}));
  CHECK(recipient_only({CURLE_SEND_ERROR, 451, "RCPT failed: 451", "451 Try again later"}));
  // A recipient's 4xx that speaks of the server or a rate: the domain slows down.
  CHECK_FALSE(recipient_only({CURLE_SEND_ERROR, 450, "RCPT failed: 450",
                              "450 4.7.1 Error: too many recipients from [192.0.2.1]"}));
  CHECK_FALSE(recipient_only(
      {CURLE_SEND_ERROR, 452, "RCPT failed: 452", "452 4.3.1 Insufficient system storage"}));
  CHECK_FALSE(
      recipient_only({CURLE_SEND_ERROR, 452, "RCPT failed: 452", "452 4.5.3 Too many recipients"}));
  CHECK_FALSE(recipient_only({CURLE_SEND_ERROR, 451, "RCPT failed: 451",
                              "451 4.7.500 Server busy, please try again later"}));
  CHECK_FALSE(recipient_only({CURLE_SEND_ERROR, 450, "RCPT failed: 450",
                              "450 4.2.1 The user you are trying to contact is receiving mail at a "
                              "rate that prevents additional messages"}));
  CHECK_FALSE(recipient_only({CURLE_SEND_ERROR, 421, "RCPT failed: 421", "421 4.7.0 Too busy"}));
  CHECK_FALSE(recipient_only({CURLE_SEND_ERROR, 451, "MAIL failed: 451", "451 4.3.0 Try later"}));
  CHECK_FALSE(recipient_only({CURLE_WEIRD_SERVER_REPLY, 452, "", "452 4.3.1 No storage"}));
  CHECK_FALSE(recipient_only({CURLE_SEND_ERROR, 550, "RCPT failed: 550", "550 5.1.1 No user"}));
  CHECK_FALSE(recipient_only({CURLE_RECV_ERROR, 250, "Connection died", ""}));
}
