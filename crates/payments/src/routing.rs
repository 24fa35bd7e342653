//! Which connector pays: rules from configuration first (currency, country, amount range,
//! account kind), then among the eligible ones the best by recent success rate, then by cost,
//! with a little exploration so a recovered connector gets traffic again, and a circuit
//! breaker per connector so a failing bank is skipped for a while. Every choice comes with its
//! reason, which the node records in the ledger with the decision.
//!
//! Time is passed in (`now_ms`, any monotonic millisecond clock) and exploration draws from a
//! value the caller gives (`draw`, uniform in 0..1_000_000), so the router is a plain value
//! that tests drive exactly.

use std::collections::VecDeque;

/// How many recent outcomes the success rate looks at, per connector.
pub const SUCCESS_WINDOW_LEN: usize = 100;
/// Outcomes a connector needs before its success rate counts (until then it ranks as 100%).
pub const SUCCESS_SAMPLES_MIN: usize = 10;
/// Success rates within this many parts per million rank as equal (then cost decides).
const SUCCESS_BUCKET_PPM: u32 = 20_000;

/// What kind of account a payment goes to or comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountKind {
    Iban,
    SortCode,
}

/// A connector's routing rule: every non-empty list must contain the payment's value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// ISO 4217 codes; empty: any.
    pub currencies: Vec<String>,
    /// ISO 3166-1 alpha-2 codes of the player's verified country; empty: any (and a player
    /// without a verified country matches only an empty list).
    pub countries: Vec<String>,
    pub amount_min: u64,
    /// 0: no maximum.
    pub amount_max: u64,
    /// Empty: any.
    pub accounts: Vec<AccountKind>,
}

/// What a payment through a connector costs the operator: a fixed fee plus basis points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub fixed_minor: u64,
    pub basis_points: u32,
}

impl Cost {
    pub fn of(&self, amount_minor: u64) -> u64 {
        let variable = u128::from(amount_minor) * u128::from(self.basis_points) / 10_000;
        self.fixed_minor
            .saturating_add(u64::try_from(variable).unwrap_or(u64::MAX))
    }
}

/// The circuit breaker's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failures_max: u32,
    /// How long an open breaker skips the connector before letting one payment try.
    pub open_ms: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failures_max: 5,
            open_ms: 30_000,
        }
    }
}

/// A payment to route.
#[derive(Clone, Copy, Debug)]
pub struct Payment<'a> {
    pub currency: &'a str,
    pub country: Option<&'a str>,
    pub amount_minor: u64,
    pub account: AccountKind,
}

/// The choice and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub connector: String,
    /// Short, for the ledger: "route:bank-a sr=98% cost=25", "route:bank-b explore".
    pub reason: String,
}

#[derive(Clone, Debug)]
struct Health {
    recent: VecDeque<bool>,
    consecutive_failures: u32,
    /// While `Some(t)` and now < t the connector is skipped; past t one payment may try.
    open_until_ms: Option<u64>,
}

impl Health {
    fn new() -> Health {
        Health {
            recent: VecDeque::with_capacity(SUCCESS_WINDOW_LEN),
            consecutive_failures: 0,
            open_until_ms: None,
        }
    }

    /// Success rate in parts per million (1_000_000 until there are enough samples).
    fn success_ppm(&self) -> u32 {
        if self.recent.len() < SUCCESS_SAMPLES_MIN {
            return 1_000_000;
        }
        let successes = self.recent.iter().filter(|ok| **ok).count() as u64;
        (successes * 1_000_000 / self.recent.len() as u64) as u32
    }
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    rule: Rule,
    cost: Cost,
    health: Health,
}

/// The connectors in configuration order, with their rules, costs and health.
#[derive(Clone, Debug)]
pub struct Router {
    entries: Vec<Entry>,
    breaker: BreakerConfig,
    /// Chance (parts per million) of sending a payment to a random eligible connector other
    /// than the best, so the success rate of the others stays current.
    explore_ppm: u32,
}

impl Router {
    pub fn new(breaker: BreakerConfig, explore_ppm: u32) -> Router {
        Router {
            entries: Vec::new(),
            breaker,
            explore_ppm: explore_ppm.min(1_000_000),
        }
    }

    pub fn add(&mut self, name: &str, rule: Rule, cost: Cost) {
        self.entries.push(Entry {
            name: name.to_string(),
            rule,
            cost,
            health: Health::new(),
        });
    }

