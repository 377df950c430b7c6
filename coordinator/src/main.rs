//! `fedseg-coordinator`: parses the command line and hands over to the
//! library.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use fedseg_common::identity::Role;
use fedseg_common::keys::KeyAlgorithm;
use fedseg_coordinator::bench::{self, SecureSumConfig};
use fedseg_coordinator::config::{CoordinatorConfig, Job};
use fedseg_coordinator::engine::HubTransport;
use fedseg_coordinator::job::{check_out, conclude, run_job};
use fedseg_coordinator::jobs;
use fedseg_coordinator::journal::JournalWriter;
use fedseg_coordinator::pki::{self, Validity};
use fedseg_coordinator::{demo, journal_view, server};
use tokio::sync::oneshot;
use tracing::{Instrument, info};

mod job_cli;
use job_cli::{JobCommand, job_command};

/// The fedseg coordinator.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The consortium PKI.
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Serve participants until stopped (SIGTERM or Ctrl-C).
    Serve {
        /// coordinator.toml
        #[arg(long)]
        config: PathBuf,
        /// A job to run first (skipped when its journal says it finished).
        #[arg(long, requires = "out")]
        job: Option<PathBuf>,
        /// Where the job's result and reports go.
        #[arg(long, requires = "job")]
        out: Option<PathBuf>,
    },
    /// Run one job to its end and write DIR/result.json.
    Run {
        /// coordinator.toml
        #[arg(long)]
        config: PathBuf,
        /// job.toml
        #[arg(long)]
        job: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// A local synthetic consortium.
    Demo {
        /// Directory to create it in.
        #[arg(long)]
        dir: PathBuf,
        /// Number of sites.
        #[arg(long, default_value_t = 3)]
        sites: usize,
        /// Customers in the whole consortium, spread unevenly over the
        /// sites (shares 1 : 2 : … : N).
        #[arg(long, default_value_t = 6000)]
        customers: u64,
        /// Only write the consortium; start nothing.
        #[arg(long)]
        init_only: bool,
        /// Address the demo coordinator listens on.
        #[arg(long, default_value = "127.0.0.1:7443")]
        listen: String,
        /// Run the job under differential privacy with this ε (δ = 1e-6);
        /// rewrites the consortium's job.toml.
        #[arg(long)]
        epsilon: Option<f64>,
        /// A vertical consortium instead: one bank (the label holder) and
        /// one fintech feature partner that share customers.
        #[arg(long, conflicts_with_all = ["epsilon", "sites"])]
        vertical: bool,
        /// The marketing loop: this many monthly segmentation jobs of one
        /// series (the last with the propensity model), a campaign drawn at
        /// every bank, simulated outcomes and the campaign's evaluation.
        #[arg(long, conflicts_with_all = ["epsilon", "vertical", "init_only"])]
        months: Option<usize>,
    },
    /// Benchmarks.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The coordinator's signed journal.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// An analyst's jobs on a running `serve` (certificate role analyst).
    #[command(subcommand)]
    Job(JobCommand),
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Verify offline, with only the consortium CA certificate: the
    /// coordinator certificate the journal carries, then every hash link and
    /// signature. Names the first bad record (exit status 1). A journal
    /// whose records all verify but where a job has no `job_finished`
    /// record (a running or crashed coordinator, or a file cut at a record
    /// boundary) is reported UNFINISHED with each such job's last state,
    /// exit status 2.
    Verify {
        /// The journal file.
        #[arg(long)]
        journal: PathBuf,
        /// The consortium CA certificate (PEM).
        #[arg(long)]
        ca: PathBuf,
    },
    /// Print the journal's jobs and rounds as a table (or JSON lines).
    Show {
        /// The journal file.
        #[arg(long)]
        journal: PathBuf,
        /// One JSON object per record instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create the consortium CA: DIR/ca.crt and DIR/ca.key.
    Init {
        /// PKI directory.
        #[arg(long)]
        dir: PathBuf,
        /// Consortium name.
        #[arg(long)]
        consortium: String,
        /// Key algorithm of the CA.
        #[arg(long, default_value = "ecdsa-p256", value_parser = key_algorithm())]
        algorithm: KeyAlgorithm,
    },
    /// Issue DIR/<id>.crt and DIR/<id>.key signed by the CA in DIR.
    Issue {
        /// PKI directory.
        #[arg(long)]
        dir: PathBuf,
        /// Member identity (lowercase letters, digits, hyphens).
        #[arg(long)]
        id: String,
        /// Role: participant, coordinator, auditor or analyst.
        #[arg(long)]
        role: Role,
        /// Days of validity (1 to 36500).
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=36_500))]
        days: i64,
        /// Key algorithm of the member's key (ECDSA P-256 is the one every
        /// TLS stack accepts; BoringSSL clients such as grpcio refuse Ed25519).
        #[arg(long, default_value = "ecdsa-p256", value_parser = key_algorithm())]
        algorithm: KeyAlgorithm,
    },
}

