#![allow(clippy::unwrap_used)]

//! Crowdroom's integration tests: one binary, modules by capability. Every
//! test drives the real server on 127.0.0.1:0 through its public protocols.

mod auth;
mod awareness;
mod browser;
mod chat;
mod cli;
mod consensus;
mod crash_crowd;
mod docs;
mod durability;
mod floor;
mod hostile;
mod judgement;
mod lease;
mod ledger;
mod malformed;
mod matching;
mod moderation;
mod operator;
mod project;
mod queue_push;
mod random;
mod store;
mod wire_types;
mod work;
mod work_reloads;
mod work_state;
mod yjs_compat;
