//! Roles, permissions and bearer tokens.
//!
//! Tokens are random 256-bit secrets, so they are stored as SHA-256 hashes
//! (a slow password hash buys nothing for random secrets). A token belongs to
//! one user in one room with one role: it opens nothing in another room.
//! What each role may do is decided here and nowhere else.

use std::fmt;
use std::str::FromStr;

use compact_str::CompactString;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::ids::{RoomId, TokenId, UserId};

/// A member's role in a room, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Moderator,
    Core,
    Worker,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Moderator,
        Role::Core,
        Role::Worker,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Moderator => "moderator",
            Role::Core => "core",
            Role::Worker => "worker",
            Role::Viewer => "viewer",
        }
    }

    /// May edit documents and send chat. Viewers only read.
    pub fn can_write(self) -> bool {
        !matches!(self, Role::Viewer)
    }

    /// May moderate: delete anyone's chat, see moderator-only events, issue
    /// and revoke tokens, list tokens.
    pub fn can_moderate(self) -> bool {
        matches!(self, Role::Owner | Role::Moderator)
    }

    /// May see the member list with roles (the core team and above).
    pub fn can_list_members(self) -> bool {
        matches!(self, Role::Owner | Role::Moderator | Role::Core)
    }

    /// May change roles, remove members and create rooms.
    pub fn can_administer(self) -> bool {
        matches!(self, Role::Owner)
    }

    /// May grant `other` (in a token or a membership): owners grant any role,
    /// moderators only the roles below their own.
    pub fn can_grant(self, other: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Moderator => other > Role::Moderator,
            Role::Core | Role::Worker | Role::Viewer => false,
        }
    }
}

impl Role {
    /// Whether this role may mute, kick, ban or release `target`: owners
    /// act on anyone but owners, moderators on core, workers and viewers.
    pub fn can_moderate_member(self, target: Role) -> bool {
        match self {
            Role::Owner => target != Role::Owner,
            Role::Moderator => target > Role::Moderator,
            Role::Core | Role::Worker | Role::Viewer => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(raw: &str) -> Result<Self, Error> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == raw)
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "unknown role {raw:?}: owner, moderator, core, worker or viewer"
                ))
            })
    }
}

/// Who is behind an authenticated request or socket.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserId,
    pub display_name: CompactString,
    pub room: RoomId,
    pub role: Role,
    pub token_id: TokenId,
    /// When the token expires (ms since epoch), if ever.
    pub expires_at: Option<i64>,
}

/// A freshly made token: the secret (shown once) and what is stored.
pub struct NewToken {
    pub id: TokenId,
    pub secret: String,
    pub hash: String,
}

/// Prefix that makes Crowdroom tokens recognisable in logs and secret scanners.
const TOKEN_PREFIX: &str = "crt_";
/// Bytes of a token's random secret (256 bits), written as twice as many
/// lowercase hex digits after the prefix.
const SECRET_BYTES: usize = 32;

/// Prefix of a server operator's token (`crowdroom operator issue`): it
/// opens the operator's API, and no room.
pub const OPERATOR_PREFIX: &str = "cop_";

/// Whether `secret` has a token's form (`crt_` and 64 lowercase hex
/// digits), as every token [`NewToken::generate`] makes has. Anything else
/// is refused before the store is asked, so a junk bearer costs no read.
pub fn is_token_form(secret: &str) -> bool {
    has_form(secret, TOKEN_PREFIX)
}

/// Whether `secret` has an operator token's form (`cop_` and 64 hex digits).
pub fn is_operator_form(secret: &str) -> bool {
    has_form(secret, OPERATOR_PREFIX)
}

fn has_form(secret: &str, prefix: &str) -> bool {
    secret.strip_prefix(prefix).is_some_and(|digits| {
        digits.len() == 2 * SECRET_BYTES
            && digits
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    })
}

impl NewToken {
    pub fn generate() -> Self {
        Self::with_prefix(TOKEN_PREFIX)
    }

    /// A server operator's token.
    pub fn operator() -> Self {
        Self::with_prefix(OPERATOR_PREFIX)
    }

    fn with_prefix(prefix: &str) -> Self {
        let mut rng = rand::rng();
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut secret);
        let mut id = [0u8; 8];
        rng.fill_bytes(&mut id);
        let secret = format!("{prefix}{}", hex(&secret));
        let hash = hash_token(&secret);
        NewToken {
            id: TokenId(format!("tok_{}", hex(&id)).into()),
            secret,
            hash,
        }
    }
}

