//! `crowdroom consensus` as a person runs it: the real binary on the public
//! benchmark datasets in `shared/datasets` (next to the repository, or at
//! `CROWDROOM_DATASETS`), asserting its JSON lines.
//!
//! Accuracy floors are Crowd-Kit 1.4.2's Dawid-Skene figures, given to four
//! decimals, so a result passes when it rounds to at least the figure.
//! Majority vote is pinned to its exact expectation under fair random
//! tie-breaks (ties are never broken by label order).

use std::path::PathBuf;
use std::process::Stdio;

use crowdroom_tests::process::binary;
use serde_json::Value;

/// The datasets folder, or None (after a loud message) when it is absent
/// outside CI. Under CI a missing folder fails the test.
fn datasets() -> Option<PathBuf> {
    let path = std::env::var_os("CROWDROOM_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets"));
    if path.is_dir() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing (set CROWDROOM_DATASETS)",
        path.display()
    );
    eprintln!(
        "\n*** SKIPPED: no datasets at {} (set CROWDROOM_DATASETS) ***\n",
        path.display()
    );
    None
}

/// Runs `crowdroom consensus args...`; returns (success, parsed JSON lines, raw stdout, stderr).
async fn consensus(args: &[&str]) -> (bool, Vec<Value>, String, String) {
    let output = tokio::process::Command::new(binary())
        .arg("consensus")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let lines = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect();
    (
        output.status.success(),
        lines,
        stdout,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The line of one method.
fn method<'a>(lines: &'a [Value], name: &str) -> &'a Value {
    lines
        .iter()
        .find(|line| line["method"] == name)
        .unwrap_or_else(|| panic!("no {name} line in {lines:?}"))
}

fn accuracy(line: &Value) -> f64 {
    line["accuracy"]
        .as_f64()
        .unwrap_or_else(|| panic!("no accuracy in {line}"))
}

/// Every line starts with the seven fixed fields, in order.
fn assert_shape(stdout: &str) {
    for line in stdout.lines() {
        let positions: Vec<usize> = [
            "\"dataset\":",
            "\"method\":",
            "\"items\":",
            "\"answers\":",
            "\"workers\":",
            "\"accuracy\":",
            "\"seconds\":",
        ]
        .iter()
        .map(|key| {
            line.find(key)
                .unwrap_or_else(|| panic!("{key} missing in {line}"))
        })
        .collect();
        assert!(
            positions.windows(2).all(|pair| pair[0] < pair[1]),
            "fields out of order: {line}"
        );
        assert!(line.starts_with("{\"dataset\":"), "{line}");
    }
}

struct Expected {
    folder: &'static str,
    items: u64,
    answers: u64,
    workers: u64,
    /// Majority vote's exact expected accuracy with fair tie-breaks.
    mv: f64,
    /// Crowd-Kit 1.4.2's Dawid-Skene accuracy.
    ds_floor: f64,
}

