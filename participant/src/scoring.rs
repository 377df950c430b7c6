//! Local scoring: applies a job's final segmentation and propensity model
//! (read from its `result.json`, which holds aggregates only) to this
//! site's own customers, and writes each customer's segment, score and
//! decile to a local CSV or Parquet file. Scores never leave the site.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fedseg_common::features::{self, DIM, Space};
use fedseg_common::propensity::{self, Design};
use fedseg_common::result::JobResult;
use thiserror::Error;

use crate::tasks::Site;

/// Why a model cannot be used or scores cannot be written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ScoreError {
    /// The result lacks a field or has a wrong one.
    #[error("the result has no usable `{0}`")]
    Field(&'static str),
    /// The result is not JSON.
    #[error("the result is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Writing failed.
    #[error("{path}: {reason}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// A job's final model, as far as a site needs it to score.
#[derive(Debug, Clone)]
pub struct SavedModel {
    space: Space,
    centroids: Vec<f64>,
    segment_names: Vec<String>,
    /// The propensity model, when the job fitted one.
    propensity: Option<(Design, Vec<f64>)>,
    deciles: Vec<f64>,
}

/// One customer's local result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Segment index.
    pub segment: u32,
    /// Probability of converting (NaN without a propensity model).
    pub score: f64,
    /// 1 (lowest tenth of the consortium's holdout scores) to 10 (highest);
    /// 0 without deciles.
    pub decile: u8,
}

impl SavedModel {
    /// Reads the model from a job's `result.json` (the results contract's
    /// types, as the coordinator wrote them).
    pub fn from_result(text: &str) -> Result<Self, ScoreError> {
        let r: JobResult = serde_json::from_str(text)?;
        let (st, seg) = (&r.standardization, &r.segmentation);
        let space = Space {
            mean: st.mean,
            std: st.std,
            scale: seg.space_scale,
            lo: st.clip_lo,
            hi: st.clip_hi,
        };
        if !space.ordered() {
            return Err(ScoreError::Field("standardization.clip_lo"));
        }
        if seg.centroids.is_empty() || seg.centroids.iter().any(|c| c.len() != DIM) {
            return Err(ScoreError::Field("segmentation.centroids"));
        }
        let centroids = seg.centroids.concat();
        let segment_names = seg.segments.iter().map(|s| s.name.clone()).collect();
        let (propensity, deciles) = match &r.propensity {
            Some(p) => {
                let design = Design {
                    features: p.design_features,
                    segments: p.design_segments,
                };
                let mut beta = vec![p.intercept];
                beta.extend(&p.coefficients);
                if beta.len() != design.columns() {
                    return Err(ScoreError::Field("propensity.coefficients"));
                }
                let deciles = p
                    .evaluation
                    .as_ref()
                    .map(|e| e.decile_thresholds.clone())
                    .unwrap_or_default();
                (Some((design, beta)), deciles)
            }
            None => (None, vec![]),
        };
        Ok(Self {
            space,
            centroids,
            segment_names,
            propensity,
            deciles,
        })
    }

    /// The name of segment `i`.
    pub fn segment_name(&self, i: u32) -> &str {
        self.segment_names
            .get(i as usize)
            .map_or("", String::as_str)
    }

    /// Segment, score and decile of every customer of `site`, in order.
    pub fn score(&self, site: &Site) -> Vec<Scored> {
        let mut row = vec![0.0; self.propensity.as_ref().map_or(0, |(d, _)| d.columns())];
        (0..site.features.customers.len())
            .map(|i| {
                let x = site.point(i);
                let segment = features::nearest(&self.space.project(x), &self.centroids).0 as u32;
                let Some((design, beta)) = &self.propensity else {
                    return Scored {
                        segment,
                        score: f64::NAN,
                        decile: 0,
                    };
                };
                design.row(&self.space.z(x), segment, &mut row);
                let eta: f64 = row.iter().zip(beta).map(|(a, b)| a * b).sum();
                let score = propensity::sigmoid(eta);
                let decile = if self.deciles.is_empty() {
                    0
                } else {
                    1 + self.deciles.iter().filter(|&&t| score >= t).count() as u8
                };
                Scored {
                    segment,
                    score,
                    decile,
                }
            })
            .collect()
    }

