//! Identifier newtypes. Room ids, user ids and document names are chosen by
//! people (they appear in URLs and CLI arguments), so each is validated once,
//! here, and the rest of the server can trust a value of the type. The
//! labels people choose for display (display names, room names) are
//! bounded here too, for the same reason.
//!
//! They hold a `CompactString`, which keeps up to 24 bytes inline: ids are
//! short and are cloned into every principal, presence entry and event, so
//! most of them never allocate (a connection's principal used to make four
//! small allocations of its own).

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Defines a validated string id: `[A-Za-z0-9_-]` plus `extra`, 1..=`max` chars.
macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr, $extra:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(CompactString);

        impl $name {
            /// Validates and wraps an id.
            pub fn parse(raw: &str) -> Result<Self, Error> {
                let valid = !raw.is_empty()
                    && raw.len() <= $max
                    && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || $extra.contains(c));
                if valid {
                    Ok(Self(CompactString::new(raw)))
                } else {
                    Err(Error::BadRequest(format!(
                        concat!("invalid ", $what, " {:?}: use 1 to {} of A-Z a-z 0-9 _ - {}"),
                        raw, $max, $extra
                    )))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A room's id, as in `/rooms/{room}/live`.
    RoomId, "room id", 64, ""
);
string_id!(
    /// A user's id (their login name).
    UserId, "user id", 64, "."
);
string_id!(
    /// A document's name within its room, as in `/yjs/{room}/{doc}`.
    DocName, "document name", 128, ".:"
);

/// Longest display name, in characters: names are shown next to every
/// chat message and presence entry, and each member's is sent in every
/// joiner's `hello`, so one long name must not make everyone's frames big.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest room name, in characters: a title, shown in listings and `hello`.
pub const MAX_ROOM_NAME_CHARS: usize = 128;

/// Validates a person-chosen label (a display name or a room name): 1 to
/// `max` characters once trimmed, no control characters (they would break
/// the lines and tables the name is shown in). Returns it trimmed.
fn label<'a>(raw: &'a str, what: &str, max: usize) -> Result<&'a str, Error> {
    let trimmed = raw.trim();
    let length = trimmed.chars().count();
    if (1..=max).contains(&length) && !trimmed.chars().any(char::is_control) {
        Ok(trimmed)
    } else {
        Err(Error::BadRequest(format!(
            "a {what} has 1 to {max} characters and no control characters"
        )))
    }
}

/// Validates a display name (see [`MAX_DISPLAY_NAME_CHARS`]).
pub fn display_name(raw: &str) -> Result<&str, Error> {
    label(raw, "display name", MAX_DISPLAY_NAME_CHARS)
}

/// Validates a room name (see [`MAX_ROOM_NAME_CHARS`]).
pub fn room_name(raw: &str) -> Result<&str, Error> {
    label(raw, "room name", MAX_ROOM_NAME_CHARS)
}

/// `text` cut to at most `max` characters: for names stored before their
/// limit existed, so an old long name still cannot bloat a frame.
pub fn clip(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((end, _)) => text.get(..end).unwrap_or(text),
        None => text,
    }
}

/// A token's public id (not the secret): what revocation and listings name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub CompactString);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A server-local id for one WebSocket connection, unique for the process lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ConnId(pub u64);

impl ConnId {
    /// Allocates the next connection id.
    pub fn next() -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ConnId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// Milliseconds since the Unix epoch: the one time format in the store and on the wire.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(RoomId::parse("demo").is_ok());
        assert!(RoomId::parse("team-7_a").is_ok());
        assert!(RoomId::parse("").is_err());
        assert!(RoomId::parse("a/b").is_err());
        assert!(RoomId::parse("a.b").is_err());
        assert!(RoomId::parse(&"x".repeat(65)).is_err());
        assert!(UserId::parse("ann.lee").is_ok());
        assert!(DocName::parse("task:42.v1").is_ok());
        assert!(DocName::parse("task 42").is_err());
    }

    #[test]
    fn names_are_bounded() {
        assert_eq!(display_name("  Ann Lee ").ok(), Some("Ann Lee"));
        assert!(display_name("").is_err());
        assert!(display_name("   ").is_err());
        assert!(display_name("a\nb").is_err());
        assert!(display_name(&"é".repeat(MAX_DISPLAY_NAME_CHARS)).is_ok());
        assert!(display_name(&"é".repeat(MAX_DISPLAY_NAME_CHARS + 1)).is_err());
        assert!(room_name(&"r".repeat(MAX_ROOM_NAME_CHARS + 1)).is_err());
        assert_eq!(clip("héllo", 2), "hé");
        assert_eq!(clip("hé", 5), "hé");
    }
}