/// The stored form of a token secret.
pub fn hash_token(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}"); // writing to a String cannot fail
            out
        })
}

/// Who may open a document. Crowd answers must be independent, so the
/// documents of tasks are split in two:
///
/// - `task-{id}` is the team's document of the task (the server writes its
///   decision there; reviewers correct it together): owners, moderators and
///   core edit it, viewers read it, workers may not open it;
/// - `task-{id}:{user}` is that worker's working copy: the worker (all
///   their tabs) and the core team may open it, other workers may not.
///
/// Every other document is open to every member.
pub fn may_open_doc(principal: &Principal, doc: &str) -> bool {
    let Some(rest) = doc.strip_prefix("task-") else {
        return true;
    };
    let (task, owner) = match rest.split_once(':') {
        Some((task, owner)) => (task, Some(owner)),
        None => (rest, None),
    };
    if task.is_empty() || !task.bytes().all(|byte| byte.is_ascii_digit()) {
        return true;
    }
    let team = matches!(principal.role, Role::Owner | Role::Moderator | Role::Core);
    match owner {
        None => principal.role != Role::Worker,
        Some(owner) => team || owner == principal.user.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_order() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().ok(), Some(role));
        }
        assert!("admin".parse::<Role>().is_err());
        assert!(Role::Owner.can_grant(Role::Moderator));
        assert!(!Role::Moderator.can_grant(Role::Moderator));
        assert!(Role::Moderator.can_grant(Role::Worker));
        assert!(!Role::Worker.can_grant(Role::Viewer));
        assert!(!Role::Viewer.can_write());
        assert!(Role::Worker.can_write());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let first = NewToken::generate();
        let second = NewToken::generate();
        assert_ne!(first.secret, second.secret);
        assert_ne!(first.id, second.id);
        assert_eq!(first.hash, hash_token(&first.secret));
        assert_ne!(first.hash, first.secret);
        assert!(first.secret.starts_with(TOKEN_PREFIX));
        assert_eq!(first.hash.len(), 64);
    }

    #[test]
    fn only_strings_of_a_tokens_form_are_tokens() {
        assert!(is_token_form(&NewToken::generate().secret));
        let digits = "0123456789abcdef".repeat(4);
        assert!(is_token_form(&format!("crt_{digits}")));
        for junk in [
            String::new(),
            "crt_".to_owned(),
            "nope".to_owned(),
            digits.clone(),
            format!("crt_{}", &digits[1..]),
            format!("crt_{digits}0"),
            format!("crt_{}", digits.to_uppercase()),
            format!("crt_{}é", &digits[2..]),
            format!("xrt_{digits}"),
        ] {
            assert!(!is_token_form(&junk), "{junk:?}");
        }
    }

    fn principal(user: &str, role: Role) -> Principal {
        Principal {
            user: UserId::parse(user).unwrap_or_else(|_| panic!("valid user {user}")),
            display_name: user.into(),
            room: RoomId::parse("r").unwrap_or_else(|_| panic!("valid room")),
            role,
            token_id: TokenId("tok_0".into()),
            expires_at: None,
        }
    }

    #[test]
    fn workers_open_only_their_own_working_copy() {
        let wes = principal("wes", Role::Worker);
        assert!(!may_open_doc(&wes, "task-7"));
        assert!(may_open_doc(&wes, "task-7:wes"));
        assert!(!may_open_doc(&wes, "task-7:wanda"));
        assert!(may_open_doc(&wes, "notes"));
        assert!(may_open_doc(&wes, "task-notes"));
        for role in [Role::Owner, Role::Moderator, Role::Core] {
            let member = principal("cora", role);
            assert!(may_open_doc(&member, "task-7"));
            assert!(may_open_doc(&member, "task-7:wes"));
        }
        let viewer = principal("vic", Role::Viewer);
        assert!(may_open_doc(&viewer, "task-7"));
        assert!(!may_open_doc(&viewer, "task-7:wes"));
    }

    #[test]
    fn moderators_act_on_lower_roles_only() {
        assert!(Role::Owner.can_moderate_member(Role::Moderator));
        assert!(!Role::Owner.can_moderate_member(Role::Owner));
        assert!(Role::Moderator.can_moderate_member(Role::Worker));
        assert!(Role::Moderator.can_moderate_member(Role::Core));
        assert!(!Role::Moderator.can_moderate_member(Role::Moderator));
        assert!(!Role::Core.can_moderate_member(Role::Worker));
    }
}
