//! `fedseg-participant`: parses the command line and hands over to the
//! library.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use fedseg_common::analyst::{Analyst, AnalystConfig};
use fedseg_participant::config::ParticipantConfig;
use fedseg_participant::{
    campaign, joint_submit, ledger, node, pause, rfmlt, scoring, summary, tasks,
};
use fedseg_synth as synth;

/// The fedseg participant node.
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
    /// Connect out to the coordinator and serve its jobs until stopped.
    Run {
        /// participant.toml
        #[arg(long)]
        config: PathBuf,
        /// Start paused: connected, declining new offers until `resume`.
        #[arg(long)]
        pause: bool,
    },
    /// Pause this site: its running node stays connected but declines new
    /// job offers ("paused by the site"); a job already running continues.
    Pause {
        /// participant.toml
        #[arg(long)]
        config: PathBuf,
    },
    /// Resume a paused site: new offers are considered again, no restart.
    Resume {
        /// participant.toml
        #[arg(long)]
        config: PathBuf,
    },
    /// The egress ledger: everything that left this site.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Compute this site's RFMLT features and print a summary (row counts,
    /// exclusions, quantiles), without contacting anyone.
    Features {
        /// participant.toml
        #[arg(long)]
        config: PathBuf,
        /// Reference date, YYYY-MM-DD (default: today, UTC).
        #[arg(long)]
        as_of: Option<String>,
        /// Print one JSON line of counts, feature totals and timing instead.
        #[arg(long)]
        json: bool,
    },
    /// Score this site's customers with a finished job's model: writes
    /// customer_id, segment, segment_name, score and decile to a local CSV
    /// or Parquet file. Nothing is sent. With `--joint`, the label holder's
    /// analyst asks the coordinator for a joint scoring job with a vertical
    /// job's model instead (every party's newer data, a fresh
    /// intersection); this site's running node writes the scores.
    Score {
        /// participant.toml
        #[arg(long)]
        config: PathBuf,
        /// The job's result.json (as written by the coordinator or kept
        /// under this site's output directory).
        #[arg(long, required_unless_present = "joint", conflicts_with = "joint")]
        model: Option<PathBuf>,
        /// Output file; `.parquet` writes Parquet, anything else CSV.
        #[arg(long, required_unless_present = "joint", conflicts_with = "joint")]
        out: Option<PathBuf>,
        /// Reference date of the features (default: the job's as_of;
        /// required with `--joint`).
        #[arg(long)]
        as_of: Option<String>,
        /// A vertical job this site was the label holder of: run a joint
        /// scoring job with its model.
        #[arg(long, requires = "analyst")]
        joint: Option<String>,
        /// analyst.toml of the analyst who submits the joint scoring job.
        #[arg(long)]
        analyst: Option<PathBuf>,
        /// Longest wait for the joint scoring job, in seconds.
        #[arg(long, default_value_t = 3600)]
        wait_s: u64,
    },
    /// Campaigns: draw this site's contact list with a control group.
    #[command(subcommand)]
    Campaign(CampaignCommand),
    /// Write synthetic canonical tables for one bank.
    Synth {
        /// Directory for customers.csv, transactions.csv, interactions.csv.
        #[arg(long)]
        out: PathBuf,
        /// Number of customers.
        #[arg(long)]
        customers: u64,
        /// Seed; the same seed writes the same files.
        #[arg(long)]
        seed: u64,
        /// Mix of customer behaviours: retail, fintech or private.
        #[arg(long, default_value = "retail")]
        profile: String,
    },
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// Draw this site's contact list from a propensity job's scores: the
    /// customers of the chosen segments in the top score deciles, with a
    /// seeded random control group held back. Writes
    /// `<output>/campaigns/<name>/contacts.csv` and `plan.json`; nothing is
    /// sent. The settings come from the `[campaign]` table of the campaign's
    /// job file (`--job`, so every site draws the same way) or the flags.
    Plan {
        /// participant.toml
        #[arg(long)]
        config: PathBuf,
        /// The campaign evaluation's job.toml, whose `[campaign]` table
        /// holds the agreed settings.
        #[arg(long, conflicts_with_all = ["name", "model", "segments", "top_deciles", "control", "seed"])]
        job: Option<PathBuf>,
        /// Campaign name (without --job).
        #[arg(long, required_unless_present = "job")]
        name: Option<String>,
        /// Propensity job id whose result this site keeps (without --job).
        #[arg(long, required_unless_present = "job")]
        model: Option<String>,
        /// Segment names to draw from, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        segments: Vec<String>,
        /// Top score deciles taken, 1 to 10 (without --job).
        #[arg(long, required_unless_present = "job")]
        top_deciles: Option<u8>,
        /// Share held back as control (without --job).
        #[arg(long, required_unless_present = "job")]
        control: Option<f64>,
        /// Seed of the control group's draw (without --job).
        #[arg(long, required_unless_present = "job")]
        seed: Option<u64>,
    },
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Print the ledger as a table, after checking its hash chain.
    Show {
        /// participant.toml
        #[arg(long)]
        config: PathBuf,
    },
    /// Match every contribution the coordinator's journal attributes to this
    /// site against the ledger's digests, and every protocol message in the
    /// ledger against the journal. The journal is verified with the
    /// consortium CA first.
    Verify {
        /// participant.toml
        #[arg(long)]
        config: PathBuf,
        /// The coordinator's journal file.
        #[arg(long)]
        journal: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    fedseg_common::process::init_logging(cli.log_json);
    match cli.command {
        Command::Run { config, pause } => {
            let config = ParticipantConfig::load(&config)?;
            if pause {
                set_paused(&config, true)?;
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(node::run(config, fedseg_common::process::shutdown_signal()))?;
        }
        Command::Pause { config } => set_paused(&ParticipantConfig::load(&config)?, true)?,
        Command::Resume { config } => set_paused(&ParticipantConfig::load(&config)?, false)?,
        Command::Features {
            config,
            as_of,
            json,
        } => features(&ParticipantConfig::load(&config)?, as_of.as_deref(), json)?,
        Command::Score {
            config,
            model,
            out,
            as_of,
            joint,
            analyst,
            wait_s,
        } => {
            let config = ParticipantConfig::load(&config)?;
            match (joint, analyst, model, out) {
                (Some(training), Some(analyst), _, _) => joint_score(
                    &config,
                    &training,
                    &analyst,
                    as_of.as_deref(),
                    Duration::from_secs(wait_s),
                )?,
                (_, _, Some(model), Some(out)) => score(&config, &model, &out, as_of.as_deref())?,
                _ => bail!("score needs --model and --out, or --joint and --analyst"),
            }
        }
        Command::Campaign(CampaignCommand::Plan {
            config,
            job,
            name,
            model,
            segments,
            top_deciles,
            control,
            seed,
        }) => {
            let config = ParticipantConfig::load(&config)?;
            let settings = match job {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let job = fedseg_common::job::JobConfig::parse(&text)
                        .with_context(|| format!("{}", path.display()))?;
                    job.campaign
                        .with_context(|| format!("{} has no [campaign] table", path.display()))?
                }
                None => {
                    let model = model.context("--model")?;
                    fedseg_common::campaign::CampaignSettings {
                        name: name.context("--name")?,
                        segments: model_segments(&config, &model)?,
                        model,
                        target: segments,
                        top_deciles: top_deciles.context("--top-deciles")?,
                        control: control.context("--control")?,
                        seed: seed.context("--seed")?,
                        confidence: 0.95,
                    }
                }
            };
            let plan = campaign::plan(&config, &settings)?;
            println!(
                "campaign {}: {} customers chosen, {} to contact, {} held back as control; list in {}",
                settings.name,
                plan.chosen,
                plan.treatment,
                plan.control,
                campaign::dir(&config, &settings.name)
                    .join("contacts.csv")
                    .display()
            );
        }
        Command::Synth {
            out,
            customers,
            seed,
            profile,
        } => {
            let started = std::time::Instant::now();
            let written = synth::write(&out, customers, seed, &profile)?;
            println!(
                "wrote {} customers, {} transactions, {} interactions under {} in {:.1} s",
                written.customers,
                written.transactions,
                written.interactions,
                out.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Command::Ledger(LedgerCommand::Show { config }) => {
            ledger_show(&ParticipantConfig::load(&config)?)?
        }
        Command::Ledger(LedgerCommand::Verify { config, journal }) => {
            ledger_verify(&ParticipantConfig::load(&config)?, &journal)?
        }
    }
    Ok(())
}

/// Pauses or resumes the site (the marker file beside its ledger).
fn set_paused(config: &ParticipantConfig, paused: bool) -> Result<()> {
    let marker = pause::marker(&config.ledger);
    let context = || format!("writing {}", marker.display());
    if paused {
        pause::pause(&config.ledger).with_context(context)?;
        println!(
            "{} is paused: new job offers are declined until `fedseg-participant resume` ({})",
            config.id,
            marker.display()
        );
    } else if pause::resume(&config.ledger).with_context(context)? {
        println!("{} resumed: new job offers are considered", config.id);
    } else {
        println!("{} was not paused", config.id);
    }
    Ok(())
}

fn features(config: &ParticipantConfig, as_of: Option<&str>, json: bool) -> Result<()> {
    let data = config
        .data
        .as_ref()
        .context("participant.toml has no [data] tables")?;
    let as_of = match as_of {
        Some(text) => {
            rfmlt::parse_date(text).with_context(|| format!("--as-of {text:?} is not a date"))?
        }
        None => time::OffsetDateTime::now_utc().date(),
    };
    if data.tables().is_some() {
        let started = std::time::Instant::now();
        let features = data.features(as_of)?;
        let seconds = started.elapsed().as_secs_f64();
        print_summary(&summary::rfmlt(&features, as_of, seconds, json), json);
    }
    if data.feature_table().is_some() {
        let started = std::time::Instant::now();
        let rows = data.partner_rows()?;
        let seconds = started.elapsed().as_secs_f64();
        print_summary(&summary::partner(&rows, seconds, json), json);
    }
    Ok(())
}

/// A summary: JSON on a line of its own, text as it is.
fn print_summary(text: &str, json: bool) {
    if json {
        println!("{text}");
    } else {
        print!("{text}");
    }
}

fn score(
    config: &ParticipantConfig,
    model_path: &std::path::Path,
    out: &std::path::Path,
    as_of: Option<&str>,
) -> Result<()> {
    let data = config
        .data
        .as_ref()
        .context("participant.toml has no [data] tables")?;
    let text = std::fs::read_to_string(model_path)
        .with_context(|| format!("reading {}", model_path.display()))?;
    let model = scoring::SavedModel::from_result(&text)
        .with_context(|| format!("{}", model_path.display()))?;
    let as_of = match as_of {
        Some(text) => text.to_string(),
        None => serde_json::from_str::<serde_json::Value>(&text)?["as_of"]
            .as_str()
            .context("the result names no as_of; give --as-of")?
            .to_string(),
    };
    let as_of = rfmlt::parse_date(&as_of).with_context(|| format!("{as_of:?} is not a date"))?;
    let site = tasks::Site::from_features(data.features(as_of)?, as_of);
    let rows = model.write(&site, out)?;
    println!(
        "scored {rows} customers as of {as_of} into {}",
        out.display()
    );
    Ok(())
}

/// `score --joint`: submits a joint scoring job and names its scores.
fn joint_score(
    config: &ParticipantConfig,
    training: &str,
    analyst: &std::path::Path,
    as_of: Option<&str>,
    wait: Duration,
) -> Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let Some(as_of) = as_of else {
        bail!("score --joint needs --as-of: the reference date of the newer data");
    };
    let as_of = rfmlt::parse_date(as_of).with_context(|| format!("{as_of:?} is not a date"))?;
    let stamp = now.unix_timestamp().to_string();
    let job = joint_submit::scoring_job(
        &config.output,
        &config.id,
        training,
        &as_of.to_string(),
        &stamp,
    )?;
    let analyst = AnalystConfig::load(analyst)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let job_id = runtime.block_on(async {
        let mut analyst = Analyst::connect(analyst).await?;
        joint_submit::submit_and_wait(&mut analyst, job, wait).await
    })?;
    let scores = config.output.join(&job_id).join("scores.csv");
    let rows = std::fs::read_to_string(&scores)
        .with_context(|| {
            format!(
                "job {job_id} finished, but this site wrote no {}",
                scores.display()
            )
        })?
        .lines()
        .count()
        .saturating_sub(1);
    println!(
        "job {job_id}: scored {rows} shared customers into {}",
        scores.display()
    );
    Ok(())
}

/// The segment names of the model job this site keeps.
fn model_segments(config: &ParticipantConfig, model: &str) -> Result<Vec<String>> {
    let path = config.output.join(model).join("result.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let result: fedseg_common::result::JobResult =
        serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    Ok(result
        .segmentation
        .segments
        .into_iter()
        .map(|s| s.name)
        .collect())
}

fn ledger_show(config: &ParticipantConfig) -> Result<()> {
    let entries = ledger::read(&config.ledger)?;
    println!(
        "{:>5}  {:<20}  {:<18}  {:>5}  {:<14}  {:>9}  {:>10}  {:<7}  sha256",
        "seq", "unix ms", "job", "round", "kind", "bytes", "rho", "checked"
    );
    // Privacy spent per job, in ledger order.
    let mut spent: Vec<(&str, f64)> = Vec::new();
    for e in &entries {
        let round = e.round.map_or("-".to_string(), |r| r.to_string());
        let rho = e.rho.map_or(String::new(), |r| format!("{r:.3e}"));
        println!(
            "{:>5}  {:<20}  {:<18}  {:>5}  {:<14}  {:>9}  {:>10}  {:<7}  {}",
            e.seq,
            e.unix_ms,
            e.job_id,
            round,
            e.kind,
            e.bytes,
            rho,
            ledger::coverage(&e.kind),
            e.sha256
        );
        if let Some(rho) = e.rho {
            match spent.iter_mut().find(|(job, _)| *job == e.job_id) {
                Some((_, total)) => *total += rho,
                None => spent.push((&e.job_id, rho)),
            }
        }
    }
    let delta = config.privacy.as_ref().map_or(1e-6, |p| p.max_delta);
    for (job, rho) in spent {
        println!(
            "privacy spent on {job}: rho = {rho:.4e}, epsilon = {:.3} at delta = {delta:e}",
            fedseg_common::dp::epsilon_for(rho, delta)
        );
    }
    show_per_job(&entries, delta);
    println!("{}", ledger::COVERAGE_NOTE);
    Ok(())
}

/// What was sent per analyst and job.
fn show_per_job(entries: &[ledger::LedgerEntry], delta: f64) {
    let jobs = ledger::per_job(entries);
    if jobs.is_empty() {
        return;
    }
    println!("sent per analyst and job:");
    for (analyst, jobs) in ledger::by_analyst(&jobs) {
        println!("  analyst {analyst}:");
        for job in jobs {
            let epsilon = if job.rho > 0.0 {
                format!(
                    ", epsilon = {:.3} at delta = {delta:e}",
                    fedseg_common::dp::epsilon_for(job.rho, delta)
                )
            } else {
                String::new()
            };
            println!(
                "    {}: {} messages, {} bytes{epsilon}; purpose: {}",
                job.job_id,
                job.messages,
                job.bytes,
                job.purpose.as_deref().unwrap_or("(none stated)")
            );
        }
    }
}

fn ledger_verify(config: &ParticipantConfig, journal: &std::path::Path) -> Result<()> {
    let entries = ledger::read(&config.ledger)?;
    let bytes = std::fs::read(journal).with_context(|| format!("reading {}", journal.display()))?;
    let ca = config.tls.ca_pem()?;
    let verified = fedseg_common::journal::verify(&bytes, &ca).map_err(|e| {
        anyhow::anyhow!("{}: journal verification failed at {e}", journal.display())
    })?;
    let mut found = ledger::reconcile(&config.id, &entries, &verified);
    // Checked with this site's own key, not a certificate the journal holds.
    let own = std::fs::read(&config.tls.cert)
        .map_err(anyhow::Error::from)
        .and_then(|pem| Ok(fedseg_common::certs::pem_to_der(&pem)?))
        .and_then(|der| Ok(fedseg_common::certs::key_unchecked(&der)?))
        .with_context(|| {
            format!(
                "reading this site's certificate {}",
                config.tls.cert.display()
            )
        })?;
    found.unsigned.extend(ledger::inputs_unsigned(
        &config.id, &own, &entries, &verified,
    ));
    let failures = found
        .mismatched
        .iter()
        .chain(&found.unaccounted)
        .chain(&found.ends_missing)
        .chain(&found.unsigned);
    for line in failures {
        println!("{line}");
    }
    for line in &found.in_flight {
        println!("in flight at a coordinator crash, not journaled: {line}");
    }
    for line in &found.not_received {
        println!("not accepted by the coordinator: {line}");
    }
    for line in &found.unconfirmed {
        println!("released after this site dropped out: {line}");
    }
    for line in &found.unfinished {
        println!("the journal does not show this job's end: {line}");
    }
    if !found.agrees() {
        bail!(
            "{} contributions do not match the ledger, {} sent messages are not in the journal, \
             {} job ends this site was told are not in the journal, \
             {} releases with this site's input lack its signature",
            found.mismatched.len(),
            found.unaccounted.len(),
            found.ends_missing.len(),
            found.unsigned.len()
        );
    }
    println!(
        "{} contributions of {} in the journal match the ledger ({} lines checked; {} sent \
         while the coordinator crashed; {} not accepted in time; {} job ends attested)",
        found.matched,
        config.id,
        entries.len(),
        found.in_flight.len(),
        found.not_received.len(),
        found.ends_attested
    );
    Ok(())
}
