//! Segment migration between two jobs of a series: each customer counted
//! once in the cell of (its segment in the previous job, its segment now).
//!
//! Layout: a (p + 1) × (k + 1) matrix, row-major: rows are the previous
//! job's p segments then "joined" (not in the previous job), columns the
//! k segments now then "left" (in the previous job, not among this job's
//! consenting customers). The corner cell stays 0.

use super::{LayoutError, check_length};

/// Entries for `previous` segments before and `segments` now.
pub fn length(previous: usize, segments: usize) -> usize {
    (previous + 1) * (segments + 1)
}

/// Adds one customer: its previous segment (none: joined) and its segment
/// now (none: left).
pub fn add(
    out: &mut [f64],
    segments: usize,
    previous: Option<usize>,
    now: Option<usize>,
    rows: usize,
) {
    let row = previous.unwrap_or(rows);
    let column = now.unwrap_or(segments);
    out[row * (segments + 1) + column] += 1.0;
}

/// Per-customer bounds, and the squared L2 bound (one cell).
pub fn customer_bounds(previous: usize, segments: usize) -> (Vec<f64>, f64) {
    (vec![1.0; length(previous, segments)], 1.0)
}

/// A released matrix, by part.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// `moved[i][j]`: previous segment i, segment j now.
    pub moved: Vec<Vec<f64>>,
    /// Per segment now, customers who joined.
    pub joined: Vec<f64>,
    /// Per previous segment, customers who left.
    pub left: Vec<f64>,
}

/// Reads a released sum.
pub fn decode(sum: &[f64], previous: usize, segments: usize) -> Result<Matrix, LayoutError> {
    check_length("segment migration", sum, length(previous, segments))?;
    let rows: Vec<&[f64]> = sum.chunks_exact(segments + 1).collect();
    Ok(Matrix {
        moved: rows[..previous]
            .iter()
            .map(|r| r[..segments].to_vec())
            .collect(),
        joined: rows[previous][..segments].to_vec(),
        left: rows[..previous].iter().map(|r| r[segments]).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_land_in_their_cell_and_decode_by_part() {
        let mut out = vec![0.0; length(2, 3)];
        add(&mut out, 3, Some(1), Some(2), 2);
        add(&mut out, 3, None, Some(0), 2);
        add(&mut out, 3, Some(0), None, 2);
        let m = decode(&out, 2, 3).unwrap();
        assert_eq!(m.moved, vec![vec![0.0; 3], vec![0.0, 0.0, 1.0]]);
        assert_eq!(m.joined, vec![1.0, 0.0, 0.0]);
        assert_eq!(m.left, vec![1.0, 0.0]);
        assert!(decode(&out[1..], 2, 3).is_err());
    }
}
