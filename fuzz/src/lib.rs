//! The fuzz targets: one function per decoder that reads bytes from another
//! site, each taking the fuzzed bytes. The AFL binaries in `src/bin/` call
//! them, and so does the workspace's replay test
//! (`participant/tests/fuzz_regressions.rs`, which includes this file), so
//! every kept input runs through exactly what the fuzzer ran.
//!
//! Nothing here may panic on its own account: a panic is a finding.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use fedseg_common::job::JobConfig;
use fedseg_common::journal::{self, VerifiedJournal};
use fedseg_common::mpc::wire as mpc_wire;
use fedseg_common::proto::{
    self, CoordinatorMessage, ParticipantMessage, computation::Kind, coordinator_message,
    participant_message,
};
use fedseg_common::secagg::messages::{
    EpochStart, KeyAdvertisement, MaskedInput, ShareBundle, ShareDelivery, SurvivorSet,
    SurvivorSignature, UnmaskRequest, UnmaskResponse,
};
use fedseg_common::{identity, privacy, wire};
use fedseg_participant::config::ParticipantConfig;
use fedseg_participant::ledger;
use fedseg_participant::partner::{self, FeatureColumn, FeatureTable, Transform};
use fedseg_participant::rfmlt::{BadRowPolicy, MaxBadRows, OnBadRow, Tables, compute_with};
use fedseg_participant::scoring::SavedModel;
use fedseg_participant::tasks::{self, Model, Site};
use prost::Message;

/// A fuzz target: takes the fuzzed bytes, and must not panic.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/corpus/<name>/` and
/// `fuzz/regressions/<name>/` name them.
pub const TARGETS: [(&str, Target); 9] = [
    ("journal", journal),
    ("ledger", ledger),
    ("tables_csv", tables_csv),
    ("tables_parquet", tables_parquet),
    ("wire", wire),
    ("identity", identity),
    ("config", config),
    ("result_json", result_json),
    ("vector", vector),
];

/// The consortium CA of the ECDSA journal fixture, for `journal::verify`.
pub const CA_PEM: &[u8] =
    include_bytes!("../../coordinator/tests/fixtures/journal-ecdsa-p256/ca.crt");
/// A journal signed under [`CA_PEM`], for reconciling fuzzed ledgers.
pub const JOURNAL: &[u8] =
    include_bytes!("../../coordinator/tests/fixtures/journal-ecdsa-p256/journal.log");

/// The `as_of` of the fuzzed jobs (the demo job's).
pub const AS_OF: time::Date = time::macros::date!(2026 - 11 - 01);

/// A valid customers table (CSV) that the fuzzed tables can refer to.
pub const CUSTOMERS_CSV: &str = "customer_id,consent_marketing,converted,since\n\
c1,true,false,2020-01-01\nc2,true,true,\nc3,false,false,2019-05-05\n";
/// A valid transactions table (CSV).
pub const TRANSACTIONS_CSV: &str =
    "customer_id,ts,amount\nc1,2026-10-01,12.5\nc2,2026-09-01T10:00:00Z,3\n";
/// A valid interactions table (CSV).
pub const INTERACTIONS_CSV: &str = "customer_id,ts,kind\nc1,2026-10-02,inquiry\n";

/// The largest mask request the wire target computes: a request's length
/// is the coordinator's to choose (the node bounds it by
/// `max_message_bytes`); longer ones are still decoded and checked.
pub const MAX_COMPUTED_LENGTH: usize = 1 << 16;

/// This process's scratch directory under /dev/shm (or the temp dir), so
/// the file readers see real files without touching the disk each run. It
/// is made again by [`write`] after [`remove_scratch`].
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("fedseg-fuzz-{}", std::process::id()))
    })
}

/// Removes the scratch directory.
pub fn remove_scratch() {
    let _ = std::fs::remove_dir_all(scratch());
}

/// Writes `bytes` to `path`, making its directory when it is missing.
fn write(path: &Path, bytes: &[u8]) {
    if std::fs::write(path, bytes).is_err() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("scratch directory");
        }
        std::fs::write(path, bytes).expect("scratch file");
    }
}

/// Writes `bytes` to `name` in the scratch directory and returns its path.
pub fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    write(&path, bytes);
    path
}

/// Splits `data` at NUL bytes into exactly `n` parts (missing ones empty).
fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = data.splitn(n, |b| *b == 0).collect();
    out.resize(n, &[]);
    out
}

