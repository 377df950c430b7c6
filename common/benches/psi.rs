//! Group operations of the set intersection, per id: hash to group, blind
//! (decode, multiply, encode), and the two encodings (one inversion per
//! point, or one per batch). `cargo bench -p fedseg-common --bench psi`.
//!
//! Measured 2026-11-30 on the 2 vCPU AMD EPYC (24 GiB) while two other
//! builds ran (load average 5 to 9), so wall times per id are inflated;
//! the CPU-time figures of the end-to-end run are the fairer ones.
//!
//! | per id, 1024 ids, wall | µs |
//! |---|---|
//! | hash to group (expand_message_xmd + one-way map) | 25 |
//! | hash + blind + batch encode | 105 |
//! | decode + blind + batch encode | 102 |
//! | encode one by one (one inversion each) | 12.7 |
//! | double-and-encode batch (one inversion per batch) | 1.3 |
//!
//! End to end (`scale_table` in `common/tests/psi.rs`, release, 2
//! threads, bank and one partner, 50% overlap, in process):
//!
//! | ids per party | wall s | ids/s (both sets) | CPU s | sealed bytes per id | peak RSS |
//! |---|---|---|---|---|---|
//! | 10^5 | 65.6 | 3 047 | 40.1 | 128 | 61 MB |
//! | 10^6 | 582 | 3 436 | 401 | 128 | 569 MB |
//!
//! Per id and list the protocol does one hash and 2n + 1 = 5 scalar
//! multiplications (r; the partner's a; a/r and b at the owner; the
//! partner's b), plus 2 per intersecting id in the reveal: 1.1 × 10^7
//! multiplications at 10^6 ids, so about 36 µs of CPU per multiplication
//! all in (hashing, decoding, encoding, sorting, sealing). For
//! comparison: SecretFlow's ECDH-PSI, 10^7 × 10^7 in 114 s on 8 cores,
//! about 30 µs per group operation per core, at 2 operations per id and
//! list; FATE 2.x ECDH-PSI about 22k rows/s on 16 cores (1.4k rows/s per
//! core; here 10^6 rows / 401 CPU s = 2.5k rows per CPU second). The
//! extra multiplications buy the owner mask (no relaying party ever holds
//! a linkable value) and the comparison layer (overlap-only and
//! min_overlap release nothing linkable).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use curve25519_dalek::RistrettoPoint;
use fedseg_common::psi::group::{self, BlindingKey, HashTag};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;

const IDS: usize = 1024;

fn ids() -> Vec<String> {
    (0..IDS).map(|i| format!("customer-{i:08}")).collect()
}

fn bench_group(c: &mut Criterion) {
    let tag = HashTag::for_job("bench-consortium", "bench-job");
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let key = BlindingKey::random(&mut rng);
    let ids = ids();
    let blinded = group::hash_and_blind(&tag, &ids, &key);
    let points: Vec<RistrettoPoint> = ids
        .iter()
        .map(|id| group::hash_to_group(&tag, id.as_bytes()))
        .collect();

    let mut g = c.benchmark_group("psi-per-id");
    g.throughput(Throughput::Elements(IDS as u64));
    g.sample_size(20);
    g.bench_function("hash-to-group", |b| {
        b.iter(|| {
            ids.iter()
                .map(|id| group::hash_to_group(&tag, id.as_bytes()))
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("hash+blind+batch-encode", |b| {
        b.iter(|| group::hash_and_blind(&tag, &ids, &key))
    });
    g.bench_function("decode+blind+batch-encode", |b| {
        b.iter(|| group::blind(&blinded, &key).unwrap())
    });
    g.bench_function("encode-one-by-one", |b| {
        b.iter(|| points.iter().map(|p| p.compress()).collect::<Vec<_>>())
    });
    g.bench_function("double-and-encode-batch", |b| {
        b.iter(|| RistrettoPoint::double_and_compress_batch(&points))
    });
    for threads in [1, 2] {
        g.bench_with_input(
            BenchmarkId::new("decode+blind+batch-encode-threads", threads),
            &threads,
            |b, &t| b.iter(|| group::par_blind(&blinded, &key, t).unwrap()),
        );
    }
    g.finish();
}

criterion_group!(benches, bench_group);
criterion_main!(benches);
