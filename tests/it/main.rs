#![allow(clippy::unwrap_used)]

//! Crowdroom's integration tests: one binary, modules by capability. Every
//! test drives the real server on 127.0.0.1:0 through its public protocols.

mod auth;
mod awareness;
mod cli;
mod chat;
mod consensus;
mod docs;
mod ledger;
mod durability;
mod malformed;
mod random;
mod store;
mod work;
mod yjs_compat;