const CATEGORICAL: [Expected; 6] = [
    Expected {
        folder: "snow2008-rte",
        items: 800,
        answers: 8000,
        workers: 164,
        mv: 0.896875,
        ds_floor: 0.9275,
    },
    Expected {
        folder: "snow2008-temp",
        items: 462,
        answers: 4620,
        workers: 76,
        mv: 432.5 / 462.0,
        ds_floor: 0.9416,
    },
    Expected {
        folder: "bluebirds",
        items: 108,
        answers: 4212,
        workers: 39,
        mv: 82.0 / 108.0,
        ds_floor: 0.8889,
    },
    Expected {
        folder: "zheng2017-s4_dog",
        items: 807,
        answers: 8070,
        workers: 109,
        mv: 0.822180916976456,
        ds_floor: 0.8426,
    },
    Expected {
        folder: "zheng2017-s4_face",
        items: 584,
        answers: 5242,
        workers: 27,
        mv: 0.6367009132420092,
        ds_floor: 0.6404,
    },
    Expected {
        folder: "zheng2017-d_product",
        items: 8315,
        answers: 24945,
        workers: 176,
        mv: 7455.0 / 8315.0,
        ds_floor: 0.9397,
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn categorical_datasets_reach_the_dawid_skene_figures() {
    let Some(root) = datasets() else { return };
    let runs = CATEGORICAL.iter().map(|expected| {
        let folder = root.join(expected.folder);
        async move {
            (
                expected,
                consensus(&["--dataset", folder.to_str().unwrap()]).await,
            )
        }
    });
    for (expected, (ok, lines, stdout, stderr)) in futures_util::future::join_all(runs).await {
        assert!(ok, "{}: {stderr}", expected.folder);
        assert_shape(&stdout);
        assert_eq!(lines.len(), 3, "{stdout}");
        for line in &lines {
            assert_eq!(line["dataset"], expected.folder);
            assert_eq!(line["items"], expected.items, "{line}");
            assert_eq!(line["answers"], expected.answers, "{line}");
            assert_eq!(line["workers"], expected.workers, "{line}");
            assert_eq!(line["gold"], expected.items, "every item has gold: {line}");
            assert!(line["seconds"].as_f64().unwrap() >= 0.0);
            let confidence = line["mean_confidence"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&confidence), "{line}");
        }
        let mv = accuracy(method(&lines, "mv"));
        assert!(
            (mv - expected.mv).abs() < 1e-9,
            "{}: mv {mv} != {}",
            expected.folder,
            expected.mv
        );
        let ds = method(&lines, "ds");
        assert!(
            accuracy(ds) >= expected.ds_floor - 0.00005,
            "{}: ds {} < {}",
            expected.folder,
            accuracy(ds),
            expected.ds_floor
        );
        assert!(ds["iterations"].as_u64().unwrap() >= 2, "{ds}");
        assert_eq!(ds["ties"], 0, "{ds}");
        let wmv = accuracy(method(&lines, "wmv"));
        assert!(wmv > 0.6, "{}: wmv {wmv}", expected.folder);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn majority_vote_reports_ties_instead_of_breaking_them() {
    let Some(root) = datasets() else { return };
    let folder = root.join("snow2008-rte");
    let (ok, lines, _, stderr) =
        consensus(&["--dataset", folder.to_str().unwrap(), "--method", "mv"]).await;
    assert!(ok, "{stderr}");
    assert_eq!(lines.len(), 1);
    // 65 of RTE's 800 items split 5-5; each counts 1/2 when its gold is one of the two.
    assert_eq!(lines[0]["ties"], 65);
    assert_eq!(lines[0]["iterations"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adult_content_keeps_the_last_duplicate_and_only_answered_gold() {
    let Some(root) = datasets() else { return };
    let folder = root.join("ipeirotis-adultcontent2");
    let (ok, lines, stdout, stderr) =
        consensus(&["--dataset", folder.to_str().unwrap(), "--method", "mv"]).await;
    assert!(ok, "{stderr}");
    assert_shape(&stdout);
    let line = &lines[0];
    assert_eq!(
        (
            line["items"].as_u64(),
            line["answers"].as_u64(),
            line["workers"].as_u64()
        ),
        (Some(11040), Some(89799), Some(825))
    );
    assert_eq!(line["duplicates"], 2922);
    assert_eq!(line["gold"], 333);
    assert_eq!(line["classes"], 4);
    assert!(stderr.contains("2922 answers repeat"), "{stderr}");
    assert!(
        stderr.contains("1184 gold items have no answers"),
        "{stderr}"
    );
    assert!((0.75..0.77).contains(&accuracy(line)), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_answers_get_the_median_and_its_error() {
    let Some(root) = datasets() else { return };
    let folder = root.join("zheng2017-f201_emotion");
    let folder = folder.to_str().unwrap();
    let (ok, lines, stdout, stderr) = consensus(&["--dataset", folder]).await;
    assert!(ok, "{stderr}");
    assert_shape(&stdout);
    assert_eq!(lines.len(), 1, "{stdout}");
    let line = &lines[0];
    assert_eq!(line["method"], "median");
    assert_eq!(line["accuracy"], Value::Null);
    assert_eq!(
        (
            line["items"].as_u64(),
            line["answers"].as_u64(),
            line["workers"].as_u64()
        ),
        (Some(700), Some(7000), Some(38))
    );
    let mae = line["mae"].as_f64().unwrap();
    assert!((5.0..20.0).contains(&mae), "{line}");
    assert!(stderr.contains("numeric"), "{stderr}");
    // Asking for a categorical method on numbers is skipped with a message.
    let (ok, lines, _, stderr) = consensus(&["--dataset", folder, "--method", "ds"]).await;
    assert!(ok && lines.is_empty(), "{stderr}");
    assert!(stderr.contains("skipping ds"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_csv_with_gold() {
    let dir = tempfile::tempdir().unwrap();
    let answers = dir.path().join("answers.csv");
    let gold = dir.path().join("gold.csv");
    // t1: a clear "cat"; t2: a 1-1 tie; t3: answered only by the contrarian.
    std::fs::write(&answers, "task,worker,answer\nt1,ann,cat\nt1,bob,cat\nt1,cy,dog\nt2,ann,cat\nt2,cy,dog\nt3,cy,\"dog\"\n").unwrap();
    std::fs::write(
        &gold,
        "task,answer\nt1,cat\nt2,dog\nt3,cat\nunanswered,cat\n",
    )
    .unwrap();
    let (ok, lines, stdout, stderr) = consensus(&[
        "--answers",
        answers.to_str().unwrap(),
        "--gold",
        gold.to_str().unwrap(),
        "--method",
        "mv",
    ])
    .await;
    assert!(ok, "{stderr}");
    assert_shape(&stdout);
    let line = &lines[0];
    assert_eq!(line["dataset"], "answers.csv");
    assert_eq!(
        (
            line["items"].as_u64(),
            line["answers"].as_u64(),
            line["workers"].as_u64()
        ),
        (Some(3), Some(6), Some(3))
    );
    assert_eq!(line["ties"], 1);
    // t1 right, t2 a two-way tie containing the gold (1/2), t3 wrong.
    assert!((accuracy(line) - 0.5).abs() < 1e-12, "{line}");
    assert!(stderr.contains("1 gold items have no answers"), "{stderr}");
    // Without gold, accuracy is null.
    let (ok, lines, _, stderr) = consensus(&["--answers", answers.to_str().unwrap()]).await;
    assert!(ok, "{stderr}");
    assert_eq!(lines.len(), 3);
    assert!(
        lines.iter().all(|line| line["accuracy"].is_null()),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let (ok, lines, _, stderr) = consensus(&["--answers", missing.to_str().unwrap()]).await;
    assert!(!ok && lines.is_empty());
    assert!(
        stderr.contains("cannot read") && stderr.contains("missing.csv"),
        "{stderr}"
    );

    let malformed = dir.path().join("bad.csv");
    std::fs::write(&malformed, "task,worker,answer\nt1,ann,cat\nt2,bob\n").unwrap();
    let (ok, _, _, stderr) = consensus(&["--answers", malformed.to_str().unwrap()]).await;
    assert!(!ok);
    assert!(
        stderr.contains("bad.csv:3: expected 3 fields, found 2"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let (ok, _, _, stderr) = consensus(&["--dataset", dir.path().to_str().unwrap()]).await;
    assert!(
        !ok && stderr.contains("no known dataset format"),
        "{stderr}"
    );

    let broken_yaml = dir.path().join("birds");
    std::fs::create_dir(&broken_yaml).unwrap();
    std::fs::write(
        broken_yaml.join("labels.yaml"),
        "1: {10: true,\n  11 true}\n",
    )
    .unwrap();
    let (ok, _, _, stderr) = consensus(&["--dataset", broken_yaml.to_str().unwrap()]).await;
    assert!(!ok && stderr.contains("labels.yaml:2:"), "{stderr}");

    let (ok, _, _, stderr) = consensus(&["--synthetic", "10x2", "--gold", "gold.csv"]).await;
    assert!(
        !ok && stderr.contains("--gold goes with --answers"),
        "{stderr}"
    );
    let (ok, _, _, stderr) = consensus(&["--synthetic", "lots"]).await;
    assert!(!ok && stderr.contains("--synthetic"), "{stderr}");
    let (ok, _, _, stderr) = consensus(&[]).await;
    assert!(!ok && stderr.contains("--dataset"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_crowd_is_reproducible_and_recovered() {
    let spec = "3000x5,workers=200,classes=4,seed=9";
    let (ok, first, _, stderr) = consensus(&["--synthetic", spec, "--method", "ds"]).await;
    assert!(ok, "{stderr}");
    let (_, second, _, _) = consensus(&["--synthetic", spec, "--method", "ds"]).await;
    let line = &first[0];
    assert_eq!(line["dataset"], "synthetic-3000x5-w200-k4-s9");
    assert_eq!(
        (
            line["items"].as_u64(),
            line["answers"].as_u64(),
            line["workers"].as_u64()
        ),
        (Some(3000), Some(15000), Some(200))
    );
    assert_eq!(
        line["accuracy"], second[0]["accuracy"],
        "same seed, same result"
    );
    let (_, mv, _, _) = consensus(&["--synthetic", spec, "--method", "mv"]).await;
    assert!(
        accuracy(line) > accuracy(&mv[0]) + 0.02,
        "ds {line} vs mv {}",
        mv[0]
    );
}
