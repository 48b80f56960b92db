//! `crowdroom serve --demo`: a room with the id `demo`, one member of each
//! kind and a small named-entity project, so a fresh checkout has something
//! to open and work on at once.

use crowdroom_work::project::{NewTask, ProjectConfig};
use crowdroom_work::schema::AnswerSchema;

use crate::auth::Role;
use crate::error::{Error, Result};
use crate::ids::{RoomId, UserId};
use crate::store::Store;

/// The demo project's sentences: workers mark people, organisations and places.
const SENTENCES: [&str; 12] = [
    "Ada Lovelace wrote the first program for Charles Babbage's engine in London.",
    "The World Health Organization opened a new office in Nairobi last spring.",
    "Grace Hopper joined the Navy and later worked at Remington Rand.",
    "Marie Curie moved from Warsaw to Paris to study at the Sorbonne.",
    "Tim Berners-Lee proposed the web while working at CERN near Geneva.",
    "Wangari Maathai founded the Green Belt Movement in Kenya.",
    "Linus Torvalds released Linux from Helsinki in 1991.",
    "Katherine Johnson computed trajectories for NASA in Hampton, Virginia.",
    "The Red Cross sent volunteers from Geneva to Lisbon after the storm.",
    "Alan Turing worked at Bletchley Park and later at the University of Manchester.",
    "Hedy Lamarr left Vienna for Hollywood and co-invented frequency hopping.",
    "Mozilla and the Internet Archive met in San Francisco to plan the event.",
];

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
        Ok(_) => seed_project(store, &room).await?,
        Err(Error::Conflict(_)) => {}
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

/// A named-entity project with twelve sentences, answered twice each.
async fn seed_project(store: &Store, room: &RoomId) -> Result<()> {
    let project = ProjectConfig {
        instructions: "Mark every person (PER), organisation (ORG) and place (LOC) in the \
                       sentence: select the words, then press a label or its number key. \
                       Submit when every name is marked."
            .to_owned(),
        answer_schema: AnswerSchema::Spans {
            labels: vec!["PER".into(), "ORG".into(), "LOC".into()],
        },
        overlap_min: 2,
        overlap_max: 3,
        min_confidence: 0.6,
        gold_rate: 0.0,
        onboarding_gold: 0,
        pay_per_answer: 120_000,
        ..ProjectConfig::default()
    };
    store.put_project(room, &project).await?;
    let tasks: Vec<NewTask> = SENTENCES
        .iter()
        .enumerate()
        .map(|(index, text)| NewTask {
            id: format!("s{}", index + 1),
            data: serde_json::json!({ "text": text }),
            skills: Vec::new(),
            gold: None,
            tags: Vec::new(),
        })
        .collect();
    store
        .insert_tasks(room, &tasks, project.overlap_min)
        .await?;
    Ok(())
}
