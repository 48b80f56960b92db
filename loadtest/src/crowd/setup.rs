//! The crowd's REST side, before and after the measured run: each room's
//! moderators, project and tasks, and at the end the consensus and worker
//! records read back and compared with what the generator knows.
//!
//! Blocking HTTP on a few threads, like the rest of provisioning: none of it
//! is on the measured path.

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use super::machine::MIN_FRAME_GAP;
use super::model::{ConsensusScore, LABELS, Profile, Truth};
use crate::config::Cli;
use crate::provision::{get, post, put};

/// The project's overlap: three answers per task, up to five when they disagree.
pub const OVERLAP_MIN: u32 = 3;
pub const OVERLAP_MAX: u32 = 5;
/// The longest a reservation can be kept alive with heartbeats.
const RESERVATION_CAP_SECONDS: u64 = 3600;
/// Most regular tasks per room the automatic sizing imports.
const MAX_AUTO_TASKS: usize = 50_000;
/// Tasks per page of the read-back (the API's maximum).
const READ_PAGE: usize = 1000;

/// What the generator keeps of one room's crowd setup.
#[derive(Debug)]
pub struct CrowdPlan {
    /// One moderator token per `--moderators`.
    pub moderator_tokens: Vec<String>,
    /// The room's true labels, by external id.
    pub truth: Truth,
}

/// Regular tasks per room: `--tasks-per-room`, or enough that the workers
/// do not run dry: every worker answering back to back for the ramp-up and
/// the window at the mean think time, each task taking three answers and a
/// quarter more for dynamic overlap.
pub fn regular_tasks(cli: &Cli) -> usize {
    if cli.tasks_per_room > 0 {
        return cli.tasks_per_room;
    }
    let mean_think = cli.think_median_ms / 1000.0 * (cli.think_sigma * cli.think_sigma / 2.0).exp();
    let cycle = mean_think + 2.0 * MIN_FRAME_GAP.as_secs_f64();
    let seconds = (cli.ramp_up + cli.duration).as_secs_f64();
    let answers = cli.clients_per_room as f64 * seconds / cycle;
    let tasks = (answers * 1.25 / f64::from(OVERLAP_MIN)).ceil() as usize + 20;
    tasks.min(MAX_AUTO_TASKS)
}

/// The project every crowd room gets.
pub fn project(cli: &Cli) -> Value {
    let ttl = cli.reservation_ttl.as_secs().max(1);
    json!({
        "instructions": "crowdroom-loadtest: pick the label of the item.",
        "answer_schema": {"kind": "single_choice", "options": &LABELS[..cli.labels]},
        "overlap_min": OVERLAP_MIN,
        "overlap_max": OVERLAP_MAX,
        "reservation_ttl_seconds": ttl,
        "reservation_cap_seconds": RESERVATION_CAP_SECONDS.max(ttl),
        "min_lead_time_ms": cli.min_lead_time_ms,
    })
}

