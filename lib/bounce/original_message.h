// The returned message's identifying headers (OriginalMessage, in report.h), however the report
// returns it: a message/rfc822 part, its headers alone, or the copy after a plain-text notice.
#pragma once

#include <gmime/gmime.h>

#include "bounce/field_block.h"
#include "bounce/report.h"

namespace bulkmail::bounce {

// The OriginalMessage of a returned message's headers (found is true): the first of each field,
// cleaned; a Message-ID given without angle brackets gets them.
OriginalMessage original_from(const FieldBlock& headers);

// The OriginalMessage of a report's returned part (Parts::original in mime_walk.h): a message
// GMime parsed, or the header fields at the top of a leaf part's text.
OriginalMessage read_original(GMimeObject* o);

}  // namespace bulkmail::bounce
