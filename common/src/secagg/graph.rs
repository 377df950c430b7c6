//! The SecAgg+ neighbour graph: who masks with whom and who holds whose
//! shares.
//!
//! Small cohorts use the complete graph. Larger ones use a Harary-style ring
//! of even degree k = O(log n) over a permutation of the cohort drawn with
//! ChaCha20 from a public seed, so every party derives the same graph and can
//! check it. A member's secrets are shared among its neighbours and itself.

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use rand::seq::SliceRandom;

use super::error::SecAggError;

/// Cohorts up to this size use the complete graph by default.
pub const COMPLETE_GRAPH_MAX: u32 = 32;

/// The masking graph of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourGraph {
    neighbours: Vec<Vec<u32>>,
    complete: bool,
}

impl NeighbourGraph {
    /// The default degree for a cohort of `n`: complete up to
    /// [`COMPLETE_GRAPH_MAX`], otherwise the even number nearest above
    /// 3·log2(n) (20 for n = 100, 30 for n = 1000).
    pub fn default_degree(n: u32) -> u32 {
        if n <= COMPLETE_GRAPH_MAX {
            return n.saturating_sub(1);
        }
        let k = (3.0 * (n as f64).log2()).ceil() as u32;
        (k + k % 2).min(n - 1)
    }

    /// The graph over `n` members where each has `degree` neighbours
    /// (rounded up to even; `degree >= n - 1` gives the complete graph).
    pub fn new(n: u32, degree: u32, seed: &[u8; 32]) -> Result<Self, SecAggError> {
        if n < 2 {
            return Err(SecAggError::InvalidParams(format!(
                "a cohort needs at least 2 participants, got {n}"
            )));
        }
        if degree == 0 {
            return Err(SecAggError::InvalidParams(
                "neighbour degree must be positive".into(),
            ));
        }
        let degree = degree + degree % 2;
        if degree >= n - 1 {
            let neighbours = (0..n)
                .map(|i| (0..n).filter(|&j| j != i).collect())
                .collect();
            return Ok(Self {
                neighbours,
                complete: true,
            });
        }
        let mut order: Vec<u32> = (0..n).collect();
        order.shuffle(&mut ChaCha20Rng::from_seed(*seed));
        let half = (degree / 2) as usize;
        let len = n as usize;
        let mut neighbours = vec![Vec::with_capacity(degree as usize); len];
        for (pos, &member) in order.iter().enumerate() {
            for step in 1..=half {
                neighbours[member as usize].push(order[(pos + step) % len]);
                neighbours[member as usize].push(order[(pos + len - step) % len]);
            }
        }
        for list in &mut neighbours {
            list.sort_unstable();
        }
        Ok(Self {
            neighbours,
            complete: false,
        })
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.neighbours.len()
    }

    /// Whether the graph has no members (never true for a built graph).
    pub fn is_empty(&self) -> bool {
        self.neighbours.is_empty()
    }

    /// Whether every member neighbours every other.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Neighbours of `member`, sorted.
    pub fn neighbours(&self, member: u32) -> &[u32] {
        &self.neighbours[member as usize]
    }

    /// Whether `a` and `b` are neighbours.
    pub fn are_neighbours(&self, a: u32, b: u32) -> bool {
        self.neighbours(a).binary_search(&b).is_ok()
    }

    /// Members holding shares of `owner`'s secrets: its neighbours and itself,
    /// sorted.
    pub fn holders(&self, owner: u32) -> Vec<u32> {
        let mut holders = self.neighbours(owner).to_vec();
        let at = holders.partition_point(|&h| h < owner);
        holders.insert(at, owner);
        holders
    }

    /// The smallest number of share holders any member has.
    pub fn min_holders(&self) -> usize {
        self.neighbours
            .iter()
            .map(|n| n.len() + 1)
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_cohorts_are_complete() {
        let g = NeighbourGraph::new(5, NeighbourGraph::default_degree(5), &[0; 32]).unwrap();
        assert!(g.is_complete());
        assert_eq!(g.neighbours(2), &[0, 1, 3, 4]);
        assert_eq!(g.holders(2), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn sparse_graph_is_regular_symmetric_and_seeded() {
        let n = 100;
        let k = NeighbourGraph::default_degree(n);
        assert_eq!(k, 20);
        let g = NeighbourGraph::new(n, k, &[7; 32]).unwrap();
        assert!(!g.is_complete());
        for i in 0..n {
            let ns = g.neighbours(i);
            assert_eq!(ns.len(), k as usize);
            assert!(!ns.contains(&i));
            for &j in ns {
                assert!(g.are_neighbours(j, i), "{i}-{j} not symmetric");
            }
        }
        assert_eq!(g, NeighbourGraph::new(n, k, &[7; 32]).unwrap());
        assert_ne!(g, NeighbourGraph::new(n, k, &[8; 32]).unwrap());
        assert_eq!(NeighbourGraph::default_degree(1000), 30);
    }

    #[test]
    fn rejects_degenerate_cohorts() {
        assert!(NeighbourGraph::new(1, 1, &[0; 32]).is_err());
        assert!(NeighbourGraph::new(10, 0, &[0; 32]).is_err());
    }
}
