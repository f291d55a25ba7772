//! The osiris command-line tool.
