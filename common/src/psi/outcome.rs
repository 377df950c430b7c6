//! The end of the protocol: the label holder compares the complete lists
//! and announces the verdict; with membership, the intersection is
//! unblinded along the chain and every party aligns its own customers.

use super::error::PsiError;
use super::group::Point;
use super::messages::{Envelope, Step, Verdict};
use super::party::{Core, Party, strictly_increasing};
use super::{LABEL_HOLDER, PsiParams};

/// One of the caller's customers in the intersection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlignedRow {
    /// Index of the id in the slice given to [`super::party::start`].
    pub index: usize,
    /// Its position in the common order, the same at every party.
    pub position: u64,
}

/// What a run releases to a party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The intersection is below `min_overlap`; nothing else is released.
    Stopped {
        /// The minimum that was not met.
        min_overlap: u64,
    },
    /// Overlap-only mode: the intersection size and nothing else.
    OverlapOnly {
        /// Customers in the intersection.
        intersection: u64,
    },
    /// Membership: the size and this party's rows, by position.
    Aligned {
        /// Customers in the intersection.
        intersection: u64,
        /// This party's customers in the intersection, sorted by position.
        rows: Vec<AlignedRow>,
    },
}

/// The label holder with its own completed list, collecting the others.
pub struct Comparer {
    core: Core,
    linked: Vec<Point>,
    /// Complete `G` lists by owner.
    lists: Vec<Option<Vec<Point>>>,
}

/// Where the comparison leads.
pub enum CompareNext {
    /// Some lists are still missing.
    Waiting(Comparer),
    /// All lists arrived: the verdict, any list to send, the next state.
    Decided {
        /// For the coordinator.
        verdict: Verdict,
        /// `reveal-0`, with membership above the minimum.
        envelopes: Vec<Envelope>,
        /// The label holder's next state.
        next: Party,
    },
}

impl Comparer {
    pub(crate) fn new(core: Core, linked: Vec<Point>, owner: u32, complete: Vec<Point>) -> Self {
        let mut lists = vec![None; core.params.parties as usize];
        lists[owner as usize] = Some(complete);
        Self {
            core,
            linked,
            lists,
        }
    }

    /// Owners whose complete list has not arrived.
    pub fn missing(&self) -> Vec<u32> {
        (0..self.lists.len() as u32)
            .filter(|&o| self.lists[o as usize].is_none())
            .collect()
    }

    /// Takes one complete list (`compare-(n-1)` from a partner); decides
    /// once all are in.
    pub fn handle(mut self, env: Envelope) -> Result<CompareNext, PsiError> {
        let params = self.core.params.clone();
        let last = Step::Compare(params.parties - 1);
        let from = env.from;
        if from == LABEL_HOLDER || from >= params.parties {
            return Err(PsiError::Unexpected {
                step: env.step,
                from,
                to: env.to,
            });
        }
        self.core.expect(&env, last, from)?;
        let owner = params.owner(from, params.parties - 1) as usize;
        if self.lists[owner].is_some() {
            return Err(PsiError::Unexpected {
                step: env.step,
                from,
                to: env.to,
            });
        }
        let list = self.core.open(&env, self.core.sizes[owner])?;
        // Decoding is left to the reveal: only intersecting values are ever
        // used as points again, and those are decoded there.
        strictly_increasing(&list, last, from)?;
        self.lists[owner] = Some(list);
        if self.lists.iter().any(Option::is_none) {
            return Ok(CompareNext::Waiting(self));
        }
        Ok(self.decide())
    }

    fn decide(self) -> CompareNext {
        let Comparer {
            core,
            linked,
            lists,
        } = self;
        let lists: Vec<Vec<Point>> = lists.into_iter().map(|l| l.expect("all in")).collect();
        let intersection = intersect(&lists);
        drop(lists);
        let size = intersection.len() as u64;
        let params = &core.params;
        if size < params.min_overlap {
            return CompareNext::Decided {
                verdict: Verdict::BelowMinOverlap,
                envelopes: Vec::new(),
                next: Party::Finished(Outcome::Stopped {
                    min_overlap: params.min_overlap,
                }),
            };
        }
        if params.overlap_only {
            return CompareNext::Decided {
                verdict: Verdict::Intersection(size),
                envelopes: Vec::new(),
                next: Party::Finished(Outcome::OverlapOnly { intersection: size }),
            };
        }
        let step = Step::Reveal(0);
        let unblinded = match core.blind(
            step,
            LABEL_HOLDER,
            &intersection,
            &core.keys.compare.inverse(),
        ) {
            Ok(points) => points,
            // Every value that matched is in the label holder's own
            // completed list, so it decodes unless that list was bad.
            Err(_) => unreachable!("matched values decode"),
        };
        let out = core.seal(step, 1, &unblinded);
        CompareNext::Decided {
            verdict: Verdict::Intersection(size),
            envelopes: vec![out],
            next: Party::Revealing(Revealing {
                core,
                linked,
                size,
                relayed: true,
            }),
        }
    }
}

