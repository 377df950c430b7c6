//! A campaign's measured outcome: per segment and score decile, how many
//! customers of a site's contact list were in the treatment group and in
//! the control group, how many of each converted after the campaign, and
//! how many of each the site's outcomes table marks as contacted.
//!
//! Layout: for each segment (k), for each decile 1..=10, [`ENTRIES`] =
//! `[treated, treated converted, treated contacted, control, control
//! converted, control contacted]`; then one entry: customers on the list
//! without a row in the outcomes table (left out of every cell).

use super::{LayoutError, check_length};
use crate::campaign::DECILES;

/// Entries per (segment, decile) cell.
pub const ENTRIES: usize = 6;

/// Entries for a model of `segments` segments.
pub fn length(segments: usize) -> usize {
    segments * DECILES * ENTRIES + 1
}

/// One customer on a site's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// Segment index.
    pub segment: usize,
    /// Score decile, 1 to 10.
    pub decile: u8,
    /// Held back in the control group.
    pub control: bool,
    /// What the outcomes table says: (contacted, converted after), or none.
    pub outcome: Option<(bool, bool)>,
}

/// Adds one customer of the list; a row outside the layout is a request
/// error the caller checked before.
pub fn add(out: &mut [f64], segments: usize, row: &Row) {
    let Some((contacted, converted)) = row.outcome else {
        out[segments * DECILES * ENTRIES] += 1.0;
        return;
    };
    let cell = (row.segment * DECILES + (row.decile as usize).clamp(1, DECILES) - 1) * ENTRIES;
    let group = &mut out[cell + if row.control { 3 } else { 0 }..][..3];
    group[0] += 1.0;
    group[1] += f64::from(converted);
    group[2] += f64::from(contacted);
}

/// Per-customer bounds, and the squared L2 bound (one group's three
/// counts of one cell).
pub fn customer_bounds(segments: usize) -> (Vec<f64>, f64) {
    (vec![1.0; length(segments)], 3.0)
}

/// One group's counts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Group {
    /// Customers.
    pub customers: f64,
    /// Of them converted after the campaign.
    pub converted: f64,
    /// Of them contacted.
    pub contacted: f64,
}

impl Group {
    fn plus(self, other: Group) -> Group {
        Group {
            customers: self.customers + other.customers,
            converted: self.converted + other.converted,
            contacted: self.contacted + other.contacted,
        }
    }
}

/// One cell's (or an aggregate's) treatment and control counts.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Cell {
    /// The treatment group.
    pub treated: Group,
    /// The control group.
    pub control: Group,
}

impl Cell {
    /// The cell's counts added to `other`'s.
    pub fn plus(self, other: Cell) -> Cell {
        Cell {
            treated: self.treated.plus(other.treated),
            control: self.control.plus(other.control),
        }
    }
}

/// A released sum, by field.
#[derive(Debug, Clone, PartialEq)]
pub struct Counts {
    /// `cells[segment][decile - 1]`.
    pub cells: Vec<[Cell; DECILES]>,
    /// Customers on the lists without an outcome row.
    pub missing_outcomes: f64,
}

impl Counts {
    /// Every cell of `segment`, added up.
    pub fn segment(&self, segment: usize) -> Cell {
        self.cells[segment]
            .iter()
            .fold(Cell::default(), |a, c| a.plus(*c))
    }

    /// Every cell of `decile` (1 to 10), added up.
    pub fn decile(&self, decile: usize) -> Cell {
        self.cells
            .iter()
            .fold(Cell::default(), |a, c| a.plus(c[decile - 1]))
    }

    /// Every cell, added up.
    pub fn total(&self) -> Cell {
        (0..self.cells.len()).fold(Cell::default(), |a, s| a.plus(self.segment(s)))
    }
}

/// Reads a released sum of a model of `segments` segments.
pub fn decode(sum: &[f64], segments: usize) -> Result<Counts, LayoutError> {
    check_length("campaign outcomes", sum, length(segments))?;
    let group = |s: &[f64]| Group {
        customers: s[0],
        converted: s[1],
        contacted: s[2],
    };
    let cells = sum[..segments * DECILES * ENTRIES]
        .chunks_exact(DECILES * ENTRIES)
        .map(|segment| {
            std::array::from_fn(|d| {
                let s = &segment[d * ENTRIES..][..ENTRIES];
                Cell {
                    treated: group(&s[..3]),
                    control: group(&s[3..]),
                }
            })
        })
        .collect();
    Ok(Counts {
        cells,
        missing_outcomes: sum[segments * DECILES * ENTRIES],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_land_in_their_cell_and_group_and_decode_by_field() {
        let mut out = vec![0.0; length(2)];
        let row = |segment, decile, control, outcome| Row {
            segment,
            decile,
            control,
            outcome,
        };
        add(&mut out, 2, &row(1, 10, false, Some((true, true))));
        add(&mut out, 2, &row(1, 10, true, Some((false, true))));
        add(&mut out, 2, &row(1, 9, true, Some((false, false))));
        add(&mut out, 2, &row(0, 10, false, None));
        let counts = decode(&out, 2).unwrap();
        let top = counts.cells[1][9];
        assert_eq!((top.treated.customers, top.treated.contacted), (1.0, 1.0));
        assert_eq!((top.control.customers, top.control.converted), (1.0, 1.0));
        assert_eq!(counts.segment(1).control.customers, 2.0);
        assert_eq!(counts.decile(9).control.customers, 1.0);
        assert_eq!(counts.total().treated.customers, 1.0);
        assert_eq!(counts.missing_outcomes, 1.0);
        assert!(decode(&out[1..], 2).is_err());
    }
}
