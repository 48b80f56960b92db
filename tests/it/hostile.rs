//! Hostile members: each case a careless or hostile worker, viewer or
//! moderator could try, refused or contained, while everyone else keeps
//! being served and nothing acknowledged is lost. One module per area.

mod authz;
mod consensus;
mod crafted;
mod crash;
mod http;
mod ledger;
mod outbound;
mod quotas;
mod random;
mod rest;
mod text;
