//! A `[secure_sum]` job: the same named local vector summed in each of its
//! rounds, with the job's own fixed-point encoding.

use fedseg_common::fixed_point::{ClipRange, FixedPointEncoder};
use fedseg_common::proto;

use crate::engine::{Engine, EngineError, JobReport};

/// Runs a `[secure_sum]` job to its end on `engine`.
pub async fn run(mut engine: Engine<'_>) -> Result<JobReport, EngineError> {
    let sum = engine
        .job()
        .config
        .secure_sum
        .clone()
        .ok_or(EngineError::NothingToRun)?;
    let encoder = FixedPointEncoder::new(sum.frac_bits, vec![ClipRange::new(sum.lo, sum.hi)])?;
    encoder.check_capacity(engine.cohort().len() as u64)?;
    let computation = proto::Computation {
        encoding: Some(proto::Encoding {
            frac_bits: sum.frac_bits,
            ranges: vec![proto::ClipRange {
                lo: sum.lo,
                hi: sum.hi,
            }],
            units: vec![],
        }),
        noise: None,
        kind: Some(proto::computation::Kind::VectorFile(proto::VectorFile {
            name: sum.vector.clone(),
        })),
    };
    for _ in 0..sum.rounds {
        engine
            .secure_sum("vector", &computation, &encoder, sum.length)
            .await?;
    }
    engine.finish(true, "", String::new()).await
}