fn tables(customers: PathBuf, transactions: PathBuf, interactions: PathBuf) -> Tables {
    Tables {
        transactions,
        interactions,
        customers,
        columns: Default::default(),
    }
}

/// A small valid site, for the decoders whose result is applied to one.
fn site() -> Site {
    let tables = tables(
        file("site-customers.csv", CUSTOMERS_CSV.as_bytes()),
        file("site-transactions.csv", TRANSACTIONS_CSV.as_bytes()),
        file("site-interactions.csv", INTERACTIONS_CSV.as_bytes()),
    );
    Site::load(&tables, AS_OF).expect("the fixed site loads")
}

/// The fixed site, shared by the targets that apply what they decoded.
fn shared_site() -> &'static Mutex<Site> {
    static SITE: OnceLock<Mutex<Site>> = OnceLock::new();
    SITE.get_or_init(|| Mutex::new(site()))
}

/// A participant's configuration whose vector `v` is `vector.txt` of the
/// scratch directory.
fn participant_config() -> &'static ParticipantConfig {
    static CONFIG: OnceLock<ParticipantConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let text = "id = \"bank-a\"\ncoordinator = \"https://127.0.0.1:7443\"\n\
            coordinator_id = \"coordinator\"\nledger = \"ledger.log\"\n\
            [tls]\nca = \"ca.crt\"\ncert = \"bank-a.crt\"\nkey = \"bank-a.key\"\n\
            [data]\ntransactions = \"site-transactions.csv\"\n\
            interactions = \"site-interactions.csv\"\ncustomers = \"site-customers.csv\"\n\
            [vectors]\nv = \"vector.txt\"\n";
        ParticipantConfig::load(&file("fixed-participant.toml", text.as_bytes()))
            .expect("the fixed participant.toml loads")
    })
}

/// The bad-row policies a site may run under: the default (fail), and skip
/// with a generous limit so that reading goes on past bad rows.
fn policies() -> [BadRowPolicy; 2] {
    [
        BadRowPolicy::default(),
        BadRowPolicy {
            on_bad_row: OnBadRow::Skip,
            max_bad_rows: MaxBadRows::Fraction(0.9),
            ..BadRowPolicy::default()
        },
    ]
}

/// A feature partner's table at `path` offering `spend` (log1p) and
/// `score`, with consent column `ok`.
fn feature_table(path: PathBuf) -> FeatureTable {
    let column = |clip, transform| FeatureColumn { clip, transform };
    FeatureTable {
        path,
        columns: [
            ("spend".into(), column([0.0, 1e6], Transform::Log1p)),
            ("score".into(), column([-5.0, 5.0], Transform::Identity)),
        ]
        .into_iter()
        .collect(),
        consent: Some("ok".into()),
        names: Default::default(),
    }
}

/// Reads everything a site reads from its tables, under every policy.
fn read_tables(tables: &Tables, features: Option<&FeatureTable>) {
    for policy in policies() {
        let _ = compute_with(tables, AS_OF, &policy);
        if let Some(features) = features {
            let _ = partner::read(features, &policy);
        }
    }
}

/// A journal as an auditor or a participant receives it: read, verified
/// against the consortium CA, and (when it verifies) reconciled with an
/// empty ledger.
pub fn journal(data: &[u8]) {
    let _ = journal::read(data);
    if let Ok(verified) = journal::verify(data, CA_PEM) {
        let _ = ledger::reconcile("bank-a", &[], &verified);
    }
}

/// A participant's egress ledger file: read and checked, reconciled with a
/// verified journal (what `ledger verify` does), and opened for appending.
pub fn ledger(data: &[u8]) {
    static JOURNAL_OK: OnceLock<VerifiedJournal> = OnceLock::new();
    let verified =
        JOURNAL_OK.get_or_init(|| journal::verify(JOURNAL, CA_PEM).expect("fixture journal"));
    let path = file("ledger.log", data);
    if let Ok(entries) = ledger::read(&path) {
        let _ = ledger::reconcile("bank-a", &entries, verified);
        if let Ok(opened) = ledger::Ledger::open(&path) {
            let _ = (opened.rho_since(0), opened.rho_of_job("job-1"));
        }
    }
}