    /// The best eligible connector not in `exclude` (the ones already tried), or None.
    pub fn route(
        &self,
        payment: &Payment<'_>,
        exclude: &[&str],
        now_ms: u64,
        draw: u32,
    ) -> Option<Route> {
        let mut eligible: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|entry| !exclude.contains(&entry.name.as_str()))
            .filter(|entry| matches(&entry.rule, payment))
            .filter(|entry| {
                entry
                    .health
                    .open_until_ms
                    .is_none_or(|until| now_ms >= until)
            })
            .collect();
        // Best first: success-rate bucket, then cost, then configuration order (stable sort).
        eligible.sort_by_key(|entry| {
            let bucket = entry.health.success_ppm() / SUCCESS_BUCKET_PPM;
            (
                std::cmp::Reverse(bucket),
                entry.cost.of(payment.amount_minor),
            )
        });
        let explore = eligible.len() > 1 && draw % 1_000_000 < self.explore_ppm;
        let chosen = match explore {
            true => eligible[1 + (draw as usize / 7) % (eligible.len() - 1)],
            false => *eligible.first()?,
        };
        let reason = match explore {
            true => format!("route:{} explore", chosen.name),
            false => format!(
                "route:{} sr={}% cost={}",
                chosen.name,
                chosen.health.success_ppm() / 10_000,
                chosen.cost.of(payment.amount_minor)
            ),
        };
        Some(Route {
            connector: chosen.name.clone(),
            reason,
        })
    }

    /// Records how a request to `connector` went: `true` for any answer the bank gave
    /// (including a decline), `false` for no answer or an error that was the bank's.
    pub fn record(&mut self, connector: &str, ok: bool, now_ms: u64) {
        let breaker = self.breaker;
        let Some(entry) = self
            .entries
            .iter_mut()
            .find(|entry| entry.name == connector)
        else {
            return;
        };
        let health = &mut entry.health;
        if health.recent.len() == SUCCESS_WINDOW_LEN {
            health.recent.pop_front();
        }
        health.recent.push_back(ok);
        if ok {
            health.consecutive_failures = 0;
            health.open_until_ms = None;
            return;
        }
        health.consecutive_failures += 1;
        let half_open_failed = health.open_until_ms.is_some_and(|until| now_ms >= until);
        if health.consecutive_failures >= breaker.failures_max || half_open_failed {
            health.open_until_ms = Some(now_ms.saturating_add(breaker.open_ms));
        }
    }

    /// Whether the connector's breaker is open now (for metrics and status).
    pub fn is_open(&self, connector: &str, now_ms: u64) -> bool {
        self.entries
            .iter()
            .find(|entry| entry.name == connector)
            .and_then(|entry| entry.health.open_until_ms)
            .is_some_and(|until| now_ms < until)
    }
}

fn matches(rule: &Rule, payment: &Payment<'_>) -> bool {
    let listed = |list: &[String], value: Option<&str>| {
        list.is_empty() || value.is_some_and(|value| list.iter().any(|item| item == value))
    };
    listed(&rule.currencies, Some(payment.currency))
        && listed(&rule.countries, payment.country)
        && payment.amount_minor >= rule.amount_min
        && (rule.amount_max == 0 || payment.amount_minor <= rule.amount_max)
        && (rule.accounts.is_empty() || rule.accounts.contains(&payment.account))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(currency: &str, amount_minor: u64) -> Payment<'_> {
        Payment {
            currency,
            country: Some("GB"),
            amount_minor,
            account: AccountKind::Iban,
        }
    }

    fn router() -> Router {
        let mut router = Router::new(BreakerConfig::default(), 0);
        let eur = Rule {
            currencies: vec!["EUR".into()],
            ..Rule::default()
        };
        router.add(
            "cheap",
            eur.clone(),
            Cost {
                fixed_minor: 10,
                basis_points: 0,
            },
        );
        router.add(
            "dear",
            eur,
            Cost {
                fixed_minor: 50,
                basis_points: 0,
            },
        );
        let gbp = Rule {
            currencies: vec!["GBP".into()],
            amount_max: 1_000,
            accounts: vec![AccountKind::SortCode],
            ..Rule::default()
        };
        router.add("uk", gbp, Cost::default());
        router
    }

    #[test]
    fn rules_decide_eligibility_and_cost_decides_between_equals() {
        let router = router();
        let route = router.route(&payment("EUR", 500), &[], 0, 0).unwrap();
        assert_eq!(route.connector, "cheap");
        assert_eq!(route.reason, "route:cheap sr=100% cost=10");
        let mut uk = payment("GBP", 900);
        assert!(
            router.route(&uk, &[], 0, 0).is_none(),
            "an IBAN does not go through uk"
        );
        uk.account = AccountKind::SortCode;
        assert_eq!(router.route(&uk, &[], 0, 0).unwrap().connector, "uk");
        uk.amount_minor = 1_001;
        assert!(
            router.route(&uk, &[], 0, 0).is_none(),
            "past the amount range"
        );
        let tried = router
            .route(&payment("EUR", 500), &["cheap"], 0, 0)
            .unwrap();
        assert_eq!(tried.connector, "dear", "fail-over skips what was tried");
    }

    #[test]
    fn a_falling_success_rate_moves_traffic_to_the_next_connector() {
        let mut router = router();
        for at in 0..20 {
            router.record("cheap", at % 2 == 0, at);
        }
        let route = router.route(&payment("EUR", 500), &[], 100, 0).unwrap();
        assert_eq!(route.connector, "dear");
    }

    #[test]
    fn the_breaker_opens_after_consecutive_failures_and_lets_one_try_after_a_while() {
        let mut router = router();
        for at in 0..5 {
            router.record("cheap", false, at);
        }
        assert!(router.is_open("cheap", 10));
        assert_eq!(
            router
                .route(&payment("EUR", 5), &[], 10, 0)
                .unwrap()
                .connector,
            "dear"
        );
        // Half open: it may be tried; a failure opens it again at once.
        let later = 5 + 30_000;
        assert!(!router.is_open("cheap", later));
        router.record("cheap", false, later);
        assert!(router.is_open("cheap", later + 1));
        router.record("cheap", true, later + 40_000);
        assert!(!router.is_open("cheap", later + 40_001));
    }

    #[test]
    fn exploration_sends_a_share_to_the_others() {
        let mut router = router();
        router.explore_ppm = 50_000;
        let explored = (0..1_000u32)
            .map(|i| router.route(&payment("EUR", 5), &[], 0, i * 1_000).unwrap())
            .filter(|route| route.connector == "dear")
            .count();
        assert_eq!(explored, 50);
    }

    #[test]
    fn costs_in_basis_points_do_not_overflow() {
        let cost = Cost {
            fixed_minor: 1,
            basis_points: 10_000,
        };
        assert_eq!(cost.of(u64::MAX), u64::MAX);
        assert_eq!(
            Cost {
                fixed_minor: 0,
                basis_points: 150
            }
            .of(10_000),
            150
        );
    }
}
