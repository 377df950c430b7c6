//! A computing party's own side of the vertical joint model (design.md,
//! "Vertical joint modelling contract"): its columns over the intersection,
//! in the order every party shares, standardised on its own training rows
//! (population standard deviation; a zero-variance column is left out),
//! and the files it writes at the end: `vertical_model.json` (its own
//! block of the model) and, at the label holder, `scores.csv` (the joint
//! score of each customer in the intersection). Nothing here leaves the
//! site.

use std::path::Path;

use fedseg_common::mpc::eval::{self, Evaluation};
use fedseg_common::mpc::plain;
use fedseg_common::propensity::{self, is_holdout};
use fedseg_common::psi::AlignedRow;
use serde::Serialize;

use crate::joint_raw::RawColumns;
use crate::partner::PartnerRows;
use crate::rfmlt::Features;

/// z-scores are clipped to ±this before the fit (winsorised at three
/// standard deviations): the linear predictor then stays inside the secure
/// sigmoid's domain (|η| ≤ 24) for any sensible coefficients, where a
/// heavy-tailed column would otherwise take a few customers far outside it.
pub const Z_CLIP: f64 = 3.0;

/// Names of the label holder's columns: x of the horizontal model.
pub const LABEL_HOLDER_COLUMNS: [&str; 5] = ["R", "log1p_F", "log1p_M", "L", "T"];

/// A party's standardised columns over the intersection.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalDesign {
    /// Its customer ids, row by row in the common order.
    pub ids: Vec<String>,
    /// Columns kept.
    pub features: Vec<String>,
    /// Columns left out for zero variance.
    pub dropped: Vec<String>,
    /// Mean of each kept column over the training rows.
    pub mean: Vec<f64>,
    /// Population standard deviation over the training rows.
    pub std: Vec<f64>,
    /// z-scores, row-major, one row per customer.
    pub z: Vec<f64>,
    /// The label holder's labels.
    pub labels: Option<Vec<bool>>,
    /// Whether each row is in the holdout (the contract's SHA-256 rule).
    pub holdout: Vec<bool>,
    /// The parties of the job that fits the model, label holder first
    /// (saved with the block, so joint scoring can check it has them all).
    pub parties: Vec<String>,
}

impl LocalDesign {
    /// The label holder's design: x = R, log1p F, log1p M, L, T.
    pub fn label_holder(
        features: &Features,
        rows: &[AlignedRow],
        seed: u64,
        fraction: f64,
    ) -> Self {
        let raw = RawColumns::label_holder(features, rows);
        Self::standardise(raw.ids, raw.names, &raw.rows, raw.labels, seed, fraction)
    }

    /// A feature partner's design: its offered columns after clip and
    /// transform.
    pub fn partner(table: &PartnerRows, rows: &[AlignedRow], seed: u64, fraction: f64) -> Self {
        let raw = RawColumns::partner(table, rows);
        Self::standardise(raw.ids, raw.names, &raw.rows, None, seed, fraction)
    }

    fn standardise(
        ids: Vec<String>,
        names: Vec<String>,
        raw: &[Vec<f64>],
        labels: Option<Vec<bool>>,
        seed: u64,
        fraction: f64,
    ) -> Self {
        let holdout: Vec<bool> = ids
            .iter()
            .map(|id| is_holdout(seed, id, fraction))
            .collect();
        let train: Vec<&Vec<f64>> = raw
            .iter()
            .zip(&holdout)
            .filter(|(_, h)| !**h)
            .map(|(r, _)| r)
            .collect();
        let n = train.len().max(1) as f64;
        let (mut features, mut dropped, mut mean, mut std, mut kept) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (j, name) in names.into_iter().enumerate() {
            let m = train.iter().map(|r| r[j]).sum::<f64>() / n;
            let s = (train.iter().map(|r| (r[j] - m).powi(2)).sum::<f64>() / n).sqrt();
            if s > 1e-12 * m.abs().max(1.0) {
                features.push(name);
                mean.push(m);
                std.push(s);
                kept.push(j);
            } else {
                dropped.push(name);
            }
        }
        // z-scores clipped to ±Z_CLIP: a heavy tail would otherwise take the
        // linear predictor out of the secure sigmoid's domain.
        let z = raw
            .iter()
            .flat_map(|r| {
                kept.iter()
                    .enumerate()
                    .map(|(k, &j)| ((r[j] - mean[k]) / std[k]).clamp(-Z_CLIP, Z_CLIP))
                    .collect::<Vec<_>>()
            })
            .collect();
        Self {
            ids,
            features,
            dropped,
            mean,
            std,
            z,
            labels,
            holdout,
            parties: Vec::new(),
        }
    }

    /// Customers in the intersection.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }

