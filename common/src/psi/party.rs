//! A party's side of the protocol, as states consumed by value:
//! [`start`] → [`Joining`] → [`Ring`] (both ring passes) → then the label
//! holder's [`Comparer`](super::outcome::Comparer) or a partner's
//! [`AwaitingVerdict`](super::outcome::AwaitingVerdict) → a reveal → an
//! [`Outcome`]. [`Party`] wraps the states for a transport that dispatches
//! whatever arrives; a message the current state does not take is refused.

use std::collections::HashSet;
use std::sync::Arc;

use rand::CryptoRng;
use rand::seq::SliceRandom;
use x25519_dalek::{PublicKey, StaticSecret};

use super::error::PsiError;
use super::group::{self, BlindingKey, Point};
use super::messages::{Envelope, Hello, Roster, Step, Verdict};
use super::outcome::{AwaitingVerdict, CompareNext, Comparer, Outcome, Revealing};
use super::seal::{Channel, ListContext};
use super::{LABEL_HOLDER, MAX_SET, PsiParams};

/// One party's secrets for one job; every field wipes itself on drop.
pub(crate) struct Keys {
    /// `r`: masks the party's own list on its way round the ring.
    pub(crate) mask: BlindingKey,
    /// `a`: the linking key.
    pub(crate) link: BlindingKey,
    /// `b`: the comparison key.
    pub(crate) compare: BlindingKey,
    /// X25519 sealing key.
    pub(crate) seal: StaticSecret,
}

/// What every state carries: parameters, keys, channels and the secret
/// order in which the party sent its own ids.
pub(crate) struct Core {
    pub(crate) params: Arc<PsiParams>,
    pub(crate) me: u32,
    pub(crate) threads: usize,
    pub(crate) keys: Keys,
    /// Position `t` of the party's own list holds the caller's id `order[t]`.
    pub(crate) order: Vec<usize>,
    pub(crate) sizes: Vec<u64>,
    channels: Vec<Option<Channel>>,
}

impl Core {
    /// Refuses `env` unless it is `step` from `from` to this party.
    pub(crate) fn expect(&self, env: &Envelope, step: Step, from: u32) -> Result<(), PsiError> {
        if env.step != step || env.from != from || env.to != self.me {
            return Err(PsiError::Unexpected {
                step: env.step,
                from: env.from,
                to: env.to,
            });
        }
        Ok(())
    }

    fn context(&self, step: Step, sender: u32, recipient: u32, points: u64) -> ListContext<'_> {
        ListContext {
            consortium: &self.params.consortium,
            job_id: &self.params.job_id,
            step,
            sender,
            recipient,
            points,
        }
    }

    fn channel(&self, peer: u32) -> &Channel {
        self.channels[peer as usize]
            .as_ref()
            .expect("a channel to every other party")
    }

    /// Opens the list in `env`, which must hold `points` points.
    pub(crate) fn open(&self, env: &Envelope, points: u64) -> Result<Vec<Point>, PsiError> {
        let ctx = self.context(env.step, env.from, self.me, points);
        self.channel(env.from).open(&ctx, &env.chunks)
    }

    /// Seals `points` for `to` at `step`.
    pub(crate) fn seal(&self, step: Step, to: u32, points: &[Point]) -> Envelope {
        let ctx = self.context(step, self.me, to, points.len() as u64);
        #[cfg(test)]
        let points = &super::runner::tests::on_seal(self.me, step, points);
        self.channel(to).seal(&ctx, points)
    }

    /// Blinds a list received from `from` at `step` with `key`.
    pub(crate) fn blind(
        &self,
        step: Step,
        from: u32,
        points: &[Point],
        key: &BlindingKey,
    ) -> Result<Vec<Point>, PsiError> {
        group::par_blind(points, key, self.threads).map_err(|e| PsiError::BadPoint {
            step,
            from,
            index: e.index,
        })
    }
}

