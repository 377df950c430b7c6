//! A bank's own PostgreSQL database as the source: the participant wraps the
//! bank's three queries in its checks and aggregation SQL, runs them in a
//! real server started here, and gets exactly the features the CSV path
//! computes from the same rows.

use std::fs;

use fedseg_participant::config::ParticipantConfig;
use fedseg_participant::rfmlt::{self, ColumnNames, Customer, Reason, Tables};
use fedseg_tests::Postgres;

const AS_OF: time::Date = time::macros::date!(2026 - 11 - 01);

fn sorted(mut customers: Vec<Customer>) -> Vec<Customer> {
    customers.sort_by(|a, b| a.id.cmp(&b.id));
    customers
}

#[test]
fn the_database_path_gives_the_csv_features() {
    let Some(db) = Postgres::start() else {
        assert!(std::env::var_os("CI").is_none(), "CI must have PostgreSQL");
        eprintln!("skipped: PostgreSQL is not installed (apt-get install postgresql)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let written = fedseg_synth::write(dir.path(), 400, 9, "fintech").unwrap();
    assert!(written.transactions > 1000);
    for name in ["customers.csv", "transactions.csv", "interactions.csv"] {
        // The server runs as another user: let it read the files.
        let _ = std::process::Command::new("chmod")
            .args(["a+rx"])
            .arg(dir.path())
            .status();
        let _ = std::process::Command::new("chmod")
            .arg("a+r")
            .arg(dir.path().join(name))
            .status();
    }
    // The bank's own schema: other names, native types.
    let d = dir.path().display();
    let setup = format!(
        "CREATE TABLE clients (client_no text, opted_in boolean, bought int, start_date date);
         CREATE TABLE payments (client_no text, booked_at timestamp, amount_eur numeric(14,2));
         CREATE TABLE events (client_no text, happened_at timestamptz, event_type text);
         \\copy clients FROM '{d}/customers.csv' WITH (FORMAT csv, HEADER, NULL '')
         \\copy payments FROM '{d}/transactions.csv' WITH (FORMAT csv, HEADER)
         \\copy events FROM '{d}/interactions.csv' WITH (FORMAT csv, HEADER)"
    );
    for statement in setup.lines() {
        let out = db.psql(statement.trim());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let config_path = dir.path().join("participant.toml");
    let config = |extra: &str| {
        fs::write(
            &config_path,
            format!(
                "id = \"bank-a\"\ncoordinator = \"https://127.0.0.1:1\"\ncoordinator_id = \"coordinator\"\n\
                 ledger = \"ledger.log\"\n[tls]\nca = \"ca.crt\"\ncert = \"a.crt\"\nkey = \"a.key\"\n\
                 [data]\npostgres = \"{}\"\n\
                 customers = \"SELECT client_no AS customer_id, opted_in AS consent_marketing, bought AS converted, start_date AS since FROM clients\"\n\
                 transactions = \"SELECT client_no AS customer_id, booked_at AS ts, amount_eur AS amount FROM payments\"\n\
                 interactions = \"SELECT client_no AS customer_id, happened_at AS ts, event_type AS kind FROM events\"\n{extra}",
                db.connection()
            ),
        )
        .unwrap();
        ParticipantConfig::load(&config_path)
    };
    let data = config("").unwrap().data.unwrap();
    // Timestamps without a zone are read as UTC dates, like the files.
    assert!(
        db.psql("ALTER DATABASE postgres SET timezone TO 'UTC'")
            .status
            .success()
    );
    let from_db = data.features(AS_OF).unwrap();
    let from_csv = rfmlt::compute(
        &Tables {
            transactions: dir.path().join("transactions.csv"),
            interactions: dir.path().join("interactions.csv"),
            customers: dir.path().join("customers.csv"),
            columns: ColumnNames::default(),
        },
        AS_OF,
    )
    .unwrap();
    assert_eq!(from_db.rows, from_csv.rows);
    assert_eq!(from_db.excluded_no_consent, from_csv.excluded_no_consent);
    assert_eq!(from_db.rows_after_as_of, from_csv.rows_after_as_of);
    let (db_rows, csv_rows) = (sorted(from_db.customers), sorted(from_csv.customers));
    assert_eq!(db_rows.len(), csv_rows.len());
    for (a, b) in db_rows.iter().zip(&csv_rows) {
        assert_eq!(
            (&a.id, a.r, a.f, a.l, a.t, a.kinds, a.converted),
            (&b.id, b.r, b.f, b.l, b.t, b.kinds, b.converted)
        );
        // Sums of amounts may round differently in another order.
        assert!(
            (a.m - b.m).abs() <= 1e-9 * b.m.max(1.0),
            "{} vs {}",
            a.m,
            b.m
        );
    }

    // A zero amount is a purchase: the features still compute.
    let ok = |sql: &str| assert!(db.psql(sql).status.success(), "{sql}");
    ok("UPDATE payments SET amount_eur = 0 WHERE ctid = (SELECT max(ctid) FROM payments)");
    let with_zero = data.features(AS_OF).unwrap();
    assert_eq!(with_zero.rows, from_csv.rows);
    assert_eq!(
        with_zero.customers.iter().map(|c| c.f).sum::<f64>(),
        csv_rows.iter().map(|c| c.f).sum::<f64>()
    );

    // A bad row is refused naming the query, the problem and a customer.
    ok("UPDATE payments SET amount_eur = -5 WHERE ctid = (SELECT min(ctid) FROM payments)");
    let error = data.features(AS_OF).unwrap_err().to_string();
    assert!(
        error.contains("transactions query") && error.contains("bad_amount"),
        "{error}"
    );
    // Under a skip policy the same rows are skipped and counted per reason.
    ok("INSERT INTO payments VALUES ('nobody', '2026-01-01', 3)");
    ok("INSERT INTO clients VALUES ('c-null', NULL, 0, NULL)");
    let skipping = config("on_bad_row = \"skip\"\nmax_bad_rows = 2\n")
        .unwrap()
        .data
        .unwrap();
    let skipped = skipping.features(AS_OF).unwrap();
    let count = |table: &str, reason: Reason| skipped.skipped.tables[table].by_reason[&reason];
    assert_eq!(count("transactions", Reason::BadAmount), 1);
    assert_eq!(count("transactions", Reason::UnknownCustomer), 1);
    assert_eq!(count("customers", Reason::MissingValue), 1);
    assert_eq!(skipped.skipped.total(), 3);
    assert_eq!(skipped.customers.len(), csv_rows.len());
    let strict = config("on_bad_row = \"skip\"\nmax_bad_rows = 1\n")
        .unwrap()
        .data
        .unwrap();
    let error = strict.features(AS_OF).unwrap_err().to_string();
    assert!(
        error.contains("transactions query") && error.contains("max_bad_rows = 1"),
        "{error}"
    );
    // Column mappings belong in the queries.
    let refused = config("[data.columns.customers]\ncustomer_id = \"client_no\"\n").unwrap_err();
    assert!(refused.to_string().contains("data.columns"), "{refused}");
}

#[test]
fn a_partner_feature_table_from_the_database_gives_the_file_rows() {
    let Some(db) = Postgres::start() else {
        assert!(std::env::var_os("CI").is_none(), "CI must have PostgreSQL");
        eprintln!("skipped: PostgreSQL is not installed (apt-get install postgresql)");
        return;
    };
    let rows = [
        ("p1", "10", "250.5", "yes"),
        ("p2", "900", "-3", "true"),
        ("p3", "0", "0", "no"),
        ("p4", "3", "120000", "1"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("customer_id,app_sessions,wallet_spend,opt_in\n");
    for (id, sessions, spend, ok) in rows {
        csv.push_str(&format!("{id},{sessions},{spend},{ok}\n"));
        let sql = format!("INSERT INTO wallet VALUES ('{id}', {sessions}, {spend}, '{ok}')");
        if id == "p1" {
            let create =
                "CREATE TABLE wallet (cust text, sessions int, spend numeric(14,2), ok text)";
            assert!(db.psql(create).status.success());
        }
        assert!(db.psql(&sql).status.success(), "{sql}");
    }
    fs::write(dir.path().join("features.csv"), csv).unwrap();
    let columns = "[data.feature_columns]\n\
                   app_sessions = { clip = [0, 500], transform = \"log1p\" }\n\
                   wallet_spend = { clip = [0, 100000] }\n";
    let config = |data: &str| {
        let path = dir.path().join("participant.toml");
        fs::write(
            &path,
            format!(
                "id = \"fintech-x\"\ncoordinator = \"https://127.0.0.1:1\"\ncoordinator_id = \"coordinator\"\n\
                 ledger = \"ledger.log\"\n[tls]\nca = \"ca.crt\"\ncert = \"x.crt\"\nkey = \"x.key\"\n\
                 [data]\n{data}features_consent = \"opt_in\"\n{columns}"
            ),
        )
        .unwrap();
        ParticipantConfig::load(&path).unwrap().data.unwrap()
    };
    let from_file = config("features = \"features.csv\"\n")
        .partner_rows()
        .unwrap();
    let query = "SELECT cust AS customer_id, sessions AS app_sessions, spend AS wallet_spend, ok AS opt_in FROM wallet";
    let from_db = config(&format!(
        "postgres = \"{}\"\nfeatures = \"{query}\"\n",
        db.connection()
    ))
    .partner_rows()
    .unwrap();
    let by_id = |r: &fedseg_participant::partner::PartnerRows| {
        let mut v: Vec<(String, Vec<f64>)> = (0..r.ids.len())
            .map(|i| (r.ids[i].clone(), r.row(i).to_vec()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(by_id(&from_db), by_id(&from_file));
    assert_eq!(from_db.excluded_no_consent, 1);
    // A duplicated id is a bad row; skipped under the policy.
    assert!(
        db.psql("INSERT INTO wallet VALUES ('p1', 1, 1, 'yes')")
            .status
            .success()
    );
    let strict = config(&format!(
        "postgres = \"{}\"\nfeatures = \"{query}\"\n",
        db.connection()
    ));
    let error = strict.partner_rows().unwrap_err().to_string();
    assert!(error.contains("duplicate_customer"), "{error}");
}
