//! The real `crowdroom` binary as a child process, for kill -9 and SIGTERM tests.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The `crowdroom` binary next to this test binary's target directory.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/it-<hash> -> target/<profile>/crowdroom
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = profile_dir.join("crowdroom");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p crowdroom` first (tests/run does)",
        binary.display()
    );
    // nextest rebuilds the library these tests link, not this binary:
    // tests/run builds the workspace first, so the binary is current there.
    binary
}

/// A running server process.
pub struct ServerProcess {
    pub child: Child,
    pub addr: String,
}

impl ServerProcess {
    /// Starts `crowdroom serve` on a free port over `database`.
    pub async fn start(database: &str) -> ServerProcess {
        ServerProcess::start_with(database, &[]).await
    }

    /// Starts `crowdroom serve` with extra flags.
    pub async fn start_with(database: &str, flags: &[&str]) -> ServerProcess {
        ServerProcess::start_with_env(database, flags, &[]).await
    }

    /// Starts `crowdroom serve` with extra flags and environment variables
    /// (settings a binary of another version may not know: it ignores them).
    pub async fn start_with_env(
        database: &str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut child = Command::new(binary())
            .args(["serve", "--addr", "127.0.0.1:0", "--database", database])
            .args(flags)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn crowdroom");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(addr) = line.strip_prefix("crowdroom listening on http://") {
                    return addr.trim().to_owned();
                }
            }
            panic!("crowdroom exited before listening");
        })
        .await
        .expect("crowdroom did not start");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        ServerProcess { child, addr }
    }

    /// SIGKILL: no flush, no goodbye.
    pub async fn kill9(mut self) {
        self.child.kill().await.expect("kill -9");
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("pid");
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await
            .expect("kill -TERM");
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(40), self.child.wait())
            .await
            .expect("exit after SIGTERM")
            .expect("wait")
    }
}
