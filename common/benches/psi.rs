//! Group operations of the set intersection, per id: hash to group, blind
//! (decode, multiply, encode), and the two encodings (one inversion per
//! point, or one per batch). `cargo bench -p fedseg-common --bench psi`.

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