/// Refuses a list that is not strictly increasing.
pub(crate) fn strictly_increasing(list: &[Point], step: Step, from: u32) -> Result<(), PsiError> {
    if list.windows(2).all(|w| w[0] < w[1]) {
        Ok(())
    } else {
        Err(PsiError::Unsorted { step, from })
    }
}

/// Begins a run: draws the job's keys, shuffles the party's ids and masks
/// them for the ring (`r·H(x)`, the bulk of this party's hashing), and says
/// hello. `ids` must be distinct; `threads` bounds the worker threads.
pub fn start<I: AsRef<[u8]> + Sync, R: CryptoRng + ?Sized>(
    params: Arc<PsiParams>,
    me: u32,
    ids: &[I],
    threads: usize,
    rng: &mut R,
) -> Result<(Hello, Joining), PsiError> {
    if me >= params.parties {
        return Err(PsiError::InvalidParams(format!(
            "party {me} is not among the {} parties",
            params.parties
        )));
    }
    if ids.len() as u64 > MAX_SET {
        return Err(PsiError::InvalidParams(format!(
            "{} ids, at most {MAX_SET} allowed",
            ids.len()
        )));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    if let Some(index) = ids.iter().position(|id| !seen.insert(id.as_ref())) {
        return Err(PsiError::DuplicateId { index });
    }
    drop(seen);
    let mut seal_bytes = [0u8; 32];
    rng.fill_bytes(&mut seal_bytes);
    let keys = Keys {
        mask: BlindingKey::random(rng),
        link: BlindingKey::random(rng),
        compare: BlindingKey::random(rng),
        seal: StaticSecret::from(seal_bytes),
    };
    zeroize::Zeroize::zeroize(&mut seal_bytes);
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.shuffle(rng);
    let shuffled: Vec<&[u8]> = order.iter().map(|&i| ids[i].as_ref()).collect();
    let masked = group::par_hash_and_blind(&params.tag(), &shuffled, &keys.mask, threads);
    let hello = Hello {
        seal_key: PublicKey::from(&keys.seal).to_bytes(),
        set_size: ids.len() as u64,
    };
    let core = Core {
        params,
        me,
        threads: threads.max(1),
        keys,
        order,
        sizes: Vec::new(),
        channels: Vec::new(),
    };
    Ok((hello, Joining { core, masked }))
}

/// Said hello; waits for the roster.
pub struct Joining {
    core: Core,
    masked: Vec<Point>,
}

impl Joining {
    /// Takes the roster: opens a channel to every other party and sends the
    /// masked list to the successor (`link-0`).
    pub fn receive_roster(mut self, roster: Roster) -> Result<(Envelope, Ring), PsiError> {
        let core = &mut self.core;
        let n = core.params.parties as usize;
        let bad = |reason: String| PsiError::BadRelay {
            what: "roster",
            reason,
        };
        if roster.seal_keys.len() != n || roster.set_sizes.len() != n {
            return Err(bad(format!(
                "it lists {} keys, {n} parties",
                roster.seal_keys.len()
            )));
        }
        let me = core.me as usize;
        if roster.set_sizes[me] != self.masked.len() as u64
            || roster.seal_keys[me] != PublicKey::from(&core.keys.seal).to_bytes()
        {
            return Err(bad("it misstates this party's key or set size".into()));
        }
        if let Some(p) = roster.set_sizes.iter().position(|&s| s > MAX_SET) {
            return Err(bad(format!("party {p}'s set is too large")));
        }
        core.channels = (0..n)
            .map(|p| {
                (p != me)
                    .then(|| {
                        let key = PublicKey::from(roster.seal_keys[p]);
                        Channel::new(&core.keys.seal, &key, p as u32)
                    })
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        core.sizes = roster.set_sizes;
        let out = core.seal(Step::Link(0), core.params.succ(core.me), &self.masked);
        let ring = Ring {
            core: self.core,
            expected: Step::Link(0),
            linked: Vec::new(),
            early: Vec::new(),
        };
        Ok((out, ring))
    }
}

/// In one of the two ring passes: takes the predecessor's list, blinds it
/// and passes it on.
pub struct Ring {
    core: Core,
    expected: Step,
    /// `F(x)` of the party's own ids in its secret order, once back.
    linked: Vec<Point>,
    /// The label holder's complete lists that came in before its own
    /// ring finished (partners run at their own pace).
    early: Vec<Envelope>,
}

/// Where a ring step leads.
pub enum RingNext {
    /// Still in the ring, with the list to pass on (none when the label
    /// holder only kept an early complete list).
    Ring(Vec<Envelope>, Ring),
    /// A partner completed the list it sends to the label holder.
    Partner(Envelope, AwaitingVerdict),
    /// The label holder completed its list: collecting, or decided.
    Comparer(CompareNext),
}

impl Ring {
    /// Handles the predecessor's list for the current step.
    pub fn handle(self, env: Envelope) -> Result<RingNext, PsiError> {
        let Ring {
            core,
            expected,
            linked,
            mut early,
        } = self;
        let params = core.params.clone();
        let (me, n) = (core.me, params.parties);
        let pred = params.pred(me);
        if me == LABEL_HOLDER
            && env.step == Step::Compare(n - 1)
            && env.to == me
            && (1..n).contains(&env.from)
            && early.iter().all(|e| e.from != env.from)
        {
            early.push(env);
            let ring = Ring {
                core,
                expected,
                linked,
                early,
            };
            return Ok(RingNext::Ring(Vec::new(), ring));
        }
        core.expect(&env, expected, pred)?;
        match expected {
            Step::Link(k) => {
                let owner = params.owner(pred, k);
                let list = core.open(&env, core.sizes[owner as usize])?;
                if owner != me {
                    let next = core.blind(expected, pred, &list, &core.keys.link)?;
                    let out = core.seal(Step::Link(k + 1), params.succ(me), &next);
                    return Ok(RingNext::Ring(
                        vec![out],
                        Ring {
                            core,
                            expected: Step::Link(k + 1),
                            linked,
                            early,
                        },
                    ));
                }
                // The party's own list is back: F(x) = (a/r)·(r·Π a_j·H(x)).
                let unmask = core.keys.mask.inverse().then(&core.keys.link);
                let linked = core.blind(expected, pred, &list, &unmask)?;
                let mut compared = core.blind(expected, pred, &linked, &core.keys.compare)?;
                compared.sort_unstable();
                let out = core.seal(Step::Compare(0), params.succ(me), &compared);
                Ok(RingNext::Ring(
                    vec![out],
                    Ring {
                        core,
                        expected: Step::Compare(0),
                        linked,
                        early,
                    },
                ))
            }
            Step::Compare(k) => {
                let owner = params.owner(pred, k);
                let list = core.open(&env, core.sizes[owner as usize])?;
                let mut next = core.blind(expected, pred, &list, &core.keys.compare)?;
                next.sort_unstable();
                if k + 2 < n {
                    let out = core.seal(Step::Compare(k + 1), params.succ(me), &next);
                    let ring = Ring {
                        core,
                        expected: Step::Compare(k + 1),
                        linked,
                        early,
                    };
                    Ok(RingNext::Ring(vec![out], ring))
                } else if me == LABEL_HOLDER {
                    strictly_increasing(&next, expected, pred)?;
                    let mut comparer =
                        CompareNext::Waiting(Comparer::new(core, linked, owner, next));
                    for env in early {
                        if let CompareNext::Waiting(c) = comparer {
                            comparer = c.handle(env)?;
                        }
                    }
                    Ok(RingNext::Comparer(comparer))
                } else {
                    let out = core.seal(Step::Compare(n - 1), LABEL_HOLDER, &next);
                    Ok(RingNext::Partner(out, AwaitingVerdict::new(core, linked)))
                }
            }
            other => unreachable!("the ring only expects link and compare steps, not {other}"),
        }
    }

    /// The step this party waits for.
    pub fn expected(&self) -> Step {
        self.expected
    }
}

/// What a party answers to one message.
#[derive(Debug, Default)]
pub struct Reply {
    /// Lists to relay.
    pub envelopes: Vec<Envelope>,
    /// The label holder's verdict, for the coordinator.
    pub verdict: Option<Verdict>,
}

/// Any state of a party, for a transport that dispatches what arrives.
pub enum Party {
    /// Waiting for the roster.
    Joining(Joining),
    /// In a ring pass.
    Ring(Ring),
    /// The label holder collecting complete lists.
    Comparer(Comparer),
    /// A partner waiting for the verdict.
    AwaitingVerdict(AwaitingVerdict),
    /// Unblinding or waiting for the intersection.
    Revealing(Revealing),
    /// Done.
    Finished(Outcome),
}

impl std::fmt::Debug for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Party::Joining(_) => f.write_str("Joining"),
            Party::Ring(r) => write!(f, "Ring({})", r.expected),
            Party::Comparer(_) => f.write_str("Comparer"),
            Party::AwaitingVerdict(_) => f.write_str("AwaitingVerdict"),
            Party::Revealing(_) => f.write_str("Revealing"),
            Party::Finished(o) => write!(f, "Finished({o:?})"),
        }
    }
}

