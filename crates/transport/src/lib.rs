//! The transport seam: run a script on a target and return its output.