/// A site's CSV tables: the input split at NUL bytes into the customers,
/// transactions, interactions and feature partner's tables.
pub fn tables_csv(data: &[u8]) {
    let p = parts(data, 4);
    let tables = tables(
        file("customers.csv", p[0]),
        file("transactions.csv", p[1]),
        file("interactions.csv", p[2]),
    );
    read_tables(&tables, Some(&feature_table(file("features.csv", p[3]))));
}

/// A site's Parquet tables: the first byte picks which table the rest is
/// (customers, transactions, interactions, the feature partner's); the
/// others are small valid CSV tables.
pub fn tables_parquet(data: &[u8]) {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    let pick = |name: &str, csv: &str, index: u8| {
        if which % 4 == index {
            file(&format!("{name}.parquet"), bytes)
        } else {
            file(&format!("{name}.csv"), csv.as_bytes())
        }
    };
    let tables = tables(
        pick("customers", CUSTOMERS_CSV, 0),
        pick("transactions", TRANSACTIONS_CSV, 1),
        pick("interactions", INTERACTIONS_CSV, 2),
    );
    if which % 4 == 3 {
        let features = feature_table(file("features.parquet", bytes));
        read_tables(&tables, Some(&features));
    } else {
        read_tables(&tables, None);
    }
}

/// Session messages decoded with prost, then every wire conversion the
/// receiving side applies: the participants' messages as the coordinator
/// decodes them, the coordinator's as a participant handles them (the job
/// offer's TOML, the roster, the mask request's computation run on a small
/// site).
pub fn wire(data: &[u8]) {
    if let Ok(m) = ParticipantMessage::decode(data)
        && let Some(body) = m.body
    {
        from_participant(body);
    }
    if let Ok(m) = CoordinatorMessage::decode(data)
        && let Some(body) = m.body
    {
        from_coordinator(body);
    }
}

fn from_participant(body: participant_message::Body) {
    use participant_message::Body;
    match body {
        Body::KeyAdvertisement(k) => {
            let _ = KeyAdvertisement::try_from(k);
        }
        Body::ShareBundle(b) => {
            let _ = ShareBundle::from(b);
        }
        Body::MaskedInput(m) => {
            let _ = wire::bytes_to_words(&m.words);
            let _ = MaskedInput::try_from(m);
        }
        Body::UnmaskResponse(u) => {
            let _ = UnmaskResponse::try_from(u);
        }
        Body::Vertical(v) => vertical(v.body.map(VerticalBody::Up)),
        Body::SurvivorSignature(s) => {
            let _ = SurvivorSignature::try_from(s);
        }
        Body::Hello(_) | Body::JobAnswer(_) | Body::TaskFailed(_) => {}
    }
}

/// Either direction of a vertical job's message.
enum VerticalBody {
    Up(proto::vertical_up::Body),
    Down(proto::vertical_down::Body),
}

/// The intersection's decoders, as the coordinator and a party run them.
fn vertical(body: Option<VerticalBody>) {
    use fedseg_common::psi::wire as psi;
    use proto::{vertical_down as down, vertical_up as up};
    let chunk = |c: proto::PsiChunk| {
        let from = c.from;
        let _ = psi::Assembler::new().add(from, c);
    };
    match body {
        Some(VerticalBody::Up(up::Body::PsiHello(h))) => {
            let _ = psi::hello_from_wire(1, h);
        }
        Some(
            VerticalBody::Up(up::Body::PsiChunk(c)) | VerticalBody::Down(down::Body::PsiChunk(c)),
        ) => chunk(c),
        Some(
            VerticalBody::Up(up::Body::PsiVerdict(v))
            | VerticalBody::Down(down::Body::PsiVerdict(v)),
        ) => {
            let _ = psi::verdict_from_wire(v);
        }
        Some(VerticalBody::Down(down::Body::PsiRoster(r))) => {
            let _ = psi::roster_from_wire(r, 2);
        }
        Some(VerticalBody::Up(up::Body::MpcRequest(r))) => {
            let _ = mpc_wire::request_from_wire(r);
        }
        Some(VerticalBody::Down(down::Body::MpcCorrelation(c))) => {
            // decoded as a party does, expanded only when small (a party
            // checks a seed's length against its request first)
            if let Ok(Some(delivery)) = mpc_wire::Chunks::default().add_correlation(c)
                && delivery.len() <= 1 << 16
            {
                let _ = delivery.expand();
            }
        }
        Some(
            VerticalBody::Up(up::Body::MpcOpening(o))
            | VerticalBody::Down(down::Body::MpcOpening(o)),
        ) => {
            let _ = sealed_link().open(&o);
        }
        _ => {}
    }
}

