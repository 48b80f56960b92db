//! Crowdroom's CRDT core: annotation documents on yrs and the y-websocket
//! protocol, as plain logic with no IO.
//!
//! The server owns sockets, storage and time; this crate owns the bytes.
//! Everything here is bytes in, bytes out, so it can be tested without a
//! runtime and so that nothing a client sends can panic the server:
//!
//! - [`encoding`]: lib0 v1 varints, byte arrays and strings;
//! - [`protocol`]: y-websocket frames ([`Message`]);
//! - [`awareness`]: the server's presence registry ([`AwarenessRegistry`]);
//! - [`doc`]: a yrs document with validation ([`SharedDoc`]);
//! - [`schema`]: the annotation document's shape, shared with the web client.
//!
//! Two private modules guard yrs, which recurses without limit on some
//! inputs (a stack overflow aborts the process): `validate` walks every
//! update before yrs decodes it, and `nesting` bounds how deeply shared
//! types nest.
//!
//! Invariant: this crate never touches the network, the disk or the clock.

pub mod awareness;
pub mod doc;
pub mod encoding;
#[cfg(test)]
mod fuzz;
mod nesting;
pub mod protocol;
pub mod schema;
mod validate;

pub use awareness::{AwarenessEntry, AwarenessRegistry, AwarenessUpdate};
pub use doc::{Applied, DocError, SharedDoc};
pub use protocol::{Message, ProtocolError};
