//! The queue's rules one by one, on hand-made rooms.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;

const NOW: i64 = 1_000_000;

fn project() -> ProjectConfig {
    ProjectConfig {
        onboarding_gold: 0,
        gold_rate: 0.0,
        reservation_ttl_seconds: 10,
        reservation_cap_seconds: 25,
        min_lead_time_ms: 0,
        overlap_max: 3,
        ..ProjectConfig::default()
    }
}

fn task(id: i64, skills: &[&str], target: u32, answered: u32) -> TaskRow {
    TaskRow {
        id,
        skills: skills.iter().map(|s| (*s).to_owned()).collect(),
        tags: Vec::new(),
        gold: None,
        overlap_target: target,
        answered,
        state: StoredState::Open,
    }
}

fn worker(id: &str, skills: &[&str]) -> WorkerRow {
    WorkerRow {
        id: id.to_owned(),
        skills: skills.iter().map(|s| (*s).to_owned()).collect(),
        ..WorkerRow::default()
    }
}

fn granted(outcome: Outcome<Grant>) -> i64 {
    match outcome.value {
        Grant::Granted(reservation) => reservation.task_id,
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[test]
fn grants_the_nearest_completion_the_worker_is_skilled_for() {
    // Task 3 is nearest completion but needs "de"; the SQL cut the first
    // few before checking skills, here skills come first.
    let tasks = vec![
        task(1, &[], 3, 0),
        task(2, &[], 3, 1),
        task(3, &["de"], 3, 2),
    ];
    let mut state = WorkState::load(
        project(),
        tasks,
        vec![worker("ann", &[]), worker("bob", &["de"])],
        vec![],
    )
    .unwrap()
    .state;
    assert_eq!(granted(state.request("ann", 0.5, NOW).unwrap()), 2);
    assert_eq!(granted(state.request("bob", 0.5, NOW).unwrap()), 3);
    assert_eq!(state.check(), Ok(()));
    assert_eq!(state.counts(NOW).reserved, 2);
}

#[test]
fn interests_break_ties_and_skill_accuracy_outweighs_need() {
    let mut tagged = task(2, &[], 3, 0);
    tagged.tags = vec!["law".into()];
    let tasks = vec![task(1, &[], 3, 0), tagged];
    let mut ann = worker("ann", &[]);
    ann.interests = vec!["law".into()];
    let mut state = WorkState::load(project(), tasks, vec![ann], vec![])
        .unwrap()
        .state;
    assert_eq!(granted(state.request("ann", 0.5, NOW).unwrap()), 2);

    let tasks = vec![task(1, &["fr"], 3, 1), task(2, &["de"], 3, 0)];
    let mut bob = worker("bob", &["de", "fr"]);
    let good = Record {
        gold_correct: 20,
        gold_total: 20,
        ..Record::default()
    };
    let bad = Record {
        gold_correct: 0,
        gold_total: 20,
        ..Record::default()
    };
    bob.records = vec![("de".into(), good), ("fr".into(), bad)];
    let mut state = WorkState::load(project(), tasks, vec![bob], vec![])
        .unwrap()
        .state;
    assert_eq!(
        granted(state.request("bob", 0.5, NOW).unwrap()),
        2,
        "accuracy outweighs need"
    );
}

#[test]
fn onboarding_gold_comes_first_then_the_draw_decides() {
    let mut gold = task(9, &[], 1, 0);
    gold.gold = Some(json!("yes"));
    let tasks = vec![task(1, &[], 3, 0), gold];
    let onboarding = ProjectConfig {
        onboarding_gold: 1,
        gold_rate: 0.1,
        ..project()
    };
    let mut state = WorkState::load(onboarding, tasks, vec![], vec![])
        .unwrap()
        .state;
    assert_eq!(
        granted(state.request("ann", 0.9, NOW).unwrap()),
        9,
        "onboarding: gold"
    );
    let submitted = state.submit("ann", 9, &json!("yes"), NOW + 10).unwrap();
    assert_eq!(
        submitted.value.feedback,
        Some(true),
        "onboarding gold is training"
    );
    assert_eq!(submitted.value.due, None, "gold is never due");
    assert_eq!(
        granted(state.request("ann", 0.9, NOW).unwrap()),
        1,
        "a high draw: regular"
    );
    state.release("ann", NOW).unwrap();
    state.set_skills("ann", &[]).unwrap();
    assert_eq!(
        granted(state.request("ann", 0.05, NOW).unwrap()),
        1,
        "gold answered: regular"
    );
}

#[test]
fn paused_and_unskilled_workers_are_refused_with_the_reason() {
    let required = ProjectConfig {
        required_skills: vec!["de".into()],
        ..project()
    };
    let mut state = WorkState::load(
        required,
        vec![task(1, &[], 3, 0)],
        vec![worker("ann", &[])],
        vec![],
    )
    .unwrap()
    .state;
    let refused = state.request("ann", 0.5, NOW).unwrap().value;
    assert_eq!(refused, Grant::Refused(Refusal::MissingSkills));
    state.set_skills("ann", &["de".into()]).unwrap();
    state.pause("ann", "spam", NOW).unwrap();
    let refused = state.request("ann", 0.5, NOW).unwrap().value;
    assert_eq!(refused, Grant::Refused(Refusal::Paused("spam".into())));
    assert!(state.unpause("ann").unwrap().value);
    assert_eq!(granted(state.request("ann", 0.5, NOW).unwrap()), 1);
}

#[test]
fn heartbeats_extend_up_to_the_cap_and_sweeps_free_expired_slots() {
    let mut state = WorkState::load(project(), vec![task(1, &[], 1, 0)], vec![], vec![])
        .unwrap()
        .state;
    granted(state.request("ann", 0.5, NOW).unwrap());
    assert_eq!(
        state.heartbeat("ann", 1, NOW + 9_000).unwrap().value,
        NOW + 19_000
    );
    assert_eq!(
        state.heartbeat("ann", 1, NOW + 18_000).unwrap().value,
        NOW + 25_000,
        "capped"
    );
    let full = state.request("bob", 0.5, NOW + 18_000).unwrap().value;
    assert_eq!(full, Grant::Refused(Refusal::NoWork));
    assert!(state.heartbeat("ann", 1, NOW + 25_000).is_err(), "expired");
    assert!(
        state.submit("ann", 1, &json!("x"), NOW + 25_000).is_err(),
        "lost"
    );
    // Bob's request frees Ann's expired reservation first. She kept it
    // alive to the project's cap: the pay floor counts its 25 s.
    let outcome = state.request("bob", 0.5, NOW + 25_000).unwrap();
    assert_eq!(granted(outcome.clone()), 1);
    assert!(outcome.effects.contains(&Effect::ReservationDeleted {
        task: 1,
        worker: "ann".into(),
        why: Freed::Expired,
        no_fault_ms: Some(25_000),
    }));
    assert_eq!(state.check(), Ok(()));
}

#[test]
fn a_skipped_task_is_never_granted_again_to_its_skipper() {
    let mut state = WorkState::load(project(), vec![task(1, &[], 3, 0)], vec![], vec![])
        .unwrap()
        .state;
    granted(state.request("ann", 0.5, NOW).unwrap());
    let skipped = state.skip("ann", 1, NOW).unwrap();
    assert_eq!(skipped.effects.len(), 2);
    assert_eq!(
        state.request("ann", 0.5, NOW).unwrap().value,
        Grant::Refused(Refusal::NoWork)
    );
    assert_eq!(granted(state.request("bob", 0.5, NOW).unwrap()), 1);
}

#[test]
fn the_answer_reaching_the_target_makes_the_task_due_once() {
    let mut state = WorkState::load(project(), vec![task(1, &["de"], 2, 1)], vec![], vec![])
        .unwrap()
        .state;
    state.set_skills("ann", &["de".into()]).unwrap();
    granted(state.request("ann", 0.5, NOW).unwrap());
    let submitted = state.submit("ann", 1, &json!("x"), NOW + 5_000).unwrap();
    assert_eq!(submitted.value.due, Some(Due { task: 1, target: 2 }));
    assert_eq!(submitted.value.lead_time_ms, 5_000);
    // The answer, and the record overall and in "de".
    assert_eq!(submitted.effects.len(), 3);
    assert_eq!(state.task_state(1), Ok(TaskState::Deciding));
    let raise = Decision {
        verdict: Verdict::RaiseOverlap,
        agreement: vec![],
        consensus: None,
    };
    assert_eq!(
        state.apply_decision(1, &raise, NOW).unwrap().value,
        TaskState::Open
    );
    assert!(
        state.apply_decision(1, &raise, NOW).is_err(),
        "accepted once"
    );
    state.set_skills("bob", &["de".into()]).unwrap();
    granted(state.request("bob", 0.5, NOW).unwrap());
    let submitted = state.submit("bob", 1, &json!("x"), NOW + 1).unwrap();
    assert_eq!(submitted.value.due, Some(Due { task: 1, target: 3 }));
    assert!(
        state.apply_decision(1, &raise, NOW).is_err(),
        "at the overlap maximum"
    );
    let complete = Decision {
        verdict: Verdict::Complete,
        agreement: vec![("ann".into(), true)],
        consensus: None,
    };
    assert_eq!(
        state.apply_decision(1, &complete, NOW).unwrap().value,
        TaskState::Complete
    );
    assert_eq!(state.view("ann", NOW).record.agree, 1);
    assert_eq!(state.counts(NOW).complete, 1);
    assert_eq!(state.check(), Ok(()));
}

#[test]
fn fast_answers_pause_their_worker_and_pay_is_booked_pending() {
    let slow = ProjectConfig {
        min_lead_time_ms: 2_000,
        ..project()
    };
    let tasks = (1..=6).map(|id| task(id, &[], 3, 0)).collect();
    let mut state = WorkState::load(slow, tasks, vec![], vec![]).unwrap().state;
    let mut paused = None;
    for _ in 0..5 {
        let id = granted(state.request("ann", 0.5, NOW).unwrap());
        paused = state
            .submit("ann", id, &json!("x"), NOW + 100)
            .unwrap()
            .value
            .paused;
    }
    assert!(paused.is_some(), "five fast answers of five pause");
    let view = state.view("ann", NOW);
    assert_eq!(view.answers, 5);
    assert_eq!(view.earnings.pending, 5 * project().pay_per_answer);
    assert!(matches!(
        state.request("ann", 0.5, NOW).unwrap().value,
        Grant::Refused(Refusal::Paused(_))
    ));
}

#[test]
fn loading_finds_due_tasks_and_keeps_every_reservation() {
    let reservation = |task_id, created_at| ReservationRow {
        worker: "ann".into(),
        reservation: Reservation {
            task_id,
            created_at,
            expires_at: NOW + 10_000,
            cap_at: NOW + 20_000,
        },
    };
    let tasks = vec![task(1, &[], 2, 2), task(2, &[], 3, 0), task(3, &[], 3, 0)];
    let loaded = WorkState::load(
        project(),
        tasks,
        vec![],
        vec![reservation(2, NOW), reservation(3, NOW + 1)],
    )
    .unwrap();
    assert_eq!(loaded.due, vec![Due { task: 1, target: 2 }]);
    let mut state = loaded.state;
    assert_eq!(state.counts(NOW).reserved, 2, "both are kept");
    assert_eq!(
        state.view("ann", NOW).reservation.map(|r| r.task_id),
        Some(2)
    );
    assert_eq!(
        state.request("ann", 0.5, NOW).unwrap().value,
        Grant::Held(state.view("ann", NOW).reservation.unwrap())
    );
    // Imports out of id order still find their tasks.
    state.add_tasks(vec![task(0, &[], 3, 0)]).unwrap();
    assert_eq!(state.task_state(0), Ok(TaskState::Open));
    assert_eq!(state.task_state(3), Ok(TaskState::Open));
    assert_eq!(state.check(), Ok(()));
}

#[test]
fn assignment_grants_named_tasks_until_the_cap_several_at_a_time() {
    let tasks = vec![
        task(1, &[], 2, 0),
        task(2, &["de"], 2, 0),
        task(3, &[], 1, 1),
    ];
    let workers = vec![worker("ann", &[]), worker("bob", &["de"])];
    let mut state = WorkState::load(project(), tasks, workers, vec![])
        .unwrap()
        .state;
    // Unskilled for task 2; task 3 is full; task 99 does not exist.
    assert_eq!(state.assign("ann", 2, NOW).unwrap().value, None);
    assert_eq!(state.assign("ann", 3, NOW).unwrap().value, None);
    assert!(state.assign("ann", 99, NOW).is_err());
    let assigned = state.assign("ann", 1, NOW).unwrap();
    let reservation = assigned.value.unwrap();
    assert_eq!(reservation.task_id, 1);
    assert_eq!(reservation.expires_at, reservation.cap_at);
    assert_eq!(assigned.effects.len(), 1);
    // Never the same task twice; a request returns what they hold.
    assert_eq!(state.assign("ann", 1, NOW).unwrap().value, None);
    assert_eq!(
        state.request("ann", 0.5, NOW).unwrap().value,
        Grant::Held(reservation)
    );
    // Several assigned tasks at once, each answered or skipped on its own.
    let task_of = |outcome: Result<Outcome<Option<Reservation>>>| {
        outcome
            .unwrap()
            .value
            .map(|reservation| reservation.task_id)
    };
    assert_eq!(task_of(state.assign("bob", 2, NOW)), Some(2));
    assert_eq!(task_of(state.assign("bob", 1, NOW)), Some(1));
    assert_eq!(state.counts(NOW).reserved, 3);
    assert_eq!(state.check(), Ok(()));
    state.submit("bob", 1, &json!("x"), NOW + 1).unwrap();
    state.skip("bob", 2, NOW + 1).unwrap();
    assert_eq!(state.view("bob", NOW + 1).reservation, None);
    assert_eq!(state.counts(NOW + 1).reserved, 1);
    assert_eq!(state.check(), Ok(()));
}