/// A computing party's sealed link with fixed keys (party 1's view of
/// party 0), made once.
fn sealed_link() -> &'static mpc_wire::SealedLink {
    static LINK: OnceLock<mpc_wire::SealedLink> = OnceLock::new();
    LINK.get_or_init(|| {
        let mine = x25519_dalek::StaticSecret::from([3u8; 32]);
        let theirs = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from([4u8; 32]));
        mpc_wire::SealedLink::new(&mine, &theirs.to_bytes(), 1, 0, "c", "job-1")
            .expect("a link from fixed keys")
    })
}

fn from_coordinator(body: coordinator_message::Body) {
    use coordinator_message::Body;
    match body {
        Body::JobOffer(offer) => {
            if let Ok(job) = JobConfig::parse(&offer.config) {
                let _ = job.check();
            }
        }
        Body::EpochStart(s) => {
            let _ = EpochStart::from(s);
        }
        Body::EpochRoster(r) => {
            let start = EpochStart::from(proto::EpochStart {
                epoch: r.epoch,
                first_round: r.first_round,
                rounds: r.rounds,
                members: vec![0, 1, 2],
            });
            let _ = wire::roster_from_wire(r, &start);
        }
        Body::ShareDelivery(d) => {
            let _ = ShareDelivery::from(d);
        }
        Body::MaskRequest(m) => {
            let _ = wire::mask_request_from_wire(&m);
            mask(&m);
        }
        Body::UnmaskRequest(u) => {
            let _ = UnmaskRequest::try_from(u);
        }
        Body::SurvivorSet(s) => {
            let _ = SurvivorSet::from(s);
        }
        Body::Vertical(v) => vertical(v.body.map(VerticalBody::Down)),
        Body::Welcome(_) | Body::RoundAborted(_) | Body::JobFinished(_) => {}
    }
}

/// What a participant does with a mask request's computation.
fn mask(m: &proto::MaskRequest) {
    let Some(computation) = &m.computation else {
        return;
    };
    let length = m.length as usize;
    let checked = privacy::checked_rho(computation, length, 3);
    if let Some(Kind::Propensity(p)) = &computation.kind {
        let _ = Model::from_request(p);
    }
    if length > MAX_COMPUTED_LENGTH {
        return;
    }
    let config = participant_config();
    if let Some(vector) = config.vectors.get("v") {
        write(vector, b"1 2 3");
    }
    let noise = checked.as_ref().ok().map(|(bounds, _)| bounds);
    let mut site = shared_site().lock().unwrap_or_else(|e| e.into_inner());
    let _ = tasks::compute(config, Some(&mut site), computation, 0, length, noise);
}

/// A peer's X.509 certificate (DER), as TLS hands it to the services.
pub fn identity(data: &[u8]) {
    let _ = identity::member_of(data);
}

/// The TOML a site reads: the job inside an offer (`JobConfig::parse` and
/// `check`) and its own `participant.toml` (parsed, then loaded from a file
/// so that its checks run).
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(job) = JobConfig::parse(text) {
        let _ = job.check();
        let _ = job.as_of_date();
    }
    if toml::from_str::<ParticipantConfig>(text).is_ok() {
        let _ = ParticipantConfig::load(&file("participant.toml", data));
    }
}

/// The `result.json` that `fedseg-participant score` loads, then used to
/// score a small site.
pub fn result_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(model) = SavedModel::from_result(text) {
        let site = shared_site().lock().unwrap_or_else(|e| e.into_inner());
        let _ = model.score(&site);
    }
}

/// A secure-sum job's vector file (numbers separated by whitespace or
/// commas), read and encoded by the participant's task as a `vector_file`
/// computation asks, with as many entries as the file holds.
pub fn vector(data: &[u8]) {
    let config = participant_config();
    let Some(path) = config.vectors.get("v") else {
        return;
    };
    write(path, data);
    let length = String::from_utf8_lossy(data)
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .count();
    let computation = proto::Computation {
        encoding: Some(proto::Encoding {
            frac_bits: 16,
            ranges: vec![proto::ClipRange { lo: -1e6, hi: 1e6 }],
            units: vec![],
        }),
        noise: None,
        kind: Some(Kind::VectorFile(proto::VectorFile { name: "v".into() })),
    };
    let _ = tasks::compute(config, None, &computation, 0, length, None);
}
