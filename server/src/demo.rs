//! `crowdroom serve --demo`: a room with the id `demo` and one member of
//! each kind, so a fresh checkout has something to open at once.

use crate::auth::Role;
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};
use crate::store::Store;

/// The demo's members: user id, display name, role.
const MEMBERS: [(&str, &str, Role); 6] = [
    ("olivia", "Olivia (owner)", Role::Owner),
    ("mo", "Mo (moderator)", Role::Moderator),
    ("cora", "Cora (core team)", Role::Core),
    ("wes", "Wes (worker)", Role::Worker),
    ("wanda", "Wanda (worker)", Role::Worker),
    ("will", "Will (worker)", Role::Worker),
];

/// A demo member's fresh token.
pub struct DemoToken {
    pub user: String,
    pub role: Role,
    pub token: String,
}

/// Creates the demo room and members if missing, and issues each a token
/// valid for a week.
pub async fn seed(store: &Store) -> Result<Vec<DemoToken>> {
    let room = RoomId::parse("demo")?;
    match store.create_room(&room, "Demo project").await {
        Ok(_) | Err(Error::Conflict(_)) => {}
        Err(error) => return Err(error),
    }
    let mut tokens = Vec::with_capacity(MEMBERS.len());
    for (id, name, role) in MEMBERS {
        let user = UserId::parse(id)?;
        store.ensure_user(&user, name).await?;
        let (_, token) = store
            .issue_token(&room, &user, role, Some(7 * 24 * 3600 * 1000))
            .await?;
        tokens.push(DemoToken {
            user: id.to_owned(),
            role,
            token,
        });
    }
    Ok(tokens)
}