/// Issues the moderators' tokens, sets the project and imports the tasks of
/// one room (`room_url` is `.../api/v1/rooms/{room}`).
pub fn provision_room(
    agent: &ureq::Agent,
    room_url: &str,
    owner: &str,
    index: usize,
    cli: &Cli,
) -> anyhow::Result<CrowdPlan> {
    let mut moderator_tokens = Vec::with_capacity(cli.moderators);
    for moderator in 0..cli.moderators {
        let body = json!({ "user": format!("lt-m{moderator}"), "role": "moderator" });
        let (status, reply) = post(agent, &format!("{room_url}/tokens"), owner, body)?;
        if status != 201 {
            bail!("issuing a moderator token: HTTP {status} {reply}");
        }
        let token = reply["token"]
            .as_str()
            .context("the token reply has no token")?;
        moderator_tokens.push(token.to_owned());
    }
    let (status, reply) = put(agent, &format!("{room_url}/project"), owner, project(cli))?;
    if status != 200 {
        bail!("setting the project: HTTP {status} {reply}");
    }
    let truth = Truth::generate(
        cli.seed,
        index,
        regular_tasks(cli),
        cli.gold_per_room,
        cli.labels,
    );
    let tasks: Vec<Value> = truth
        .tasks()
        .map(|(id, label, gold)| {
            let data = json!({ "text": format!("item {id} of room {index}") });
            match gold {
                true => json!({ "id": id, "data": data, "gold": LABELS[usize::from(label)] }),
                false => json!({ "id": id, "data": data }),
            }
        })
        .collect();
    let expected = tasks.len() as u64;
    // A retried import skips the tasks an earlier attempt inserted.
    let (status, reply) = post(
        agent,
        &format!("{room_url}/tasks"),
        owner,
        Value::Array(tasks),
    )?;
    let stored =
        reply["inserted"].as_u64().unwrap_or(0) + reply["duplicates"].as_u64().unwrap_or(0);
    if status != 200 || stored != expected {
        bail!("importing {expected} tasks: HTTP {status} {reply}");
    }
    Ok(CrowdPlan {
        moderator_tokens,
        truth,
    })
}

/// How the server's worker records compare with the generator's profiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QualityCheck {
    /// Workers with a record on the server (they answered), by kind.
    pub spammers: u64,
    pub spammers_paused: u64,
    pub honest: u64,
    pub honest_paused: u64,
    /// Workers whose estimated accuracy has a verdict (5 gold answers or more).
    pub with_verdict: u64,
    /// Sum over them of |estimated accuracy - true accuracy|.
    pub accuracy_error_sum: f64,
}

impl QualityCheck {
    /// Adds one worker record.
    pub fn add(&mut self, profile: &Profile, paused: bool, estimate: Option<f64>) {
        if profile.spammer {
            self.spammers += 1;
            self.spammers_paused += u64::from(paused);
        } else {
            self.honest += 1;
            self.honest_paused += u64::from(paused);
        }
        if let Some(estimate) = estimate {
            self.with_verdict += 1;
            self.accuracy_error_sum += (estimate - profile.accuracy).abs();
        }
    }

    pub fn merge(&mut self, other: &QualityCheck) {
        self.spammers += other.spammers;
        self.spammers_paused += other.spammers_paused;
        self.honest += other.honest;
        self.honest_paused += other.honest_paused;
        self.with_verdict += other.with_verdict;
        self.accuracy_error_sum += other.accuracy_error_sum;
    }

    /// Mean |estimated - true| accuracy over workers with a verdict.
    pub fn mean_accuracy_error(&self) -> Option<f64> {
        (self.with_verdict > 0).then(|| self.accuracy_error_sum / self.with_verdict as f64)
    }
}