    /// The label holder's own model on its training rows, evaluated on the
    /// holdout: what the bank would have without its partners.
    pub fn own_model(&self, l2: f64) -> Option<Evaluation> {
        let labels = self.labels.as_ref()?;
        let d = 1 + self.features.len();
        let row = |i: usize| -> Vec<f64> {
            std::iter::once(1.0)
                .chain(self.z[i * (d - 1)..(i + 1) * (d - 1)].iter().copied())
                .collect()
        };
        let train: Vec<usize> = (0..self.rows()).filter(|&i| !self.holdout[i]).collect();
        let x: Vec<f64> = train.iter().flat_map(|&i| row(i)).collect();
        let y: Vec<bool> = train.iter().map(|&i| labels[i]).collect();
        let beta = plain::fit(&x, &y, d, l2);
        let eta: Vec<f64> = (0..self.rows())
            .map(|i| row(i).iter().zip(&beta).map(|(a, b)| a * b).sum())
            .collect();
        self.evaluate(&eta)
    }

    /// Holdout quality of linear predictors `eta` (one per row).
    pub fn evaluate(&self, eta: &[f64]) -> Option<Evaluation> {
        let (e, l) = self.holdout_rows(eta)?;
        (!e.is_empty()).then(|| eval::evaluate(&e, &l))
    }

    /// The holdout rows' predictors and labels (the label holder only).
    fn holdout_rows(&self, eta: &[f64]) -> Option<(Vec<f64>, Vec<bool>)> {
        let labels = self.labels.as_ref()?;
        Some(
            (0..self.rows())
                .filter(|&i| self.holdout[i])
                .map(|i| (eta[i], labels[i]))
                .unzip(),
        )
    }

    /// Holdout calibration of linear predictors `eta` (one per row); empty
    /// at a partner.
    pub fn calibration(&self, eta: &[f64]) -> Vec<fedseg_common::result::CalibrationBin> {
        self.holdout_rows(eta)
            .map_or_else(Vec::new, |(e, l)| eval::calibration(&e, &l))
    }

    /// The label holder's starting intercept: the logit of its training
    /// rows' conversion rate (0 at a partner, or without both classes).
    pub fn start_intercept(&self) -> f64 {
        let Some(labels) = &self.labels else {
            return 0.0;
        };
        let (n, k) = labels
            .iter()
            .zip(&self.holdout)
            .filter(|(_, h)| !**h)
            .fold((0.0, 0.0), |(n, k), (l, _)| {
                (n + 1.0, k + f64::from(u8::from(*l)))
            });
        if k == 0.0 || k == n {
            return 0.0;
        }
        (k / (n - k)).ln()
    }

    /// Holdout rows.
    pub fn holdout_count(&self) -> u64 {
        self.holdout.iter().filter(|&&h| h).count() as u64
    }
}

/// `vertical_model.json`: a party's own block of the joint model.
#[derive(Debug, Serialize)]
pub struct ModelBlock<'a> {
    /// Columns, in coefficient order.
    pub features: &'a [String],
    /// Means of x over the training rows.
    pub mean: &'a [f64],
    /// Population standard deviations of x over the training rows.
    pub std: &'a [f64],
    /// Coefficients on the z-scores.
    pub coefficients: &'a [f64],
    /// The label holder's intercept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intercept: Option<f64>,
    /// Columns left out for zero variance.
    pub dropped: &'a [String],
    /// The parties of the training job, label holder first: a joint
    /// scoring job must have exactly these (each party's block is only a
    /// part of the linear predictor).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    pub parties: &'a [String],
}

/// Writes `dir/vertical_model.json`, and at the label holder
/// `dir/scores.csv` (`customer_id, score, holdout`: the joint probability
/// of conversion of each customer in the intersection).
pub fn write_outputs(
    dir: &Path,
    design: &LocalDesign,
    coefficients: &[f64],
    intercept: Option<f64>,
    joint_eta: Option<&[f64]>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let block = ModelBlock {
        features: &design.features,
        mean: &design.mean,
        std: &design.std,
        coefficients,
        intercept,
        dropped: &design.dropped,
        parties: &design.parties,
    };
    let json = serde_json::to_string_pretty(&block).map_err(std::io::Error::other)? + "\n";
    std::fs::write(dir.join("vertical_model.json"), json)?;
    if let Some(eta) = joint_eta {
        write_scores(dir, &design.ids, eta, Some(&design.holdout))?;
    }
    Ok(())
}

/// Writes `dir/scores.csv`: `customer_id, score` and, when `holdout` is
/// given, `holdout` (the joint probability of conversion of each shared
/// customer, from its joint linear predictor).
pub fn write_scores(
    dir: &Path,
    ids: &[String],
    eta: &[f64],
    holdout: Option<&[bool]>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut out = csv::Writer::from_path(dir.join("scores.csv")).map_err(std::io::Error::other)?;
    let header: &[&str] = if holdout.is_some() {
        &["customer_id", "score", "holdout"]
    } else {
        &["customer_id", "score"]
    };
    out.write_record(header).map_err(std::io::Error::other)?;
    for (i, id) in ids.iter().enumerate() {
        let score = format!("{:.6}", propensity::sigmoid(eta[i]));
        let mut record = vec![id.as_str(), &score];
        if let Some(h) = holdout {
            record.push(if h[i] { "true" } else { "false" });
        }
        out.write_record(&record).map_err(std::io::Error::other)?;
    }
    out.flush()
}