    /// Writes `customer_id, segment, segment_name, score, decile` for every
    /// customer of `site` to `path`: Parquet when it ends in `.parquet`,
    /// else CSV. Returns how many rows were written.
    pub fn write(&self, site: &Site, path: &Path) -> Result<usize, ScoreError> {
        let scored = self.score(site);
        let ids = site.features.customers.iter().map(|c| c.id.as_str());
        let failed = |reason: String| ScoreError::Write {
            path: path.to_path_buf(),
            reason,
        };
        if crate::rfmlt::is_parquet(path) {
            use arrow_array::{
                ArrayRef, Float64Array, RecordBatch, StringArray, UInt8Array, UInt32Array,
            };
            let columns: Vec<(&str, ArrayRef)> = vec![
                (
                    "customer_id",
                    Arc::new(ids.map(Some).collect::<StringArray>()),
                ),
                (
                    "segment",
                    Arc::new(
                        scored
                            .iter()
                            .map(|s| Some(s.segment))
                            .collect::<UInt32Array>(),
                    ),
                ),
                (
                    "segment_name",
                    Arc::new(
                        scored
                            .iter()
                            .map(|s| Some(self.segment_name(s.segment)))
                            .collect::<StringArray>(),
                    ),
                ),
                (
                    "score",
                    Arc::new(
                        scored
                            .iter()
                            .map(|s| Some(s.score))
                            .collect::<Float64Array>(),
                    ),
                ),
                (
                    "decile",
                    Arc::new(
                        scored
                            .iter()
                            .map(|s| Some(s.decile))
                            .collect::<UInt8Array>(),
                    ),
                ),
            ];
            let batch = RecordBatch::try_from_iter(columns).map_err(|e| failed(e.to_string()))?;
            let file = std::fs::File::create(path).map_err(|e| failed(e.to_string()))?;
            let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
                .map_err(|e| failed(e.to_string()))?;
            writer.write(&batch).map_err(|e| failed(e.to_string()))?;
            writer.close().map_err(|e| failed(e.to_string()))?;
        } else {
            let mut out = csv::Writer::from_path(path).map_err(|e| failed(e.to_string()))?;
            out.write_record(["customer_id", "segment", "segment_name", "score", "decile"])
                .map_err(|e| failed(e.to_string()))?;
            for (id, s) in ids.zip(&scored) {
                let score = if s.score.is_nan() {
                    String::new()
                } else {
                    format!("{:.6}", s.score)
                };
                out.write_record([
                    id,
                    &s.segment.to_string(),
                    self.segment_name(s.segment),
                    &score,
                    &s.decile.to_string(),
                ])
                .map_err(|e| failed(e.to_string()))?;
            }
            out.flush().map_err(|e| failed(e.to_string()))?;
        }
        Ok(scored.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfmlt::{ColumnNames, Tables};

    /// A real result.json (the golden demo job's) with the model the test
    /// checks by hand put in its place.
    fn result() -> String {
        let golden = include_str!("../../tests/golden/demo-3-sites-600-customers.result.json");
        let mut r: serde_json::Value = serde_json::from_str(golden).unwrap();
        let set = |r: &mut serde_json::Value, path: &[&str], v: serde_json::Value| {
            let mut at = r;
            for key in path {
                at = &mut at[*key];
            }
            *at = v;
        };
        use serde_json::json;
        set(
            &mut r,
            &["standardization", "mean"],
            json!([300, 1.5, 5, 300, 4]),
        );
        set(
            &mut r,
            &["standardization", "std"],
            json!([200, 1, 2, 250, 3]),
        );
        set(
            &mut r,
            &["standardization", "clip_lo"],
            json!([0, 0, 0, 0, 0]),
        );
        set(
            &mut r,
            &["standardization", "clip_hi"],
            json!([36500, 11.5, 18.4, 36500, 100000]),
        );
        set(
            &mut r,
            &["segmentation", "space_scale"],
            json!([1, 1, 1, 1, 1]),
        );
        set(
            &mut r,
            &["segmentation", "centroids"],
            json!([[-1, 1, 1, 1, 0], [1, -1, -1, -1, 0]]),
        );
        let mut segments = r["segmentation"]["segments"].as_array().unwrap()[..2].to_vec();
        segments[0]["name"] = json!("loyal");
        segments[1]["name"] = json!("lapsed");
        set(&mut r, &["segmentation", "segments"], json!(segments));
        let p = &mut r["propensity"];
        p["design_features"] = json!([true, true, true, true, true]);
        p["design_segments"] = json!(2);
        p["intercept"] = json!(-1.0);
        p["coefficients"] = json!([-0.5, 0.8, 0.1, 0.0, 0.2, -0.3]);
        p["evaluation"]["decile_thresholds"] =
            json!([0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6]);
        r.to_string()
    }

    fn site() -> Site {
        let dir = tempfile::tempdir().unwrap();
        fedseg_synth::write(dir.path(), 300, 4, "retail").unwrap();
        let tables = Tables {
            transactions: dir.path().join("transactions.csv"),
            interactions: dir.path().join("interactions.csv"),
            customers: dir.path().join("customers.csv"),
            columns: ColumnNames::default(),
        };
        Site::load(&tables, time::macros::date!(2026 - 11 - 01)).unwrap()
    }

    #[test]
    fn scores_follow_the_model_and_land_in_csv_or_parquet() {
        let site = site();
        let model = SavedModel::from_result(&result()).unwrap();
        let scored = model.score(&site);
        assert_eq!(scored.len(), site.features.customers.len());
        let space = &model.space;
        for (i, s) in scored.iter().enumerate() {
            let x = site.point(i);
            let z = space.z(x);
            let segment = features::nearest(&space.project(x), &model.centroids).0 as u32;
            assert_eq!(s.segment, segment);
            let eta = -1.0 - 0.5 * z[0] + 0.8 * z[1] + 0.1 * z[2] + 0.2 * z[4]
                - 0.3 * f64::from(segment == 1);
            assert!((s.score - propensity::sigmoid(eta)).abs() < 1e-12);
            let above = model.deciles.iter().filter(|&&t| s.score >= t).count() as u8;
            assert_eq!(s.decile, 1 + above);
        }
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("scores.csv");
        assert_eq!(model.write(&site, &csv).unwrap(), scored.len());
        let text = std::fs::read_to_string(&csv).unwrap();
        assert!(text.starts_with("customer_id,segment,segment_name,score,decile\n"));
        assert_eq!(text.lines().count(), scored.len() + 1);
        let parquet_path = dir.path().join("scores.parquet");
        model.write(&site, &parquet_path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            std::fs::File::open(&parquet_path).unwrap(),
        )
        .unwrap()
        .build()
        .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, scored.len());
    }

    #[test]
    fn a_result_without_its_model_is_refused() {
        let mut r: serde_json::Value = serde_json::from_str(&result()).unwrap();
        r["segmentation"]["centroids"] = serde_json::json!([[1.0, 2.0]]);
        assert!(matches!(
            SavedModel::from_result(&r.to_string()),
            Err(ScoreError::Field("segmentation.centroids"))
        ));
        let mut r: serde_json::Value = serde_json::from_str(&result()).unwrap();
        r["propensity"]["coefficients"] = serde_json::json!([0.8, 0.1]);
        assert!(matches!(
            SavedModel::from_result(&r.to_string()),
            Err(ScoreError::Field("propensity.coefficients"))
        ));
        // A file that is not the results contract names what is missing.
        let missing = SavedModel::from_result("{\"segmentation\": {}}").unwrap_err();
        assert!(missing.to_string().contains("missing field"), "{missing}");
    }
}
