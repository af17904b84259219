//! Property tests of the history-based processors (penalties, bias, bans).
