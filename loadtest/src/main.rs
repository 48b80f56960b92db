//! `crowdroom-loadtest`: the crowd simulator (issue "The crowd simulator and
//! the performance bar"). Not built yet: this binary only says so, so that
//! nobody mistakes it for a load test.

fn main() -> std::process::ExitCode {
    eprintln!("crowdroom-loadtest is not implemented yet; see the load-test issue");
    std::process::ExitCode::FAILURE
}
