//! A party's columns over a vertical job's intersection before
//! standardisation, and its saved model block read back: what training
//! standardises, and what a later joint scoring job (`[vertical]
//! score_with`) applies the saved block to. Nothing here leaves the site.

use std::path::Path;

use fedseg_common::features::{self, DEFAULT_BOUNDS};
use fedseg_common::psi::AlignedRow;

use crate::joint::{LABEL_HOLDER_COLUMNS, Z_CLIP};
use crate::partner::PartnerRows;
use crate::rfmlt::Features;

/// x after clip and transform, one row per shared customer in the common
/// order.
#[derive(Debug, Clone, PartialEq)]
pub struct RawColumns {
    /// Customer ids, row by row.
    pub ids: Vec<String>,
    /// Column names.
    pub names: Vec<String>,
    /// Rows of x.
    pub rows: Vec<Vec<f64>>,
    /// The label holder's labels.
    pub labels: Option<Vec<bool>>,
}

impl RawColumns {
    /// The label holder's x = R, log1p F, log1p M, L, T, as in the
    /// horizontal model: transformed, then clipped to the default bounds.
    pub fn label_holder(features: &Features, rows: &[AlignedRow]) -> Self {
        let customers: Vec<_> = rows.iter().map(|r| &features.customers[r.index]).collect();
        let raw = customers
            .iter()
            .map(|c| {
                let x = features::transform([c.r, c.f, c.m, c.l, c.t]);
                (0..x.len())
                    .map(|j| x[j].clamp(DEFAULT_BOUNDS[j].0, DEFAULT_BOUNDS[j].1))
                    .collect()
            })
            .collect();
        Self {
            ids: customers.iter().map(|c| c.id.clone()).collect(),
            names: LABEL_HOLDER_COLUMNS.map(String::from).to_vec(),
            rows: raw,
            labels: Some(customers.iter().map(|c| c.converted).collect()),
        }
    }

    /// A feature partner's offered columns after clip and transform.
    pub fn partner(table: &PartnerRows, rows: &[AlignedRow]) -> Self {
        Self {
            ids: rows.iter().map(|r| table.ids[r.index].clone()).collect(),
            names: table.columns.clone(),
            rows: rows.iter().map(|r| table.row(r.index).to_vec()).collect(),
            labels: None,
        }
    }

    /// This party's part of the linear predictor of each row under its
    /// saved `block`: z-scores by the block's mean and standard deviation,
    /// winsorised at ±[`Z_CLIP`] as in training, plus the intercept at the
    /// label holder. A column of the block this party no longer offers is
    /// an error naming it.
    pub fn partial(&self, block: &SavedBlock) -> Result<Vec<f64>, String> {
        let k = block.features.len();
        if block.mean.len() != k || block.std.len() != k || block.coefficients.len() != k {
            return Err("the model block's lists differ in length".into());
        }
        let columns = block
            .features
            .iter()
            .map(|f| {
                self.names
                    .iter()
                    .position(|n| n == f)
                    .ok_or_else(|| format!("the model's column {f} is not offered any more"))
            })
            .collect::<Result<Vec<usize>, String>>()?;
        Ok(self
            .rows
            .iter()
            .map(|x| {
                let start = block.intercept.unwrap_or(0.0);
                columns.iter().enumerate().fold(start, |eta, (i, &j)| {
                    let z = ((x[j] - block.mean[i]) / block.std[i]).clamp(-Z_CLIP, Z_CLIP);
                    eta + block.coefficients[i] * z
                })
            })
            .collect())
    }
}

/// A party's `vertical_model.json`, read back for joint scoring.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct SavedBlock {
    /// Columns, in coefficient order.
    pub features: Vec<String>,
    /// Means of x over the training rows.
    pub mean: Vec<f64>,
    /// Standard deviations of x over the training rows.
    pub std: Vec<f64>,
    /// Coefficients on the z-scores.
    pub coefficients: Vec<f64>,
    /// The label holder's intercept.
    #[serde(default)]
    pub intercept: Option<f64>,
    /// The training job's parties, label holder first (empty in blocks
    /// written before they were saved).
    #[serde(default)]
    pub parties: Vec<String>,
}

impl SavedBlock {
    /// Reads `dir/vertical_model.json`.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join("vertical_model.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }
}