impl Party {
    /// Takes the roster (only while joining).
    pub fn on_roster(self, roster: Roster) -> Result<(Party, Vec<Envelope>), PsiError> {
        match self {
            Party::Joining(j) => {
                let (out, ring) = j.receive_roster(roster)?;
                Ok((Party::Ring(ring), vec![out]))
            }
            _ => Err(PsiError::BadRelay {
                what: "roster",
                reason: "it arrived twice".into(),
            }),
        }
    }

    /// Takes a relayed list.
    pub fn on_envelope(self, env: Envelope) -> Result<(Party, Reply), PsiError> {
        let reply = |envelopes| Reply {
            envelopes,
            verdict: None,
        };
        let compared = |next| match next {
            CompareNext::Waiting(c) => (Party::Comparer(c), Reply::default()),
            CompareNext::Decided {
                verdict,
                envelopes,
                next,
            } => (
                next,
                Reply {
                    envelopes,
                    verdict: Some(verdict),
                },
            ),
        };
        match self {
            Party::Ring(ring) => Ok(match ring.handle(env)? {
                RingNext::Ring(out, ring) => (Party::Ring(ring), reply(out)),
                RingNext::Partner(out, wait) => (Party::AwaitingVerdict(wait), reply(vec![out])),
                RingNext::Comparer(next) => compared(next),
            }),
            Party::Comparer(c) => Ok(compared(c.handle(env)?)),
            Party::Revealing(r) => {
                let (envelopes, next) = r.handle(env)?;
                Ok((next, reply(envelopes)))
            }
            Party::Joining(_) | Party::AwaitingVerdict(_) | Party::Finished(_) => {
                Err(PsiError::Unexpected {
                    step: env.step,
                    from: env.from,
                    to: env.to,
                })
            }
        }
    }

    /// Takes the verdict the coordinator forwards (partners only).
    pub fn on_verdict(self, verdict: Verdict) -> Result<Party, PsiError> {
        match self {
            Party::AwaitingVerdict(wait) => wait.receive(verdict),
            _ => Err(PsiError::BadRelay {
                what: "verdict",
                reason: "it arrived out of turn".into(),
            }),
        }
    }

    /// The outcome, once finished.
    pub fn outcome(&self) -> Option<&Outcome> {
        match self {
            Party::Finished(o) => Some(o),
            _ => None,
        }
    }
}
