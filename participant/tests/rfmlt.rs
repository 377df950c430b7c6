//! RFMLT on a small hand-written dataset, against values computed by hand,
//! including the edge cases: no purchase (with and without `since`), one
//! purchase, rows after `as_of`, refusals of marketing; and bad rows that
//! name file, line and column.

use std::path::Path;

use fedseg_participant::rfmlt::{
    self, BadRowPolicy, ColumnNames, Customer, DataError, KindCounts, MaxBadRows, OnBadRow, Reason,
    Tables, compute, compute_with,
};
use time::macros::date;

const CUSTOMERS: &str = "customer_id,consent_marketing,converted,since
c1,true,1,2025-01-01
c2,true,0,2026-06-01
c3,TRUE,0,
c4,false,1,
c5,true,0,
";

const TRANSACTIONS: &str = "customer_id,ts,amount
c1,2026-10-01,10.0
c1,2026-10-20T15:30:00,20.5
c1,2026-12-01,99
c3,2026-09-01,5
c4,2026-01-15,1000
";

const INTERACTIONS: &str = "customer_id,ts,kind
c1,2026-10-02,inquiry
c1,2026-10-03,save
c2,2026-03-10,search
c2,2026-03-11,webinar
c5,2026-11-05,inquiry
";

fn tables(dir: &Path, customers: &str, transactions: &str, interactions: &str) -> Tables {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Tables {
        customers: write("customers.csv", customers),
        transactions: write("transactions.csv", transactions),
        interactions: write("interactions.csv", interactions),
        columns: ColumnNames::default(),
    }
}

/// The features of the hand-checked tables as of 2026-11-01.
fn hand_checked(dir: &Path) -> rfmlt::Features {
    compute(
        &tables(dir, CUSTOMERS, TRANSACTIONS, INTERACTIONS),
        date!(2026 - 11 - 01),
    )
    .unwrap()
}

fn customer(
    id: &str,
    r: f64,
    f: f64,
    m: f64,
    l: f64,
    kinds: KindCounts,
    converted: bool,
) -> Customer {
    let t = (kinds.inquiry + kinds.save + kinds.search + kinds.other) as f64;
    Customer {
        id: id.into(),
        r,
        f,
        m,
        l,
        t,
        kinds,
        converted,
    }
}

#[test]
fn features_match_hand_computed_values() {
    let dir = tempfile::tempdir().unwrap();
    let features = hand_checked(dir.path());
    let none = KindCounts::default();
    let expected = vec![
        // Two purchases by as_of (the December one is later): last 10-20, first 10-01.
        customer(
            "c1",
            12.0,
            2.0,
            30.5,
            19.0,
            KindCounts {
                inquiry: 1,
                save: 1,
                ..none
            },
            true,
        ),
        // No purchase: recency from `since` (06-01 to 11-01).
        customer(
            "c2",
            153.0,
            0.0,
            0.0,
            0.0,
            KindCounts {
                search: 1,
                other: 1,
                ..none
            },
            false,
        ),
        // One purchase: L = 0.
        customer("c3", 61.0, 1.0, 5.0, 0.0, none, false),
        // No purchase, no `since`: from the earliest consenting row (03-10),
        // not from c4's January purchase; its November inquiry is too late.
        customer("c5", 236.0, 0.0, 0.0, 0.0, none, false),
    ];
    assert_eq!(features.customers, expected);
    assert_eq!(features.excluded_no_consent, 1);
    assert_eq!(features.rows, [5, 5, 5]);
    assert_eq!(features.rows_after_as_of, 2);
}

fn error_for(customers: &str, transactions: &str, interactions: &str) -> DataError {
    let dir = tempfile::tempdir().unwrap();
    rfmlt::compute(
        &tables(dir.path(), customers, transactions, interactions),
        date!(2026 - 11 - 01),
    )
    .unwrap_err()
}

fn at(error: &DataError) -> (String, u64, &str) {
    match error {
        DataError::BadValue {
            path, line, column, ..
        } => (
            path.file_name().unwrap().to_string_lossy().into_owned(),
            *line,
            column.as_str(),
        ),
        other => panic!("not a row error: {other}"),
    }
}

