//! Central Command (`osiris-central`): the MSP partner's one server for all its sites, on
//! PostgreSQL and stateless itself. This crate holds the configuration, the database and its
//! migrations, the administrative commands and the HTTP server; `main.rs` only parses arguments.

pub mod admin;
pub mod agent_fleet;
pub mod api;
pub mod auth;
pub mod bench;
pub mod bench_pages;
pub mod claim;
pub mod config;
pub mod db;
pub mod demo;
pub mod fleet;
pub mod l2_relay;
pub mod link;
pub mod link_ca;
pub mod password;
pub mod scope;
pub mod server;
pub mod totp;
pub mod web;
pub mod witness;
pub mod witness_store;
