//! The on-site console `osiris-console`: a first-boot wizard and everyday status for the office
//! manager, talking to `osirisd` only through the local API (`api` crate).
//!
//! The code is split the Elm way: [`model`] is the state, [`action`] what can happen,
//! [`keymap`] turns keys into actions, [`update`] is the pure state machine that returns the
//! [`update::Command`]s to run, [`view`] draws the model, and [`runtime`] runs commands on
//! background threads and owns the event loop.

pub mod action;
#[doc(hidden)]
pub mod bench;
#[doc(hidden)]
pub mod fixture;
pub mod keymap;
pub mod model;
pub mod runtime;
pub mod update;
pub mod validate;
pub mod view;