#[test]
fn bad_rows_name_file_line_and_column() {
    let unknown = TRANSACTIONS.replace("c3,2026-09-01,5", "c9,2026-09-01,5");
    let e = error_for(CUSTOMERS, &unknown, INTERACTIONS);
    assert_eq!(at(&e), ("transactions.csv".into(), 5, "customer_id"));
    assert!(
        e.to_string()
            .contains("\"c9\" is not in the customers table"),
        "{e}"
    );

    let negative = TRANSACTIONS.replace("c1,2026-10-01,10.0", "c1,2026-10-01,-0.01");
    assert_eq!(
        at(&error_for(CUSTOMERS, &negative, INTERACTIONS)),
        ("transactions.csv".into(), 2, "amount")
    );

    let bad_date = INTERACTIONS.replace("2026-03-11", "11/03/2026");
    assert_eq!(
        at(&error_for(CUSTOMERS, TRANSACTIONS, &bad_date)),
        ("interactions.csv".into(), 5, "ts")
    );

    let bad_consent = CUSTOMERS.replace("c4,false", "c4,maybe");
    assert_eq!(
        at(&error_for(&bad_consent, TRANSACTIONS, INTERACTIONS)),
        ("customers.csv".into(), 5, "consent_marketing")
    );

    let duplicate = format!("{CUSTOMERS}c1,true,0,\n");
    assert_eq!(
        at(&error_for(&duplicate, TRANSACTIONS, INTERACTIONS)),
        ("customers.csv".into(), 7, "customer_id")
    );

    let no_amount = TRANSACTIONS.replace("customer_id,ts,amount", "customer_id,ts,value");
    match error_for(CUSTOMERS, &no_amount, INTERACTIONS) {
        DataError::MissingColumn { column, .. } => assert_eq!(column, "amount"),
        other => panic!("{other}"),
    }
}

#[test]
fn a_column_mapping_reads_a_bank_s_own_headers() {
    let as_of = || date!(2026 - 11 - 01);
    let dir = tempfile::tempdir().unwrap();
    let canonical = tables(dir.path(), CUSTOMERS, TRANSACTIONS, INTERACTIONS);
    let expected = compute(&canonical, as_of()).unwrap();
    let renamed_dir = tempfile::tempdir().unwrap();
    let mut renamed = tables(
        renamed_dir.path(),
        &CUSTOMERS.replacen("customer_id", "cust_no", 1),
        &TRANSACTIONS.replacen("customer_id,ts,amount", "cust_no,booked_at,eur", 1),
        INTERACTIONS,
    );
    // Unmapped, the bank's headers are missing columns, named as looked for.
    match compute(&renamed, as_of()).unwrap_err() {
        DataError::MissingColumn { column, header, .. } => {
            assert_eq!(
                (column.as_str(), header.as_str()),
                ("customer_id", "customer_id")
            )
        }
        other => panic!("{other}"),
    }
    let map = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    renamed.columns.customers = map(&[("customer_id", "cust_no")]);
    renamed.columns.transactions = map(&[
        ("customer_id", "cust_no"),
        ("ts", "booked_at"),
        ("amount", "eur"),
    ]);
    assert_eq!(compute(&renamed, as_of()).unwrap(), expected);
    renamed.columns.transactions = map(&[("amount", "eur"), ("when", "booked_at")]);
    assert_eq!(
        renamed.columns.unknown(&[], None).as_deref(),
        Some("transactions.when")
    );
}

