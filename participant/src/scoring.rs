//! Local scoring: applies a job's final segmentation and propensity model
//! (read from its `result.json`, which holds aggregates only) to this
//! site's own customers, and writes each customer's segment, score and
//! decile to a local CSV or Parquet file. Scores never leave the site.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use fedseg_common::features::{self, DIM, Space};
use fedseg_common::propensity::{self, Design};
use serde_json::Value;
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

fn floats(v: &Value, field: &'static str) -> Result<Vec<f64>, ScoreError> {
    v.as_array()
        .ok_or(ScoreError::Field(field))?
        .iter()
        .map(|x| x.as_f64().ok_or(ScoreError::Field(field)))
        .collect()
}

fn five(v: &Value, field: &'static str) -> Result<[f64; DIM], ScoreError> {
    floats(v, field)?
        .try_into()
        .map_err(|_| ScoreError::Field(field))
}

impl SavedModel {
    /// Reads the model from a job's `result.json`.
    pub fn from_result(text: &str) -> Result<Self, ScoreError> {
        let r: Value = serde_json::from_str(text)?;
        let st = &r["standardization"];
        let seg = &r["segmentation"];
        let space = Space {
            mean: five(&st["mean"], "standardization.mean")?,
            std: five(&st["std"], "standardization.std")?,
            scale: five(&seg["space_scale"], "segmentation.space_scale")?,
            lo: five(&st["clip_lo"], "standardization.clip_lo")?,
            hi: five(&st["clip_hi"], "standardization.clip_hi")?,
        };
        let centroids: Vec<f64> = seg["centroids"]
            .as_array()
            .ok_or(ScoreError::Field("segmentation.centroids"))?
            .iter()
            .map(|c| floats(c, "segmentation.centroids"))
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        if centroids.is_empty() || !centroids.len().is_multiple_of(DIM) {
            return Err(ScoreError::Field("segmentation.centroids"));
        }
        let segment_names = seg["segments"]
            .as_array()
            .map(|s| {
                s.iter()
                    .map(|s| s["name"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let p = &r["propensity"];
        let (propensity, deciles) = if p.is_object() {
            let flags = p["design_features"]
                .as_array()
                .ok_or(ScoreError::Field("propensity.design_features"))?;
            let features: [bool; DIM] = flags
                .iter()
                .map(|f| {
                    f.as_bool()
                        .ok_or(ScoreError::Field("propensity.design_features"))
                })
                .collect::<Result<Vec<_>, _>>()?
                .try_into()
                .map_err(|_| ScoreError::Field("propensity.design_features"))?;
            let design = Design {
                features,
                segments: p["design_segments"]
                    .as_u64()
                    .ok_or(ScoreError::Field("propensity.design_segments"))?
                    as u32,
            };
            let mut beta = vec![
                p["intercept"]
                    .as_f64()
                    .ok_or(ScoreError::Field("propensity.intercept"))?,
            ];
            beta.extend(floats(&p["coefficients"], "propensity.coefficients")?);
            if beta.len() != design.columns() {
                return Err(ScoreError::Field("propensity.coefficients"));
            }
            let deciles = match &p["evaluation"]["decile_thresholds"] {
                Value::Null => vec![],
                v => floats(v, "propensity.evaluation.decile_thresholds")?,
            };
            (Some((design, beta)), deciles)
        } else {
            (None, vec![])
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
