//! Step 1, the census: customers, refusals, rows and conversions over the
//! whole consortium. Its customer count bounds every later sum.

use fedseg_common::computation::census;
use fedseg_common::fixed_point::ClipRange;
use fedseg_common::proto::{self, computation::Kind};
use tracing::info;

use super::{Census, SegmentationError};
use crate::config::Job;
use crate::release::Releases;

/// Releases the census of `job` and sets the releases' customer bound from
/// it; refuses a consortium too small for one segment.
pub async fn census(
    releases: &mut Releases<'_, '_>,
    job: &Job,
) -> Result<Census, SegmentationError> {
    let settings = &job.config.segmentation;
    // Counts, each bounded by 2^40.
    let census = releases
        .sum(
            "census",
            Kind::Census(proto::Census {
                as_of: job.config.as_of.clone(),
            }),
            vec![ClipRange::new(0.0, census::MAX_TOTAL); census::LENGTH],
        )
        .await?;
    let census = census::Counts::decode(&census)?;
    let dp = releases.is_private();
    let unless_dp = |v: f64| if dp { None } else { Some(v) };
    let census = Census {
        customers: census.customers,
        excluded_no_consent: census.excluded_no_consent,
        transactions: unless_dp(census.transactions),
        interactions: unless_dp(census.interactions),
        rows_after_as_of: unless_dp(census.rows_after_as_of),
        converted: census.converted,
        skipped_rows: unless_dp(census.skipped_rows),
    };
    info!(customers = census.customers, "census released");
    if census.customers < settings.min_segment_size as f64 || census.customers < 1.0 {
        return Err(SegmentationError::TooFewCustomers {
            customers: census.customers,
            min: settings.min_segment_size,
        });
    }
    // A noisy count is no upper bound; twice it, with room for small
    // cohorts, leaves every site's sums unclipped.
    releases.customers = if dp {
        2.0 * census.customers + 1e4
    } else {
        census.customers
    };
    Ok(census)
}