/// Reads one room's tasks (every page) and worker records. `profile_of`
/// gives the generator's profile of worker slot `n` of this room.
pub fn read_room(
    agent: &ureq::Agent,
    room_url: &str,
    owner: &str,
    plan: &CrowdPlan,
    profile_of: impl Fn(usize) -> Profile,
) -> anyhow::Result<(ConsensusScore, QualityCheck)> {
    let mut score = ConsensusScore::default();
    let mut after = 0i64;
    loop {
        let url = format!("{room_url}/tasks?limit={READ_PAGE}&after={after}");
        let (status, reply) = get(agent, &url, owner)?;
        if status != 200 {
            bail!("listing tasks: HTTP {status} {reply}");
        }
        let tasks = reply["tasks"].as_array().context("no tasks array")?;
        for task in tasks {
            score.add(
                &plan.truth,
                task["external_id"].as_str().unwrap_or(""),
                task["state"].as_str().unwrap_or(""),
                task["consensus"].as_str(),
                task["answered"].as_u64().unwrap_or(0),
            );
        }
        match reply["next_after"].as_i64() {
            Some(next) if tasks.len() == READ_PAGE => after = next,
            _ => break,
        }
    }
    let (status, reply) = get(agent, &format!("{room_url}/workers"), owner)?;
    if status != 200 {
        bail!("listing workers: HTTP {status} {reply}");
    }
    let mut quality = QualityCheck::default();
    for record in reply["workers"].as_array().context("no workers array")? {
        let slot = record["worker"]
            .as_str()
            .and_then(|user| user.strip_prefix("lt-u"))
            .and_then(|slot| slot.parse::<usize>().ok());
        let Some(slot) = slot else { continue };
        let estimate = match record["verdict"].as_bool() {
            Some(true) => record["accuracy"].as_f64(),
            _ => None,
        };
        quality.add(&profile_of(slot), !record["paused"].is_null(), estimate);
    }
    Ok((score, quality))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::time::Duration;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["crowdroom-loadtest", "crowd", "--token", "crt_x"];
        all.extend_from_slice(args);
        Cli::parse_from(all)
    }

    #[test]
    fn tasks_are_sized_for_the_run() {
        // 50 workers, 8 s median, sigma 0.8: mean think 11.02 s, cycle 11.14 s;
        // 70 s of work: 314 answers, 131 tasks at overlap 3 plus a quarter, + 20.
        let realistic = cli(&[
            "--clients-per-room",
            "50",
            "--ramp-up",
            "10s",
            "--duration",
            "60s",
        ]);
        assert_eq!(regular_tasks(&realistic), 151);
        let explicit = cli(&["--tasks-per-room", "7"]);
        assert_eq!(regular_tasks(&explicit), 7);
        let stress = cli(&[
            "--clients-per-room",
            "500",
            "--think-median-ms",
            "1",
            "--think-sigma",
            "0",
        ]);
        assert_eq!(regular_tasks(&stress), MAX_AUTO_TASKS, "capped");
    }

    #[test]
    fn the_project_follows_the_options() {
        let options = cli(&[
            "--labels",
            "4",
            "--reservation-ttl",
            "20s",
            "--min-lead-time-ms",
            "0",
        ]);
        let project = project(&options);
        assert_eq!(
            project["answer_schema"]["options"],
            json!(["a", "b", "c", "d"])
        );
        assert_eq!(project["reservation_ttl_seconds"], 20);
        assert_eq!(project["min_lead_time_ms"], 0);
        assert_eq!(
            (
                project["overlap_min"].as_u64(),
                project["overlap_max"].as_u64()
            ),
            (Some(3), Some(5))
        );
        assert_eq!(options.reservation_ttl, Duration::from_secs(20));
    }

    #[test]
    fn quality_is_compared_with_the_profiles() {
        use super::super::model::Population;
        use rand::SeedableRng;
        let population = Population {
            labels: 2,
            accuracy_alpha: 8.0,
            accuracy_beta: 2.0,
            spammer_share: 0.5,
            think_median: Duration::from_secs(1),
            think_sigma: 0.0,
            skip_rate: 0.0,
        };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(3);
        let profiles: Vec<Profile> = (0..40)
            .map(|_| Profile::draw(&population, &mut rng))
            .collect();
        let spammer = profiles.iter().find(|p| p.spammer).unwrap();
        let honest = profiles.iter().find(|p| !p.spammer).unwrap();
        let mut check = QualityCheck::default();
        check.add(spammer, true, Some(0.4));
        check.add(honest, false, Some(honest.accuracy + 0.1));
        check.add(honest, false, None);
        assert_eq!((check.spammers, check.spammers_paused), (1, 1));
        assert_eq!((check.honest, check.honest_paused), (2, 0));
        let expected = ((0.4 - 0.5f64).abs() + 0.1) / 2.0;
        assert!((check.mean_accuracy_error().unwrap() - expected).abs() < 1e-9);
        let mut total = QualityCheck::default();
        total.merge(&check);
        assert_eq!(total, check);
        assert_eq!(QualityCheck::default().mean_accuracy_error(), None);
    }
}
