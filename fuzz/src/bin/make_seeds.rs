//! Writes the seeds that cannot be copied from a demo consortium's files:
//! Parquet tables with native column types (`corpus/tables_parquet/`) and
//! encoded session messages (`corpus/wire/`). Run from `fuzz/`:
//! `cargo afl build --release && target/release/make_seeds`.
use std::path::Path;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use fedseg_common::computation::{census, feature_stats, kmeans, newton};
use fedseg_common::proto::{
    self, CoordinatorMessage, ParticipantMessage, computation::Kind, coordinator_message,
    participant_message,
};
use parquet::arrow::ArrowWriter;
use prost::Message;

fn parquet(name: &str, which: u8, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).expect("batch");
    let mut bytes = vec![which];
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    std::fs::write(Path::new("corpus/tables_parquet").join(name), bytes).expect("seed");
}

fn strings(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

fn tables() {
    let ids = ["c1", "c2", "c3"];
    parquet(
        "customers.parquet.bin",
        0,
        vec![
            ("customer_id", strings(&ids)),
            (
                "consent_marketing",
                Arc::new(BooleanArray::from(vec![true, true, false])),
            ),
            (
                "converted",
                Arc::new(BooleanArray::from(vec![false, true, false])),
            ),
            (
                "since",
                Arc::new(Date32Array::from(vec![Some(18000), None, Some(19000)])),
            ),
        ],
    );
    parquet(
        "transactions.parquet.bin",
        1,
        vec![
            ("customer_id", strings(&["c1", "c2", "c1"])),
            (
                "ts",
                Arc::new(
                    TimestampMillisecondArray::from(vec![
                        1_780_000_000_000,
                        1_790_000_000_000,
                        1_700_000_000_000,
                    ])
                    .with_timezone("Europe/Paris"),
                ),
            ),
            ("amount", Arc::new(Float64Array::from(vec![12.5, 3.0, 0.0]))),
        ],
    );
    parquet(
        "interactions.parquet.bin",
        2,
        vec![
            ("customer_id", strings(&["c1", "c2"])),
            ("ts", Arc::new(Date32Array::from(vec![20300, 20390]))),
            ("kind", strings(&["inquiry", "search"])),
        ],
    );
    parquet(
        "features.parquet.bin",
        3,
        vec![
            ("customer_id", strings(&ids)),
            (
                "spend",
                Arc::new(Float64Array::from(vec![Some(12.5), None, Some(1e9)])),
            ),
            ("score", Arc::new(Float64Array::from(vec![0.3, 1.0, -7.0]))),
            ("ok", Arc::new(BooleanArray::from(vec![true, false, true]))),
        ],
    );
}

fn space() -> proto::Space {
    proto::Space {
        mean: vec![100.0, 3.0, 200.0, 700.0, 4.0],
        std: vec![50.0, 2.0, 150.0, 300.0, 3.0],
        scale: vec![1.0; 5],
        lo: vec![0.0; 5],
        hi: vec![1095.0, 100.0, 20000.0, 1825.0, 50.0],
    }
}

fn mask(round: u64, length: usize, kind: Kind) -> coordinator_message::Body {
    coordinator_message::Body::MaskRequest(proto::MaskRequest {
        round,
        members: vec![0, 1, 2],
        length: length as u32,
        computation: Some(proto::Computation {
            encoding: Some(proto::Encoding {
                frac_bits: 16,
                ranges: vec![proto::ClipRange { lo: -1e6, hi: 1e6 }],
                units: vec![],
            }),
            noise: None,
            kind: Some(kind),
        }),
    })
}

fn wire() {
    let dir = Path::new("corpus/wire");
    let key = vec![7u8; 32];
    let coordinator = |name: &str, body| {
        let m = CoordinatorMessage {
            job_id: "job-1".into(),
            body: Some(body),
        };
        std::fs::write(dir.join(name), m.encode_to_vec()).expect("seed");
    };
    use coordinator_message::Body as C;
    coordinator(
        "job_offer.bin",
        C::JobOffer(proto::JobOffer {
            job_version: 1,
            config: include_str!("../../../deploy/config/job.toml").into(),
            cohort: vec!["bank-a".into(), "bank-b".into()],
            threshold: 2,
            neighbours: 1,
            graph_seed: vec![1; 32],
            ..Default::default()
        }),
    );
    coordinator(
        "epoch_start.bin",
        C::EpochStart(proto::EpochStart {
            epoch: 1,
            first_round: 0,
            rounds: 16,
            members: vec![0, 1, 2],
        }),
    );
    coordinator(
        "epoch_roster.bin",
        C::EpochRoster(proto::EpochRoster {
            epoch: 1,
            first_round: 0,
            rounds: 16,
            keys: (0..3)
                .map(|p| proto::AdvertisedKeys {
                    participant: p,
                    encryption_key: key.clone(),
                    mask_keys: vec![key.clone(); 2],
                    certificate: vec![0x30; 40],
                    signature: vec![6; 64],
                })
                .collect(),
        }),
    );
    coordinator(
        "share_delivery.bin",
        C::ShareDelivery(proto::ShareDelivery {
            epoch: 1,
            shares: vec![proto::SealedShares {
                sender: 1,
                holder: 0,
                ciphertext: vec![9; 80],
            }],
        }),
    );
    coordinator(
        "unmask_request.bin",
        C::UnmaskRequest(proto::UnmaskRequest {
            round: 3,
            survivors: vec![0, 2],
            dropped: vec![1],
            signatures: vec![proto::MemberSignature {
                participant: 0,
                signature: vec![7; 64],
            }],
        }),
    );
    coordinator(
        "mask_vector.bin",
        mask(
            1,
            3,
            Kind::VectorFile(proto::VectorFile { name: "v".into() }),
        ),
    );
    coordinator(
        "mask_test_vector.bin",
        mask(
            1,
            8,
            Kind::TestVector(proto::TestVector {
                seed: 5,
                modulus: 1000,
            }),
        ),
    );
    let as_of = "2026-11-01".to_string();
    coordinator(
        "mask_census.bin",
        mask(
            2,
            census::LENGTH,
            Kind::Census(proto::Census {
                as_of: as_of.clone(),
            }),
        ),
    );
    let stats = proto::FeatureStats {
        as_of: as_of.clone(),
        bins: vec![
            proto::Bins {
                lo: 0.0,
                hi: 10.0,
                count: 4
            };
            5
        ],
        lo: vec![0.0; 5],
        hi: vec![1095.0, 100.0, 20000.0, 1825.0, 50.0],
    };
    let length = feature_stats::Layout::from_request(&stats).map_or(0, |l| l.length());
    coordinator(
        "mask_feature_stats.bin",
        mask(3, length, Kind::FeatureStats(stats)),
    );
    let run = proto::KMeansRun {
        k: 2,
        centroids: vec![0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    };
    coordinator(
        "mask_kmeans.bin",
        mask(
            4,
            kmeans::Layout::new([2]).length(),
            Kind::KmeansStep(proto::KMeansStep {
                as_of: as_of.clone(),
                space: Some(space()),
                runs: vec![run.clone()],
            }),
        ),
    );
    coordinator(
        "mask_profile.bin",
        mask(
            5,
            fedseg_common::computation::profile::length(2),
            Kind::SegmentProfile(proto::SegmentProfile {
                as_of: as_of.clone(),
                space: Some(space()),
                centroids: Some(run.clone()),
                frequent: 3,
            }),
        ),
    );
    coordinator(
        "mask_newton.bin",
        mask(
            6,
            newton::length(7),
            Kind::Propensity(proto::Propensity {
                as_of,
                space: Some(space()),
                features: vec![true; 5],
                segments: 2,
                beta: vec![0.1; 7],
                seed: 1,
                holdout_fraction: 0.2,
                centroids: Some(run),
                task: Some(proto::propensity::Task::Newton(proto::NewtonTerms {})),
            }),
        ),
    );
    let participant = |name: &str, body| {
        let m = ParticipantMessage { body: Some(body) };
        std::fs::write(dir.join(name), m.encode_to_vec()).expect("seed");
    };
    use participant_message::Body as P;
    participant(
        "key_advertisement.bin",
        P::KeyAdvertisement(proto::KeyAdvertisement {
            epoch: 1,
            encryption_key: key.clone(),
            mask_keys: vec![key.clone(); 2],
            certificate: vec![0x30; 40],
            signature: vec![6; 64],
        }),
    );
    participant(
        "share_bundle.bin",
        P::ShareBundle(proto::ShareBundle {
            epoch: 1,
            shares: vec![proto::SealedShares {
                sender: 0,
                holder: 1,
                ciphertext: vec![3; 80],
            }],
        }),
    );
    participant(
        "masked_input.bin",
        P::MaskedInput(proto::MaskedInput {
            round: 1,
            words: vec![1; 24],
            signature: vec![5; 64],
        }),
    );
    participant(
        "unmask_response.bin",
        P::UnmaskResponse(proto::UnmaskResponse {
            round: 1,
            self_mask_shares: vec![proto::Share {
                owner: 0,
                value: key.clone(),
            }],
            mask_key_shares: vec![proto::Share {
                owner: 1,
                value: key,
            }],
        }),
    );
    vertical(dir);
}

/// The joint model's messages: a dealer request, a sealed opening, a seed
/// and a values correlation.
fn vertical(dir: &Path) {
    use proto::{vertical_down as down, vertical_up as up};
    let up = |name: &str, body| {
        let m = ParticipantMessage {
            body: Some(participant_message::Body::Vertical(proto::VerticalUp {
                body: Some(body),
            })),
        };
        std::fs::write(dir.join(name), m.encode_to_vec()).expect("seed");
    };
    let down = |name: &str, body| {
        let m = CoordinatorMessage {
            job_id: "job-1".into(),
            body: Some(coordinator_message::Body::Vertical(proto::VerticalDown {
                body: Some(body),
            })),
        };
        std::fs::write(dir.join(name), m.encode_to_vec()).expect("seed");
    };
    let operand = |id, rows, cols| proto::MpcOperand {
        id,
        rows,
        cols,
        transposed: false,
    };
    up(
        "mpc_request_row_scale.bin",
        up::Body::MpcRequest(proto::MpcRequest {
            kind: Some(proto::mpc_request::Kind::RowScale(proto::MpcProduct {
                left: Some(operand(1, 0, 0)),
                right: Some(operand(2, 4, 3)),
            })),
            step: 2,
        }),
    );
    up(
        "mpc_opening.bin",
        up::Body::MpcOpening(proto::MpcOpening {
            seq: 3,
            from: 0,
            to: 1,
            index: 0,
            total: 1,
            sealed: vec![8; 64],
            step: 1,
        }),
    );
    down(
        "mpc_correlation_seed.bin",
        down::Body::MpcCorrelation(proto::MpcCorrelation {
            seq: 5,
            index: 0,
            total: 1,
            values: Vec::new(),
            seed: vec![9; 32],
            len: 12,
        }),
    );
    down(
        "mpc_correlation_values.bin",
        down::Body::MpcCorrelation(proto::MpcCorrelation {
            seq: 6,
            index: 0,
            total: 1,
            values: vec![1; 48],
            seed: Vec::new(),
            len: 0,
        }),
    );
}

fn main() {
    tables();
    wire();
}
