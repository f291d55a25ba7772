//! Transport implementation for the machine osiris runs on.
