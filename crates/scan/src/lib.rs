//! The scan engine: runs catalogue detect scripts through a transport and evaluates them.
