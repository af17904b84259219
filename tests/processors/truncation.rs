//! Property tests of the truncating processors.
