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
        if !space.ordered() {
            return Err(ScoreError::Field("standardization.clip_lo"));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rfmlt::{ColumnNames, Tables};

    const RESULT: &str = r#"{
      "as_of": "2026-11-01",
      "standardization": {"mean": [300, 1.5, 5, 300, 4], "std": [200, 1, 2, 250, 3],
                          "clip_lo": [0, 0, 0, 0, 0], "clip_hi": [36500, 11.5, 18.4, 36500, 100000]},
      "segmentation": {"space_scale": [1, 1, 1, 1, 1],
                       "centroids": [[-1, 1, 1, 1, 0], [1, -1, -1, -1, 0]],
                       "segments": [{"name": "loyal"}, {"name": "lapsed"}]},
      "propensity": {"design_features": [true, true, true, true, true], "design_segments": 2,
                     "intercept": -1.0, "coefficients": [-0.5, 0.8, 0.1, 0.0, 0.2, -0.3],
                     "evaluation": {"decile_thresholds": [0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6]}}
    }"#;

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
        let model = SavedModel::from_result(RESULT).unwrap();
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
        let broken = RESULT.replace("\"centroids\"", "\"nothing\"");
        assert!(matches!(
            SavedModel::from_result(&broken),
            Err(ScoreError::Field("segmentation.centroids"))
        ));
        let wrong = RESULT.replace(
            "\"intercept\": -1.0, \"coefficients\": [-0.5,",
            "\"intercept\": -1.0, \"coefficients\": [",
        );
        assert!(SavedModel::from_result(&wrong).is_err());
    }
}
