//! `crowdroom consensus`: runs the estimators offline on a dataset folder,
//! a CSV of answers, or a synthetic crowd, and prints one JSON line per
//! method. It opens no database.
//!
//! Why a CLI command: the benchmark figures in docs/BENCHMARKS.md must be
//! reproducible by anyone with the binary and the dataset folders.

use std::io::Write;
use std::path::PathBuf;

use clap::{ArgGroup, ValueEnum};
use crowdroom_work::consensus::dataset::Dataset;
use crowdroom_work::consensus::dawid_skene::DsOptions;
use crowdroom_work::consensus::synthetic::{self, SyntheticSpec};
use crowdroom_work::consensus::vote::WmvOptions;

use super::Method;
use super::datasets;
use super::report::{self, RunOptions};
use crate::error::{Error, Result};

/// Arguments of `crowdroom consensus`.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("input").required(true).args(["dataset", "answers", "synthetic"])))]
pub struct ConsensusArgs {
    /// A dataset folder (e.g. shared/datasets/snow2008-rte); its format is
    /// detected from the files present.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// A CSV of answers with a header line: task,worker,answer.
    #[arg(long)]
    pub answers: Option<PathBuf>,
    /// A CSV of gold answers with a header line: task,answer (with --answers).
    #[arg(long, requires = "answers")]
    pub gold: Option<PathBuf>,
    /// Generates a synthetic crowd instead of reading one:
    /// TASKSxANSWERS[,workers=N][,classes=K][,seed=S], e.g. 200000x5,workers=2000,classes=4,seed=1.
    #[arg(long)]
    pub synthetic: Option<String>,
    /// Which estimator to run; `all` runs mv, wmv and ds on categorical
    /// answers and median on numeric ones.
    #[arg(long, value_enum, default_value_t = MethodArg::All)]
    pub method: MethodArg,
    /// Whether answers are categories or numbers; `auto` says numeric when
    /// every answer is a number and there are more than 20 distinct values.
    #[arg(long, value_enum, default_value_t = KindArg::Auto)]
    pub kind: KindArg,
    /// Dawid-Skene: EM iterations at most.
    #[arg(long, default_value_t = DsOptions::default().max_iterations)]
    pub max_iterations: u32,
    /// Dawid-Skene: stop when the log-likelihood per answer gains less than this.
    #[arg(long, default_value_t = DsOptions::default().tolerance)]
    pub tolerance: f64,
    /// Dawid-Skene: pseudo-count added to every confusion cell and class prior.
    #[arg(long, default_value_t = DsOptions::default().smoothing)]
    pub smoothing: f64,
}

/// `--method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    Mv,
    Wmv,
    Ds,
    Median,
    All,
}

/// `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    Auto,
    Categorical,
    Numeric,
}

/// Runs the command: reads the input, runs the methods, prints JSON lines.
pub fn run(args: ConsensusArgs) -> Result<()> {
    if !(args.smoothing.is_finite() && args.smoothing >= 0.0 && args.tolerance.is_finite()) {
        return Err(Error::BadRequest(
            "--smoothing must be >= 0 and --tolerance a finite number".into(),
        ));
    }
    if args.gold.is_some() && args.answers.is_none() {
        return Err(Error::BadRequest(
            "--gold goes with --answers (dataset folders carry their own gold)".into(),
        ));
    }
    let dataset = load(&args)?;
    if dataset.answers.is_empty() {
        return Err(Error::BadRequest(format!("{}: no answers", dataset.name)));
    }
    if dataset.answers.duplicates() > 0 {
        eprintln!(
            "note: {}: {} answers repeat an earlier (worker, item) pair; the last answer of each pair is kept",
            dataset.name,
            dataset.answers.duplicates()
        );
    }
    if dataset.gold_unanswered > 0 {
        eprintln!(
            "note: {}: {} gold items have no answers and are not evaluated",
            dataset.name, dataset.gold_unanswered
        );
    }
    let numeric = match args.kind {
        KindArg::Auto => dataset.looks_numeric(),
        KindArg::Categorical => false,
        KindArg::Numeric => true,
    };
    let methods: &[Method] = match (args.method, numeric) {
        (MethodArg::All, true) => &[Method::Median],
        (MethodArg::All, false) => &[Method::Mv, Method::Wmv, Method::Ds],
        (MethodArg::Mv, _) => &[Method::Mv],
        (MethodArg::Wmv, _) => &[Method::Wmv],
        (MethodArg::Ds, _) => &[Method::Ds],
        (MethodArg::Median, _) => &[Method::Median],
    };
    if args.method == MethodArg::All && numeric {
        eprintln!(
            "note: {}: answers are numeric; mv, wmv and ds are skipped, median is reported with its MAE",
            dataset.name
        );
    }
    let options = RunOptions {
        wmv: WmvOptions::default(),
        ds: DsOptions {
            max_iterations: args.max_iterations,
            tolerance: args.tolerance,
            smoothing: args.smoothing,
        },
    };
    let mut stdout = std::io::stdout().lock();
    for &method in methods {
        if method.is_categorical() == numeric {
            let kind = if numeric { "numeric" } else { "categorical" };
            eprintln!(
                "skipping {}: {} has {kind} answers (see --kind)",
                method.as_str(),
                dataset.name
            );
            continue;
        }
        let line = report::evaluate(&dataset, method, &options)?;
        let json =
            serde_json::to_string(&line).map_err(|error| Error::Internal(error.to_string()))?;
        writeln!(stdout, "{json}")
            .map_err(|error| Error::Internal(format!("cannot write to stdout: {error}")))?;
    }
    Ok(())
}

fn load(args: &ConsensusArgs) -> Result<Dataset> {
    match (&args.dataset, &args.answers, &args.synthetic) {
        (Some(directory), _, _) => datasets::load_dir(directory),
        (None, Some(answers), _) => datasets::load_csv(answers, args.gold.as_deref()),
        (None, None, Some(spec)) => Ok(synthetic::generate(SyntheticSpec::parse(spec)?)?),
        (None, None, None) => Err(Error::BadRequest(
            "give --dataset, --answers or --synthetic".into(),
        )),
    }
}
