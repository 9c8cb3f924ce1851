// What every reader does to the Report it fills: a note on what was not read, the first value of
// a field given twice, the recipients within ReportLimits::max_recipients, and the kind of report
// they make.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "bounce/report.h"

namespace bulkmail::bounce {

// Adds `note` to Report::note, after "; " when there is one already.
void add_note(Report& r, std::string_view note);

// Sets `field` to `value` unless it has a value already: the first of repeated fields wins.
void set_once(std::string& field, std::string value);

// Adds `x` to r.recipients with its status (the diagnostic's enhanced code when it has none),
// SMTP code and class filled in. Past limits.max_recipients `x` is dropped, and Report::note says
// so once.
void add_recipient(Report& r, const ReportLimits& limits, ReportRecipient x);

// bounce when a recipient failed (Action failed, or no Action and a 5.x.x Status), else delay
// when one was delayed (Action delayed, or no Action and 4.x.x), else unknown.
ReportKind kind_of(const std::vector<ReportRecipient>& recipients);

}  // namespace bulkmail::bounce
