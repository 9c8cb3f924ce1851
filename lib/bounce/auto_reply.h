// Auto-replies (RFC 3834 and what vacation programs and Exchange send instead), and the mail
// systems' own messages, which are marked auto-replied too.
#pragma once

#include "bounce/field_block.h"

namespace bulkmail::bounce {

// Whether the headers are a mail system's: From MAILER-DAEMON or postmaster, or Exim's
// X-Failed-Recipients. Mail systems mark their bounces Auto-Submitted: auto-replied too (Postfix,
// Exim, Gmail), so a bounce not understood stays unknown rather than passing for an auto-reply.
bool from_mail_system(const FieldBlock& headers);

// Whether the headers mark an auto-reply: Auto-Submitted: auto-replied, Precedence (or
// X-Precedence): auto_reply, X-Autoreply or one of its kin not set to no, false or 0, or an
// out-of-office or automatic-reply subject in one of several languages.
bool looks_auto_reply(const FieldBlock& headers);

}  // namespace bulkmail::bounce
