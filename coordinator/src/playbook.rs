//! Segment names and the 4P marketing playbook of seed 001. A segment's
//! profile says, per feature, whether its centroid lies above ("high") or
//! below ("low") the pooled mean; the profile is matched to the seed's five
//! customer groups, weighting each disagreeing feature by its AHP weight.
//! Customers without a purchase are further split into the seed's four
//! refined behavioural groups, each with its own recommended action.

use serde::Serialize;

/// High or low against the pooled mean, per feature R, F, M, L, T.
pub type Profile = [bool; 5];

/// One of seed 001's customer groups with its 4P strategy.
#[derive(Debug, Clone, Copy)]
pub struct Group {
    /// Name, as reported.
    pub name: &'static str,
    /// The group's defining profile (true = high).
    pub profile: Profile,
    /// What the seed says the group needs.
    pub summary: &'static str,
    /// The 4P playbook.
    pub playbook: Playbook,
}

/// Product, price, channel and promotion advice for one segment.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Playbook {
    /// What to offer.
    pub product: &'static str,
    /// How to price it.
    pub price: &'static str,
    /// Through which channel.
    pub channel: &'static str,
    /// How to promote it.
    pub promotion: &'static str,
}

impl Playbook {
    /// The advice as `result.json` carries it.
    pub fn owned(&self) -> fedseg_common::result::Playbook {
        fedseg_common::result::Playbook {
            product: self.product.into(),
            price: self.price.into(),
            channel: self.channel.into(),
            promotion: self.promotion.into(),
        }
    }
}

const H: bool = true;
const L: bool = false;

/// The five groups of seed 001 (section 3.2), in order of precedence when
/// two match equally well.
pub const GROUPS: [Group; 5] = [
    Group {
        name: "high-value",
        profile: [L, H, H, H, H],
        summary: "recent, frequent, high-spending, long-standing and engaged: loyalty to be maintained",
        playbook: Playbook {
            product: "dedicated wealth-management portfolios and exclusive products for major customers",
            price: "relationship pricing with preferential rates negotiated per customer",
            channel: "dedicated relationship manager and VIP service, face to face and by phone",
            promotion: "care marketing: VIP events and anniversary, payday and birthday offers",
        },
    },
    Group {
        name: "important-value",
        profile: [L, H, H, H, L],
        summary: "valuable and loyal buyers who rarely interact: interaction to be strengthened",
        playbook: Playbook {
            product: "personalised product combinations built on the customer's actual needs",
            price: "customer-driven pricing with differentiated rates for larger commitments",
            channel: "an exclusive financial advisor who makes contact proactively",
            promotion: "experiential marketing and a regular push of professional content",
        },
    },
    Group {
        name: "growth",
        profile: [L, L, L, L, L],
        summary: "recent customers with few purchases so far: great potential to be cultivated",
        playbook: Playbook {
            product: "entry-level, low-risk products (savings, bank cards) recommended from first interests",
            price: "introductory rates and fee waivers on the first products",
            channel: "mobile app and online banking onboarding, with a branch welcome",
            promotion: "an onboarding series and holiday coupons toward the second purchase",
        },
    },
    Group {
        name: "active",
        profile: [H, L, L, L, H],
        summary: "few transactions but many interactions: influence to be turned into business",
        playbook: Playbook {
            product: "low-risk products of the type the customer keeps looking at",
            price: "price discounts that turn engagement into a first transaction",
            channel: "online: app, online banking and partner platforms the customer already uses",
            promotion: "referral incentives and community content that use the customer's influence",
        },
    },
    Group {
        name: "general",
        profile: [H, L, L, L, L],
        summary: "lapsed, low-value and disengaged: stickiness to be activated",
        playbook: Playbook {
            product: "simple standard products for everyday needs",
            price: "holiday coupons and time-limited discounts",
            channel: "low-cost digital reach: SMS, app push and e-mail",
            promotion: "a reactivation campaign on the marketing calendar (brand, holiday and care dates)",
        },
    },
];

/// The seed's refined behavioural groups of customers without a purchase,
/// in the order the participants count them, with the recommended action.
pub const REFINED: [(&str, &str); 4] = [
    (
        "frequent inquiries without purchase",
        "recommend low-risk products of the same type and push price discounts",
    ),
    (
        "inquiries or saves without purchase",
        "analyse the focus of demand and decision pain points; push targeted product feature information",
    ),
    (
        "frequent searches without purchase",
        "recommend products by keyword similarity to what was searched",
    ),
    (
        "special-marketing customers",
        "combine online and offline channel placement and link advertising data to conversion data",
    ),
];

/// The group whose profile disagrees least with `profile`, each
/// disagreement weighted by the feature's AHP weight; ties go to the
/// earlier group.
pub fn closest_group(profile: &Profile, weights: &[f64]) -> &'static Group {
    let distance = |g: &Group| -> f64 {
        (0..5)
            .filter(|&j| g.profile[j] != profile[j])
            .map(|j| weights[j])
            .sum()
    };
    GROUPS
        .iter()
        .fold(None::<(&Group, f64)>, |best, g| {
            let d = distance(g);
            match best {
                Some((_, bd)) if bd <= d + 1e-12 => best,
                _ => Some((g, d)),
            }
        })
        .expect("GROUPS is not empty")
        .0
}

/// Segment names: each segment's group name, numbered from the second
/// segment that lands in the same group on.
pub fn names(groups: &[&Group]) -> Vec<String> {
    let mut seen = std::collections::HashMap::new();
    groups
        .iter()
        .map(|g| {
            let count = seen.entry(g.name).or_insert(0);
            *count += 1;
            if *count == 1 {
                g.name.to_string()
            } else {
                format!("{} {}", g.name, count)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_WEIGHTS: [f64; 5] = [0.438, 0.237, 0.186, 0.091, 0.048];

    #[test]
    fn every_defining_profile_names_its_own_group() {
        for g in &GROUPS {
            assert_eq!(closest_group(&g.profile, &SEED_WEIGHTS).name, g.name);
        }
    }

    #[test]
    fn near_misses_go_to_the_group_that_differs_on_the_least_weighty_feature() {
        // Recent, frequent, high spending, short tenure, engaged: differs from
        // high-value only on L (9.1%).
        assert_eq!(
            closest_group(&[L, H, H, L, H], &SEED_WEIGHTS).name,
            "high-value"
        );
        // Lapsed but frequent big spender: R disagrees with the valuable
        // groups (43.8%), F and M with "general" (42.3%): general wins.
        assert_eq!(
            closest_group(&[H, H, H, L, L], &SEED_WEIGHTS).name,
            "general"
        );
    }

    #[test]
    fn duplicate_groups_are_numbered() {
        let g = &GROUPS;
        assert_eq!(
            names(&[&g[2], &g[4], &g[2], &g[2]]),
            vec!["growth", "general", "growth 2", "growth 3"]
        );
    }
}