#[test]
fn dates_and_date_times_parse_to_their_day() {
    assert_eq!(rfmlt::parse_date("2026-02-28"), Some(date!(2026 - 02 - 28)));
    assert_eq!(
        rfmlt::parse_date("2026-02-28T23:59:59Z"),
        Some(date!(2026 - 02 - 28))
    );
    assert_eq!(
        rfmlt::parse_date("2026-02-28 08:00"),
        Some(date!(2026 - 02 - 28))
    );
    assert_eq!(rfmlt::parse_date("2026-02-30"), None);
    assert_eq!(rfmlt::parse_date("2026-02-281"), None);
    assert_eq!(rfmlt::parse_date("28.02.2026"), None);
    for bad in [
        "2026-13-01",
        "2026-00-10",
        "2026-1-010",
        "2026/02/28",
        "+026-02-28",
        "2026-02-2",
    ] {
        assert_eq!(rfmlt::parse_date(bad), None, "{bad}");
    }
    assert_eq!(rfmlt::parse_date("2024-02-29"), Some(date!(2024 - 02 - 29)));
}

/// Writes `columns` (name, array) as one Parquet file.
fn write_parquet(path: &Path, columns: Vec<(&str, arrow_array::ArrayRef)>) {
    let batch = arrow_array::RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// The CSV constants' fields, column by column.
fn fields(csv: &str) -> Vec<Vec<String>> {
    let rows: Vec<Vec<String>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (0..rows[0].len())
        .map(|j| rows.iter().map(|r| r[j].clone()).collect())
        .collect()
}

fn epoch_days(text: &str) -> i32 {
    let d = rfmlt::parse_date(text).unwrap();
    d.to_julian_day() - date!(1970 - 01 - 01).to_julian_day()
}

#[test]
fn parquet_tables_with_native_types_give_the_csv_features() {
    use std::sync::Arc;

    use arrow_array::{
        ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
        TimestampMillisecondArray,
    };
    let dir = tempfile::tempdir().unwrap();
    let expected = hand_checked(dir.path());
    let text = |v: &[String]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };

    let c = fields(CUSTOMERS);
    let write_customers = |consent: ArrayRef, converted: ArrayRef| {
        let since: Date32Array = c[3]
            .iter()
            .map(|v| (!v.is_empty()).then(|| epoch_days(v)))
            .collect();
        write_parquet(
            &dir.path().join("customers.parquet"),
            vec![
                ("customer_id", text(&c[0])),
                ("consent_marketing", consent),
                ("converted", converted),
                ("since", Arc::new(since)),
            ],
        );
    };
    let consent: BooleanArray = c[1]
        .iter()
        .map(|v| Some(v.eq_ignore_ascii_case("true")))
        .collect();
    let converted: Int64Array = c[2].iter().map(|v| Some(v.parse().unwrap())).collect();
    write_customers(Arc::new(consent), Arc::new(converted));
    // Transactions under the bank's own column names, dated by day.
    let t = fields(TRANSACTIONS);
    let days: Date32Array = t[1].iter().map(|v| Some(epoch_days(v))).collect();
    let amounts: Float64Array = t[2].iter().map(|v| Some(v.parse().unwrap())).collect();
    write_parquet(
        &dir.path().join("transactions.parquet"),
        vec![
            ("cust", text(&t[0])),
            ("booked", Arc::new(days)),
            ("amount", Arc::new(amounts)),
        ],
    );
    // Interactions with millisecond timestamps.
    let i = fields(INTERACTIONS);
    let stamps: TimestampMillisecondArray = i[1]
        .iter()
        .map(|v| Some(i64::from(epoch_days(v)) * 86_400_000 + 3_600_000))
        .collect();
    write_parquet(
        &dir.path().join("interactions.parquet"),
        vec![
            ("customer_id", text(&i[0])),
            ("ts", Arc::new(stamps)),
            ("kind", text(&i[2])),
        ],
    );
    let columns = ColumnNames {
        transactions: [("customer_id", "cust"), ("ts", "booked")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        ..ColumnNames::default()
    };
    let parquet = Tables {
        transactions: dir.path().join("transactions.parquet"),
        interactions: dir.path().join("interactions.parquet"),
        customers: dir.path().join("customers.parquet"),
        columns,
    };
    assert_eq!(compute(&parquet, date!(2026 - 11 - 01)).unwrap(), expected);

    // Booleans the other way round: converted as Parquet booleans,
    // consent as integers 0/1.
    let consent: Int64Array = c[1]
        .iter()
        .map(|v| Some(i64::from(v.eq_ignore_ascii_case("true"))))
        .collect();
    let converted: BooleanArray = c[2].iter().map(|v| Some(v == "1")).collect();
    write_customers(Arc::new(consent), Arc::new(converted));
    assert_eq!(compute(&parquet, date!(2026 - 11 - 01)).unwrap(), expected);

    // A bad value is reported with the file, its 1-based row and column.
    let amounts: Float64Array = [Some(5.0), Some(-1.0)].into_iter().collect();
    write_parquet(
        &dir.path().join("transactions.parquet"),
        vec![
            ("cust", text(&["c1".to_string(), "c2".to_string()])),
            ("booked", Arc::new(Date32Array::from(vec![20_000, 20_001]))),
            ("amount", Arc::new(amounts)),
        ],
    );
    match compute(&parquet, date!(2026 - 11 - 01)).unwrap_err() {
        DataError::BadValue {
            path, line, column, ..
        } => {
            assert!(path.ends_with("transactions.parquet"));
            assert_eq!((line, column.as_str()), (2, "amount"));
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_zero_amount_purchase_is_a_purchase() {
    let dir = tempfile::tempdir().unwrap();
    let free = TRANSACTIONS.replace("c3,2026-09-01,5", "c3,2026-09-01,0.00");
    let features = compute(
        &tables(dir.path(), CUSTOMERS, &free, INTERACTIONS),
        date!(2026 - 11 - 01),
    )
    .unwrap();
    let c3 = features.customers.iter().find(|c| c.id == "c3").unwrap();
    // One purchase on 09-01: F = 1, R = 61 days, M = 0.
    assert_eq!((c3.f, c3.r, c3.m, c3.l), (1.0, 61.0, 0.0, 0.0));
    // A zero before any other purchase still sets the first date (L).
    let early = TRANSACTIONS.replace("c1,2026-10-01,10.0", "c1,2026-09-01,0");
    let features = compute(
        &tables(dir.path(), CUSTOMERS, &early, INTERACTIONS),
        date!(2026 - 11 - 01),
    )
    .unwrap();
    let c1 = &features.customers[0];
    assert_eq!((c1.f, c1.m, c1.l), (2.0, 20.5, 49.0));
}

#[test]
fn booleans_in_every_spelling_give_the_same_features() {
    let dir = tempfile::tempdir().unwrap();
    let as_of = date!(2026 - 11 - 01);
    let expected = hand_checked(dir.path());
    let spelled = "customer_id,consent_marketing,converted,since
c1,Yes,true,2025-01-01
c2,t,F,2026-06-01
c3,1,no,
c4,NO,T,
c5,TRUE,0,
";
    let got = compute(
        &tables(dir.path(), spelled, TRANSACTIONS, INTERACTIONS),
        as_of,
    )
    .unwrap();
    assert_eq!(got, expected);
    let bad = spelled.replace("c2,t,F", "c2,t,2");
    let e = compute(&tables(dir.path(), &bad, TRANSACTIONS, INTERACTIONS), as_of).unwrap_err();
    assert_eq!(at(&e), ("customers.csv".into(), 3, "converted"));
    assert!(e.to_string().contains("\"2\" is not a boolean"), "{e}");
}

/// The hand-checked tables with one bad row of each reason planted.
fn planted() -> (String, String, String) {
    let customers = format!("{CUSTOMERS}c6,maybe,0,\nc1,true,1,\n,true,0,\n");
    let transactions = format!(
        "{TRANSACTIONS}c9,2026-09-01,5\nc3,2026-09-02,-3\nc3,2026-09-03\nc6,2026-09-01,7\n"
    );
    let interactions = format!("{INTERACTIONS}c1,2026-13-01,save\nc2,,inquiry\n");
    (customers, transactions, interactions)
}

fn skip(max: MaxBadRows) -> BadRowPolicy {
    BadRowPolicy {
        on_bad_row: OnBadRow::Skip,
        max_bad_rows: max,
        ..BadRowPolicy::default()
    }
}

#[test]
fn skipped_rows_are_left_out_and_counted_per_table_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let as_of = date!(2026 - 11 - 01);
    let clean = hand_checked(dir.path());
    let (c, t, i) = planted();
    let bad = tables(dir.path(), &c, &t, &i);
    // By default the first bad row stops the site, naming where it is.
    let e = compute(&bad, as_of).unwrap_err();
    assert_eq!(at(&e), ("customers.csv".into(), 7, "consent_marketing"));

    let got = compute_with(&bad, as_of, &skip(MaxBadRows::Count(3))).unwrap();
    // The features are those of the clean tables: c6 (bad consent) is left
    // out with its purchase, c1 keeps its first row.
    assert_eq!(got.customers, clean.customers);
    assert_eq!(got.excluded_no_consent, clean.excluded_no_consent);
    let count = |table: &str, reason: Reason| {
        got.skipped.tables[table]
            .by_reason
            .get(&reason)
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(count("customers", Reason::BadBoolean), 1);
    assert_eq!(count("customers", Reason::DuplicateCustomer), 1);
    assert_eq!(count("customers", Reason::MissingValue), 1);
    assert_eq!(count("transactions", Reason::UnknownCustomer), 1);
    assert_eq!(count("transactions", Reason::BadAmount), 1);
    assert_eq!(count("transactions", Reason::Malformed), 1);
    assert_eq!(count("interactions", Reason::BadDate), 1);
    assert_eq!(count("interactions", Reason::MissingValue), 1);
    assert_eq!(got.skipped.total(), 8);
    assert_eq!(
        got.skipped.tables["transactions"].first_lines[&Reason::BadAmount],
        vec![8]
    );
    assert_eq!(
        got.skipped.tables["customers"].first_lines[&Reason::DuplicateCustomer],
        vec![8]
    );
    // Every row is counted as read, skipped ones included.
    assert_eq!(got.rows, [9, 7, 8]);
}

#[test]
fn more_bad_rows_than_allowed_stop_the_site() {
    let dir = tempfile::tempdir().unwrap();
    let as_of = date!(2026 - 11 - 01);
    let (c, t, i) = planted();
    let bad = tables(dir.path(), &c, &t, &i);
    // The customers table (read first) has three bad rows.
    let e = compute_with(&bad, as_of, &skip(MaxBadRows::Count(2))).unwrap_err();
    match &e {
        DataError::TooManyBadRows { path, skipped, .. } => {
            assert!(path.ends_with("customers.csv"), "{e}");
            assert_eq!(*skipped, 3);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("max_bad_rows = 2"), "{e}");
    // As fractions: 3 of 8 customer rows (and 3 of 9 transaction rows).
    assert!(compute_with(&bad, as_of, &skip(MaxBadRows::Fraction(0.37))).is_err());
    assert!(compute_with(&bad, as_of, &skip(MaxBadRows::Fraction(0.38))).is_ok());
    // With a clean customers table, the transactions table's three are too
    // many (c6 now refused marketing: its purchase is dropped, not bad).
    let customers = format!("{CUSTOMERS}c6,false,0,\n");
    let bad = tables(dir.path(), &customers, &t, &i);
    match compute_with(&bad, as_of, &skip(MaxBadRows::Count(2))).unwrap_err() {
        DataError::TooManyBadRows { path, skipped, .. } => {
            assert!(path.ends_with("transactions.csv"));
            assert_eq!(skipped, 3);
        }
        other => panic!("{other}"),
    }
    assert!(compute_with(&bad, as_of, &skip(MaxBadRows::Count(3))).is_ok());
}

#[test]
fn date_times_are_strict_and_their_offset_is_honoured() {
    for (text, day) in [
        ("2026-02-28T23:59:59Z", date!(2026 - 02 - 28)),
        ("2026-02-28T08:00", date!(2026 - 02 - 28)),
        ("2026-02-28 08:00:00.123", date!(2026 - 02 - 28)),
        // 23:30 in New York is 04:30 the next day in UTC.
        ("2026-02-28T23:30:00-05:00", date!(2026 - 03 - 01)),
        ("2026-03-01T00:30:00+01:00", date!(2026 - 02 - 28)),
    ] {
        assert_eq!(rfmlt::parse_date(text), Some(day), "{text}");
    }
    for bad in [
        "2023-12-13Tgarbage",
        "2023-12-13T",
        "2023-12-13 ",
        "2023-12-13T25:00",
        "2023-12-13T10:00+99:00",
        "2023-12-13X10:00",
    ] {
        assert_eq!(rfmlt::parse_date(bad), None, "{bad}");
    }
}

#[test]
fn implausible_dates_and_amounts_are_bad_rows() {
    let as_of = date!(2026 - 11 - 01);
    for (customers, transactions, column) in [
        (
            CUSTOMERS.to_string(),
            TRANSACTIONS.replace("2026-09-01", "0001-09-01"),
            "ts",
        ),
        (
            CUSTOMERS.to_string(),
            TRANSACTIONS.replace("2026-09-01", "9999-12-31"),
            "ts",
        ),
        (
            CUSTOMERS.replace("2025-01-01", "1850-01-01"),
            TRANSACTIONS.to_string(),
            "since",
        ),
        (
            CUSTOMERS.to_string(),
            TRANSACTIONS.replace(",5\n", ",1e308\n"),
            "amount",
        ),
    ] {
        let e = error_for(&customers, &transactions, INTERACTIONS);
        assert_eq!(at(&e).2, column, "{e}");
    }
    // Within the margin after as_of, a row is ignored and counted.
    let dir = tempfile::tempdir().unwrap();
    let later = TRANSACTIONS.replace("2026-09-01", "2027-06-01");
    let f = compute(&tables(dir.path(), CUSTOMERS, &later, INTERACTIONS), as_of).unwrap();
    assert_eq!(f.rows_after_as_of, 3);
    // The earliest date is the site's to set.
    let old = TRANSACTIONS.replace("2026-09-01", "1899-09-01");
    let t = tables(dir.path(), CUSTOMERS, &old, INTERACTIONS);
    assert!(compute(&t, as_of).is_err());
    let policy = BadRowPolicy {
        earliest_date: date!(1800 - 01 - 01),
        ..BadRowPolicy::default()
    };
    assert!(compute_with(&t, as_of, &policy).is_ok());
}

#[test]
fn a_table_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tables(dir.path(), CUSTOMERS, TRANSACTIONS, INTERACTIONS);
    t.customers = "/dev/zero".into();
    let e = compute(&t, date!(2026 - 11 - 01)).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    // A FIFO would block a reader forever.
    let fifo = dir.path().join("fifo.csv");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    t.customers = fifo;
    let e = compute(&t, date!(2026 - 11 - 01)).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
}

#[test]
fn parquet_timestamps_with_a_named_zone_are_read_on_their_utc_day() {
    use std::sync::Arc;

    use arrow_array::{ArrayRef, StringArray, TimestampMillisecondArray};
    let dir = tempfile::tempdir().unwrap();
    let as_of = date!(2026 - 11 - 01);
    let expected = hand_checked(dir.path());
    // How pandas and Spark write them: UTC instants, the zone as metadata.
    let i = fields(INTERACTIONS);
    let stamps = TimestampMillisecondArray::from(
        i[1].iter()
            .map(|v| i64::from(epoch_days(v)) * 86_400_000 + 3_600_000)
            .collect::<Vec<_>>(),
    )
    .with_timezone("Europe/Paris");
    let text = |v: &[String]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
    write_parquet(
        &dir.path().join("interactions.parquet"),
        vec![
            ("customer_id", text(&i[0])),
            ("ts", Arc::new(stamps)),
            ("kind", text(&i[2])),
        ],
    );
    let mut t = tables(dir.path(), CUSTOMERS, TRANSACTIONS, INTERACTIONS);
    t.interactions = dir.path().join("interactions.parquet");
    assert_eq!(compute(&t, as_of).unwrap(), expected);
}