/// Parses `--algorithm`, listing the possible values in `--help`.
fn key_algorithm() -> impl clap::builder::TypedValueParser<Value = KeyAlgorithm> {
    use clap::builder::TypedValueParser;
    let names = KeyAlgorithm::ALL.map(KeyAlgorithm::as_str);
    clap::builder::PossibleValuesParser::new(names).map(|name| {
        name.parse::<KeyAlgorithm>()
            .expect("one of the possible values")
    })
}

#[derive(Subcommand)]
enum BenchCommand {
    /// The whole secure-sum protocol in one process and one thread; prints
    /// one JSON line.
    SecureSum(SecureSumArgs),
    /// Sweeps n, d, dropouts and graph kinds; prints a markdown table.
    Sweep,
}

#[derive(Args)]
struct SecureSumArgs {
    /// Number of participants n.
    #[arg(long)]
    participants: u32,
    /// Vector length d in 64-bit words.
    #[arg(long)]
    length: usize,
    /// Neighbours per participant (n − 1 or more: complete graph).
    #[arg(long)]
    neighbours: u32,
    /// Shamir threshold t.
    #[arg(long)]
    threshold: u32,
    /// Fraction of participants that drop before sending a masked input.
    #[arg(long)]
    dropout: f64,
    /// Consecutive rounds on one key set-up.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    fedseg_common::process::init_logging(cli.log_json);
    match cli.command {
        Command::Pki(PkiCommand::Init {
            dir,
            consortium,
            algorithm,
        }) => pki::init_with(&dir, &consortium, algorithm)?,
        Command::Pki(PkiCommand::Issue {
            dir,
            id,
            role,
            days,
            algorithm,
        }) => pki::issue_with(&dir, &id, role, Validity::days_from_now(days), algorithm)?,
        Command::Serve { config, job, out } => {
            runtime()?.block_on(serve(&config, job.as_deref().zip(out.as_deref())))?
        }
        Command::Run { config, job, out } => runtime()?.block_on(run(&config, &job, &out))?,
        Command::Demo {
            dir,
            sites,
            customers,
            init_only,
            listen,
            epsilon,
            vertical,
            months,
        } => {
            if (init_only || !dir.join("coordinator.toml").exists()) && vertical {
                demo::init_vertical(&dir, customers, &listen)?;
                println!(
                    "wrote a vertical consortium ({} with {customers} customers, {} sharing part of them) under {}",
                    demo::VERTICAL_BANK,
                    demo::VERTICAL_PARTNER,
                    dir.display()
                );
            } else if init_only || !dir.join("coordinator.toml").exists() {
                demo::init(&dir, sites, customers, &listen)?;
                println!(
                    "wrote a consortium of {sites} sites and {customers} customers under {}",
                    dir.display()
                );
            }
            if let Some(epsilon) = epsilon {
                let path = dir.join("job.toml");
                let run = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                std::fs::write(&path, demo::job(Some((epsilon, run))))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            if let Some(months) = months {
                runtime()?.block_on(run_loop(&dir, months))?;
            } else if !init_only {
                runtime()?.block_on(run_demo(&dir))?;
            }
        }
        Command::Bench(BenchCommand::SecureSum(a)) => {
            let report = bench::secure_sum(&SecureSumConfig {
                participants: a.participants,
                length: a.length,
                neighbours: a.neighbours,
                threshold: a.threshold,
                dropout: a.dropout,
                rounds: a.rounds,
            })?;
            println!("{}", serde_json::to_string(&report)?);
        }
        Command::Journal(JournalCommand::Verify { journal, ca }) => {
            let bytes = std::fs::read(&journal)
                .with_context(|| format!("reading {}", journal.display()))?;
            let ca_pem = std::fs::read(&ca).with_context(|| format!("reading {}", ca.display()))?;
            let verified = fedseg_common::journal::verify(&bytes, &ca_pem).map_err(|e| {
                anyhow::anyhow!("{}: verification failed at {e}", journal.display())
            })?;
            let (verdict, complete) = fedseg_coordinator::job::verdict(&verified);
            println!("{}: {verdict}", journal.display());
            println!(
                "{} releases co-signed by their survivors, {} survivor signatures verified, \
                 {} signatures of survivors on their own masked inputs verified",
                verified.cosigned.releases, verified.cosigned.signatures, verified.cosigned.inputs
            );
            println!(
                "{} jobs queued by analysts, each analyst's signature verified",
                verified.submissions
            );
            if !complete {
                // Distinct from a failed check (1): every record verifies,
                // but the journal does not show every job's end.
                std::process::exit(2);
            }
        }
        Command::Journal(JournalCommand::Show { journal, json }) => {
            let bytes = std::fs::read(&journal)
                .with_context(|| format!("reading {}", journal.display()))?;
            let records = fedseg_common::journal::read(&bytes).map_err(|e| {
                anyhow::anyhow!(
                    "{}: {e} (run `journal verify` for the full check)",
                    journal.display()
                )
            })?;
            print!("{}", journal_view::render(&records, json)?);
        }
        Command::Job(command) => runtime()?.block_on(job_command(command))?,
        Command::Bench(BenchCommand::Sweep) => {
            println!("{}", bench::SWEEP_HEADER);
            for (graph, config) in bench::sweep_configs() {
                println!("{}", bench::sweep_row(graph, &bench::secure_sum(&config)?));
            }
        }
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Serves until stopped; with a job, runs it first (unless its journal says
/// it finished) and keeps serving audit, health and metrics afterwards, so a
/// restarted container neither repeats nor loses a job.
async fn serve(config_path: &Path, job: Option<(&Path, &Path)>) -> Result<()> {
    let config = CoordinatorConfig::load(config_path)?;
    let job = job
        .map(|(j, out)| {
            let job = Job::load(j)?;
            job.check_cohort(j, &config)?;
            anyhow::Ok((job, out))
        })
        .transpose()?;
    if let Some((_, out)) = &job {
        writable_out(out)?;
    }
    let mut journal = JournalWriter::for_coordinator(&config)?;
    let running = server::start_with(
        &config,
        fedseg_common::process::shutdown_signal(),
        Some(&journal),
    )
    .await?;
    let mut events = running.events;
    if let Some((job, out)) = job {
        // A finished job is retraced from the journal: its outputs are
        // written again, nobody is asked anything.
        let sessions = HubTransport::new(running.hub.clone(), &mut events);
        let outcome = run_job(sessions, &config, &job, &mut journal).await;
        match conclude(outcome, &mut journal, &config, job.id.clone(), out) {
            Ok(shown) => show(shown),
            Err(error) => {
                let error = anyhow::Error::from(error);
                tracing::error!(error = %format!("{error:#}"), "the job failed; still serving");
            }
        }
    }
    // The analysts' jobs, one after another, on a writable handle (a
    // retraced job leaves its own read-only), until the server stops. (A
    // job's future is not `Send`: it runs on this task, not a spawned one.)
    match running.jobs {
        Some((queue, cancels)) => {
            let scheduler =
                jobs::scheduler::run(queue, running.hub.clone(), events, journal.share(), cancels);
            tokio::select! {
                stopped = running.task => stopped??,
                () = scheduler => {}
            }
        }
        None => running.task.await??,
    }
    Ok(())
}

/// Fails at once, naming `--out`, when the result could not be written.
fn writable_out(out: &Path) -> Result<()> {
    check_out(out).with_context(|| {
        format!(
            "--out {} must be a directory this coordinator can create and write",
            out.display()
        )
    })
}

async fn run(config_path: &Path, job_path: &Path, out: &Path) -> Result<()> {
    let config = CoordinatorConfig::load(config_path)?;
    let job = Job::load(job_path)?;
    writable_out(out)?;
    job.check_cohort(job_path, &config)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let running = server::start(&config, async move {
        let _ = stopped.await;
    })
    .await?;
    let mut events = running.events;
    let mut journal = JournalWriter::for_coordinator(&config)?;
    let job_id = job.id.clone();
    let sessions = HubTransport::new(running.hub.clone(), &mut events);
    let span = tracing::info_span!("job", job = %job_id);
    let outcome = tokio::select! {
        outcome = run_job(sessions, &config, &job, &mut journal).instrument(span) => outcome,
        _ = fedseg_common::process::shutdown_signal() => bail!("interrupted before the job finished"),
    };
    running.hub.close_all();
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(5), running.task).await;
    show(conclude(outcome, &mut journal, &config, job_id, out)?);
    Ok(())
}

/// Prints what a concluded job has to show on the terminal.
fn show(shown: Option<String>) {
    if let Some(text) = shown {
        println!("{text}");
    }
}

/// `demo` without `--init-only`: one participant process per site (the
/// `fedseg-participant` binary beside this one) and the job run here, all
/// over mutual TLS on loopback; everything stops at the end.
async fn run_demo(dir: &Path) -> Result<()> {
    fresh_journal(dir)?;
    run_with_sites(dir, &dir.join("job.toml"), &dir.join("out")).await
}

/// Moves an earlier demo run's journal (and the loop's series history)
/// aside: a finished job stays in its journal; the demo starts a fresh one
/// each time so that replaced data files are used.
fn fresh_journal(dir: &Path) -> Result<()> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    for (old, new) in [
        ("journal.log", format!("journal.{stamp}.log")),
        ("series", format!("series.{stamp}")),
    ] {
        if dir.join(old).exists() {
            std::fs::rename(dir.join(old), dir.join(new))?;
        }
    }
    Ok(())
}

/// `demo --months N` (module `demo_loop`): the series, the campaign plan
/// at every bank, simulated outcomes and the campaign's evaluation.
async fn run_loop(dir: &Path, months: usize) -> Result<()> {
    use fedseg_coordinator::demo_loop;
    anyhow::ensure!(
        months >= 2,
        "--months needs at least 2 months for a migration"
    );
    fresh_journal(dir)?;
    let jobs = dir.join("jobs");
    std::fs::create_dir_all(&jobs)?;
    let mut last = PathBuf::new();
    for m in 0..months {
        let job = jobs.join(format!("month-{}.toml", m + 1));
        std::fs::write(&job, demo_loop::month_job(m, months))?;
        last = dir.join("out").join(format!("month-{}", m + 1));
        println!("== month {} of {months} ==", m + 1);
        run_with_sites(dir, &job, &last).await?;
    }
    let text = std::fs::read_to_string(last.join("result.json"))?;
    let model: fedseg_common::result::JobResult = serde_json::from_str(&text)?;
    let settings = demo_loop::campaign(&model);
    let job = jobs.join("campaign.toml");
    std::fs::write(&job, demo_loop::campaign_job(&settings, &model.as_of))?;
    let participant = participant_binary()?;
    for site in std::fs::read_dir(dir.join("sites"))? {
        let site = site?.path();
        let status = std::process::Command::new(&participant)
            .args(["campaign", "plan", "--config"])
            .arg(site.join("participant.toml"))
            .arg("--job")
            .arg(&job)
            .status()?;
        anyhow::ensure!(
            status.success(),
            "campaign plan failed at {}",
            site.display()
        );
        demo_loop::simulate_outcomes(&site, &settings)?;
    }
    println!(
        "== campaign {} (simulated outcomes: +{:.0} points in {}, none elsewhere) ==",
        settings.name,
        100.0 * demo_loop::SIMULATED_UPLIFT,
        settings.target.first().map_or("", String::as_str)
    );
    run_with_sites(dir, &job, &dir.join("out").join("campaign")).await
}

fn participant_binary() -> Result<PathBuf> {
    let participant = std::env::current_exe()?.with_file_name(format!(
        "fedseg-participant{}",
        std::env::consts::EXE_SUFFIX
    ));
    anyhow::ensure!(
        participant.exists(),
        "{} is missing: build both binaries first (cargo build --release)",
        participant.display()
    );
    Ok(participant)
}

/// Runs `job` into `out` with one participant process per site.
async fn run_with_sites(dir: &Path, job: &Path, out: &Path) -> Result<()> {
    let participant = participant_binary()?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let mut sites: Vec<PathBuf> = std::fs::read_dir(dir.join("sites"))
        .with_context(|| format!("{} has no sites/", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path().join("participant.toml")))
        .filter(|p| p.exists())
        .collect();
    sites.sort();
    let mut children = Vec::new();
    for config in &sites {
        let site = config
            .parent()
            .and_then(|p| p.file_name())
            .map_or("site".into(), |n| n.to_string_lossy().into_owned());
        let log = std::fs::File::create(logs.join(format!("{site}.log")))?;
        let child = tokio::process::Command::new(&participant)
            .arg("run")
            .arg("--config")
            .arg(config)
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", participant.display()))?;
        info!(site = %site, "participant started (log in {}/{site}.log)", logs.display());
        children.push(child);
    }
    let outcome = run(&dir.join("coordinator.toml"), job, out).await;
    for child in &mut children {
        let _ = child.start_kill();
    }
    for child in &mut children {
        let _ = child.wait().await;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_validity_beyond_a_century_is_refused_by_the_parser() {
        let issue = |days: &str| {
            Cli::try_parse_from([
                "fedseg-coordinator",
                "pki",
                "issue",
                "--dir",
                "/tmp/x",
                "--id",
                "bank-a",
                "--role",
                "participant",
                "--days",
                days,
            ])
        };
        assert!(issue("365").is_ok());
        assert!(issue("3000000").is_err());
        assert!(issue("0").is_err());
    }
}