/// The values present in every list (each strictly increasing), in
/// increasing order.
pub fn intersect(lists: &[Vec<Point>]) -> Vec<Point> {
    let Some((shortest, _)) = lists.iter().enumerate().min_by_key(|(_, l)| l.len()) else {
        return Vec::new();
    };
    lists[shortest]
        .iter()
        .filter(|p| {
            lists
                .iter()
                .enumerate()
                .all(|(i, l)| i == shortest || l.binary_search(p).is_ok())
        })
        .copied()
        .collect()
}

/// A partner that sent its completed list, waiting for the verdict.
pub struct AwaitingVerdict {
    core: Core,
    linked: Vec<Point>,
}

impl AwaitingVerdict {
    pub(crate) fn new(core: Core, linked: Vec<Point>) -> Self {
        Self { core, linked }
    }

    /// Takes the verdict: ends the run, or waits for the reveal.
    pub fn receive(self, verdict: Verdict) -> Result<Party, PsiError> {
        let params: &PsiParams = &self.core.params;
        match verdict {
            Verdict::BelowMinOverlap => Ok(Party::Finished(Outcome::Stopped {
                min_overlap: params.min_overlap,
            })),
            Verdict::Intersection(size) => {
                let smallest = self.core.sizes.iter().copied().min().unwrap_or(0);
                if size < params.min_overlap || size > smallest {
                    return Err(PsiError::BadRelay {
                        what: "verdict",
                        reason: format!("{size} customers cannot be the intersection"),
                    });
                }
                if params.overlap_only {
                    return Ok(Party::Finished(Outcome::OverlapOnly { intersection: size }));
                }
                Ok(Party::Revealing(Revealing {
                    core: self.core,
                    linked: self.linked,
                    size,
                    relayed: false,
                }))
            }
        }
    }
}

/// Unblinding the intersection along the chain, or waiting for its result.
pub struct Revealing {
    core: Core,
    linked: Vec<Point>,
    size: u64,
    /// Whether this party's hop of the chain is done (always for the label
    /// holder, which starts it).
    relayed: bool,
}

impl Revealing {
    /// Takes `reveal-(k-1)` (party `k`) or the `result`.
    pub fn handle(self, env: Envelope) -> Result<(Vec<Envelope>, Party), PsiError> {
        let me = self.core.me;
        let last = self.core.params.parties - 1;
        if self.relayed {
            self.core.expect(&env, Step::Result, last)?;
            let list = self.core.open(&env, self.size)?;
            strictly_increasing(&list, Step::Result, last)?;
            let outcome = self.align(&list, last)?;
            return Ok((Vec::new(), Party::Finished(outcome)));
        }
        let step = Step::Reveal(me - 1);
        self.core.expect(&env, step, me - 1)?;
        let list = self.core.open(&env, self.size)?;
        let inverse = self.core.keys.compare.inverse();
        let mut unblinded = self.core.blind(step, me - 1, &list, &inverse)?;
        if me < last {
            let out = self.core.seal(Step::Reveal(me), me + 1, &unblinded);
            return Ok((
                vec![out],
                Party::Revealing(Revealing {
                    relayed: true,
                    ..self
                }),
            ));
        }
        unblinded.sort_unstable();
        strictly_increasing(&unblinded, step, me - 1)?;
        let outcome = self.align(&unblinded, me - 1)?;
        let out = (0..last)
            .map(|to| self.core.seal(Step::Result, to, &unblinded))
            .collect();
        Ok((out, Party::Finished(outcome)))
    }

    /// This party's rows: its own `F(x)` found in the sorted intersection.
    fn align(&self, intersection: &[Point], from: u32) -> Result<Outcome, PsiError> {
        let mut rows: Vec<AlignedRow> = self
            .linked
            .iter()
            .enumerate()
            .filter_map(|(t, f)| {
                intersection
                    .binary_search(f)
                    .ok()
                    .map(|position| AlignedRow {
                        index: self.core.order[t],
                        position: position as u64,
                    })
            })
            .collect();
        if rows.len() as u64 != self.size {
            return Err(PsiError::Inconsistent {
                from,
                reason: format!(
                    "{} of the {} released customers are in this party's set",
                    rows.len(),
                    self.size
                ),
            });
        }
        rows.sort_unstable_by_key(|r| r.position);
        Ok(Outcome::Aligned {
            intersection: self.size,
            rows,
        })
    }
}
