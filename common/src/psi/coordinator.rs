//! The coordinator's side: it collects hellos, sends the roster, relays
//! sealed lists after checking each one's header and length against the
//! plan, forwards the label holder's verdict, and names the party it still
//! waits for when a run stalls. It never holds a key that opens a list.
//!
//! Delivery order the transport must keep: lists between one sender and one
//! recipient in the order sent, and the verdict to every partner before
//! `reveal-0` reaches party 1. Complete lists may reach the label holder
//! before its own ring step ends; it keeps them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::error::PsiError;
use super::messages::{Envelope, Hello, Roster, Step, Verdict};
use super::seal::check_shape;
use super::{LABEL_HOLDER, MAX_SET, PsiParams};

/// Everything the coordinator learns from a run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoordinatorView {
    /// Set size of each party.
    pub set_sizes: Vec<u64>,
    /// The label holder's verdict, once given.
    pub verdict: Option<Verdict>,
    /// Sealed bytes relayed, by step.
    pub relayed_bytes: BTreeMap<Step, u64>,
}

/// Collecting hellos.
#[derive(Debug)]
pub struct Gathering {
    params: Arc<PsiParams>,
    hellos: Vec<Option<Hello>>,
}

impl Gathering {
    /// Starts a run.
    pub fn new(params: Arc<PsiParams>) -> Self {
        let hellos = vec![None; params.parties as usize];
        Self { params, hellos }
    }

    /// Takes one party's hello.
    pub fn hello(&mut self, from: u32, hello: Hello) -> Result<(), PsiError> {
        let unexpected = PsiError::Unexpected {
            step: Step::Hello,
            from,
            to: u32::MAX,
        };
        let Some(slot) = self.hellos.get_mut(from as usize) else {
            return Err(unexpected);
        };
        if slot.is_some() {
            return Err(unexpected);
        }
        if hello.set_size > MAX_SET {
            return Err(PsiError::WrongLength {
                step: Step::Hello,
                from,
                reason: format!("a set of {} ids", hello.set_size),
            });
        }
        *slot = Some(hello);
        Ok(())
    }

    /// Closes the hello step: the roster for every party, or the first
    /// party that never said hello.
    pub fn close(self) -> Result<(Roster, Relaying), PsiError> {
        if let Some(p) = self.hellos.iter().position(Option::is_none) {
            return Err(PsiError::Dropped {
                party: p as u32,
                step: Step::Hello,
            });
        }
        let hellos: Vec<Hello> = self.hellos.into_iter().flatten().collect();
        let roster = Roster {
            seal_keys: hellos.iter().map(|h| h.seal_key).collect(),
            set_sizes: hellos.iter().map(|h| h.set_size).collect(),
        };
        let plan = self
            .params
            .ring_plan(&roster.set_sizes)
            .into_iter()
            .map(|(step, from, to, points)| ((step, from, to), points))
            .collect();
        let relaying = Relaying {
            view: CoordinatorView {
                set_sizes: roster.set_sizes.clone(),
                ..CoordinatorView::default()
            },
            params: self.params,
            plan,
            done: BTreeSet::new(),
        };
        Ok((roster, relaying))
    }
}

/// Relaying lists.
#[derive(Debug)]
pub struct Relaying {
    params: Arc<PsiParams>,
    /// Every list still expected or relayed: (step, from, to) → points.
    plan: BTreeMap<(Step, u32, u32), u64>,
    done: BTreeSet<(Step, u32, u32)>,
    view: CoordinatorView,
}

impl Relaying {
    /// Checks a list from `from` (the authenticated sender) against the
    /// plan and returns it for delivery to `env.to`.
    pub fn route(&mut self, from: u32, mut env: Envelope) -> Result<Envelope, PsiError> {
        env.from = from;
        let key = (env.step, from, env.to);
        let Some(&points) = self.plan.get(&key) else {
            return Err(PsiError::Unexpected {
                step: env.step,
                from,
                to: env.to,
            });
        };
        if !self.done.insert(key) {
            return Err(PsiError::Unexpected {
                step: env.step,
                from,
                to: env.to,
            });
        }
        check_shape(env.step, from, points, &env.chunks)?;
        *self.view.relayed_bytes.entry(env.step).or_default() += env.bytes() as u64;
        Ok(env)
    }

    /// Takes the label holder's verdict once every complete list reached
    /// it; the caller forwards it to every partner.
    pub fn verdict(&mut self, from: u32, verdict: Verdict) -> Result<(), PsiError> {
        let last = Step::Compare(self.params.parties - 1);
        let compared = self
            .plan
            .keys()
            .filter(|k| k.0 == last)
            .all(|k| self.done.contains(k));
        if from != LABEL_HOLDER || self.view.verdict.is_some() || !compared {
            return Err(PsiError::Unexpected {
                step: Step::Verdict,
                from,
                to: u32::MAX,
            });
        }
        self.view.verdict = Some(verdict);
        if let Verdict::Intersection(size) = verdict {
            let smallest = self.view.set_sizes.iter().copied().min().unwrap_or(0);
            if size < self.params.min_overlap || size > smallest {
                return Err(PsiError::Inconsistent {
                    from,
                    reason: format!("{size} customers cannot be the intersection"),
                });
            }
            if !self.params.overlap_only {
                for (step, from, to, points) in self.params.reveal_plan(size) {
                    self.plan.insert((step, from, to), points);
                }
            }
        }
        Ok(())
    }

    /// Messages still awaited, earliest step first: (step, sender).
    pub fn pending(&self) -> Vec<(Step, u32)> {
        let mut pending: Vec<(Step, u32)> = self
            .plan
            .keys()
            .filter(|k| !self.done.contains(k))
            .map(|&(step, from, _)| (step, from))
            .collect();
        if self.view.verdict.is_none() {
            pending.push((Step::Verdict, LABEL_HOLDER));
        }
        pending.sort_unstable();
        pending.dedup();
        pending
    }

    /// Whether the run is complete.
    pub fn finished(&self) -> bool {
        self.pending().is_empty()
    }

    /// The error to abort with when the run stalls: the sender of the
    /// earliest message still awaited, since every later one waits on it.
    pub fn stalled(&self) -> Option<PsiError> {
        self.pending()
            .first()
            .map(|&(step, party)| PsiError::Dropped { party, step })
    }

    /// What the coordinator has learned.
    pub fn view(&self) -> &CoordinatorView {
        &self.view
    }
}
