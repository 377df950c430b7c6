//! Cost of the exact discrete Gaussian sampler at the variance every
//! participant uses under differential privacy (σ = 2^20 steps), per draw
//! and per 1000-entry vector. `cargo bench -p fedseg-common --bench noise`.

use criterion::{Criterion, criterion_group, criterion_main};
use fedseg_common::dp;
use fedseg_common::privacy::NOISE_VARIANCE;
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;

fn noise(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    c.bench_function("discrete_gaussian sigma=2^20", |b| {
        b.iter(|| dp::discrete_gaussian(&mut rng, NOISE_VARIANCE, 1).unwrap())
    });
    c.bench_function("discrete_gaussian sigma^2=9/2", |b| {
        b.iter(|| dp::discrete_gaussian(&mut rng, 9, 2).unwrap())
    });
    let mut words = vec![0u64; 1000];
    c.bench_function("add_noise 1000 words sigma=2^20", |b| {
        b.iter(|| dp::add_noise(&mut words, &mut rng, NOISE_VARIANCE, 1).unwrap())
    });
}

criterion_group!(benches, noise);
criterion_main!(benches);
