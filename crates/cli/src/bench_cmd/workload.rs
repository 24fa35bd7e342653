//! TigerBeetle's benchmark workload (0.17.8, `src/tigerbeetle/benchmark_load.zig`), rebuilt
//! from its description, batch by batch so it can be generated inside the timed window:
//!
//! - accounts `1..=N` (its default `--id-order=sequential`), without balance limits;
//! - transfer ids ascending from 1; amounts exponential with mean 10,000, plus 1;
//! - accounts are split into a "hot" world (the first `hot_count`) and a "cold" one (the
//!   rest). The debit account comes from the hot world with probability `hot_percent`, else
//!   from the cold one; the credit account always from the cold one, and when it draws the
//!   debit account it takes the next one (modulo N);
//! - inside a world, indices are uniform or shuffled zipfian (theta 0.99).
//!
//! `uniform` is TigerBeetle's default, `zipf` its `--account-distribution=zipfian`, `hot` its
//! `--account-count-hot=1 --transfer-hot-percent=100` (every transfer debits account 1).
//!
//! Every id carries `id_high` in its upper 64 bits, so runs against one long-lived server do
//! not collide; with `id_high = 0` the ids are exactly TigerBeetle's.

use anyhow::{bail, Context};
use croupier_core::{
    AccountFlags, AccountKind, LedgerCode, NewAccount, NewTransfer, TransferFlags,
};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution as _, Exp, StandardUniform, Uniform};

use super::AccountDistribution;

/// Mean transfer amount (TigerBeetle draws amounts from an exponential with this mean).
const AMOUNT_MEAN: f64 = 10_000.0;
/// TigerBeetle's zipfian skew (YCSB's default).
pub const ZIPF_THETA: f64 = 0.99;
/// Tries at finding a multiplier coprime to the account count (the shuffle of the zipf ranks);
/// a random number is coprime to N with probability 6/π² or better, so this never runs out.
const COPRIME_TRIES_MAX: u32 = 100_000;

/// The ledger every benchmark account and transfer is on.
pub fn ledger_code() -> LedgerCode {
    LedgerCode::parse("EUR").expect("valid ledger code")
}

/// Shuffled zipfian indices in `0..items`: Gray et al.'s generator ("Quickly Generating
/// Billion-Record Synthetic Databases", SIGMOD 1994, as in YCSB) gives ranks with rank 0 the
/// most likely; multiplying by a number coprime to `items` (mod `items`) is a bijection that
/// spreads the hot ranks over the whole id space, as TigerBeetle's `ZipfianShuffled` does.
#[derive(Debug, Clone)]
pub struct Zipfian {
    items: u64,
    theta: f64,
    zeta_n: f64,
    alpha: f64,
    eta: f64,
    multiplier: u64,
}

impl Zipfian {
    pub fn new(items: u64, theta: f64, rng: &mut ChaCha8Rng) -> anyhow::Result<Self> {
        if items == 0 || !(theta > 0.0 && theta < 1.0) {
            bail!("zipfian: need items > 0 and 0 < theta < 1, got {items} and {theta}");
        }
        let zeta = |n: u64| (1..=n).map(|i| (1.0 / i as f64).powf(theta)).sum::<f64>();
        let zeta_n = zeta(items);
        let n = items as f64;
        Ok(Zipfian {
            items,
            theta,
            zeta_n,
            alpha: 1.0 / (1.0 - theta),
            eta: (1.0 - (2.0 / n).powf(1.0 - theta)) / (1.0 - zeta(2) / zeta_n),
            multiplier: coprime_multiplier(items, rng)?,
        })
    }

    /// The unshuffled rank: 0 is the most likely.
    fn rank(&self, rng: &mut ChaCha8Rng) -> u64 {
        let u: f64 = StandardUniform.sample(rng);
        let uz = u * self.zeta_n;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1;
        }
        let rank = self.items as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha);
        (rank as u64).min(self.items - 1)
    }

    pub fn sample(&self, rng: &mut ChaCha8Rng) -> u64 {
        let rank = self.rank(rng) as u128;
        (rank * self.multiplier as u128 % self.items as u128) as u64
    }
}

fn coprime_multiplier(items: u64, rng: &mut ChaCha8Rng) -> anyhow::Result<u64> {
    let range = Uniform::new_inclusive(1, items).context("multiplier range")?;
    for _ in 0..COPRIME_TRIES_MAX {
        let candidate = range.sample(rng);
        if gcd(candidate, items) == 1 {
            return Ok(candidate);
        }
    }
    bail!("no multiplier coprime to {items} found in {COPRIME_TRIES_MAX} tries")
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Indices in `0..count` of one world of accounts.
#[derive(Debug, Clone)]
enum IndexGenerator {
    Uniform(Uniform<u64>),
    Zipfian(Zipfian),
}

impl IndexGenerator {
    fn new(zipfian: bool, count: u64, rng: &mut ChaCha8Rng) -> anyhow::Result<Option<Self>> {
        if count == 0 {
            return Ok(None);
        }
        Ok(Some(if zipfian {
            IndexGenerator::Zipfian(Zipfian::new(count, ZIPF_THETA, rng)?)
        } else {
            IndexGenerator::Uniform(Uniform::new(0, count).context("uniform range")?)
        }))
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> u64 {
        match self {
            IndexGenerator::Uniform(uniform) => uniform.sample(rng),
            IndexGenerator::Zipfian(zipfian) => zipfian.sample(rng),
        }
    }
}

/// Picks (debit, credit) account indices in `0..accounts`, distinct.
#[derive(Debug, Clone)]
pub struct AccountPicker {
    accounts: u64,
    hot_count: u64,
    hot_percent: u32,
    hot: Option<IndexGenerator>,
    cold: Option<IndexGenerator>,
}

impl AccountPicker {
    pub fn new(
        accounts: u64,
        distribution: AccountDistribution,
        rng: &mut ChaCha8Rng,
    ) -> anyhow::Result<Self> {
        if accounts < 2 {
            bail!("need at least two accounts, got {accounts}");
        }
        let (zipfian, hot_count, hot_percent) = match distribution {
            AccountDistribution::Uniform => (false, 0, 0),
            AccountDistribution::Zipf => (true, 0, 0),
            AccountDistribution::Hot => (false, 1, 100),
        };
        Ok(AccountPicker {
            accounts,
            hot_count,
            hot_percent,
            cold: IndexGenerator::new(zipfian, accounts - hot_count, rng)?,
            hot: IndexGenerator::new(zipfian, hot_count, rng)?,
        })
    }

    /// An index from the hot world (when asked and it exists) or the cold one (when it exists).
    fn index(&self, want_hot: bool, rng: &mut ChaCha8Rng) -> u64 {
        match (&self.hot, &self.cold) {
            (Some(hot), _) if want_hot => hot.sample(rng),
            (_, Some(cold)) => self.hot_count + cold.sample(rng),
            (Some(hot), None) => hot.sample(rng),
            (None, None) => unreachable!("AccountPicker::new refuses fewer than two accounts"),
        }
    }

    pub fn pair(&self, rng: &mut ChaCha8Rng) -> (u64, u64) {
        let debit_hot = self.hot_percent > 0 && (rng.next_u32() % 100) < self.hot_percent;
        let debit = self.index(debit_hot, rng);
        let mut credit = self.index(false, rng);
        if credit == debit {
            credit = (credit + 1) % self.accounts;
        }
        debug_assert!(debit < self.accounts && credit < self.accounts && debit != credit);
        (debit, credit)
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadConfig {
    pub accounts: u64,
    pub transfers: u64,
    pub distribution: AccountDistribution,
    pub seed: u64,
    /// Upper 64 bits of every account and transfer id.
    pub id_high: u64,
}

/// The transfers of a run, handed out batch by batch in id order.
pub struct Workload {
    config: WorkloadConfig,
    rng: ChaCha8Rng,
    picker: AccountPicker,
    amounts: Exp<f64>,
    generated: u64,
}

impl Workload {
    pub fn new(config: WorkloadConfig) -> anyhow::Result<Self> {
        if config.id_high >> 32 == u32::MAX as u64 {
            bail!(
                "id high part {:#x} would give reserved ids (top 32 bits all ones)",
                config.id_high
            );
        }
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let picker = AccountPicker::new(config.accounts, config.distribution, &mut rng)?;
        Ok(Workload {
            config,
            rng,
            picker,
            amounts: Exp::new(1.0 / AMOUNT_MEAN).context("amount distribution")?,
            generated: 0,
        })
    }

    fn id(&self, index: u64) -> u128 {
        (u128::from(self.config.id_high) << 64) | u128::from(index + 1)
    }

    /// Every benchmark account: no balance limits, as in TigerBeetle's benchmark.
    pub fn accounts(&self) -> Vec<NewAccount> {
        (0..self.config.accounts)
            .map(|index| NewAccount {
                id: self.id(index),
                ledger: ledger_code(),
                kind: AccountKind::System,
                flags: AccountFlags::empty(),
            })
            .collect()
    }

    /// Up to `batch_max` further transfers (fewer at the end, none once all are out).
    pub fn next_batch(&mut self, batch_max: usize) -> Vec<NewTransfer> {
        let count = (self.config.transfers - self.generated).min(batch_max as u64);
        let ledger = ledger_code();
        let mut batch = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let (debit, credit) = self.picker.pair(&mut self.rng);
            let amount: f64 = self.amounts.sample(&mut self.rng);
            batch.push(NewTransfer {
                id: self.id(self.generated),
                debit_account_id: self.id(debit),
                credit_account_id: self.id(credit),
                // Truncated then plus one (never 0), as TigerBeetle does.
                amount: (amount as u64).saturating_add(1),
                ledger,
                flags: TransferFlags::empty(),
                pending_id: 0,
                timeout_s: 0,
            });
            self.generated += 1;
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    #[test]
    fn every_distribution_picks_two_distinct_existing_accounts() {
        let mut rng = rng();
        for distribution in [
            AccountDistribution::Uniform,
            AccountDistribution::Zipf,
            AccountDistribution::Hot,
        ] {
            for accounts in [2, 3, 10] {
                let picker = AccountPicker::new(accounts, distribution, &mut rng).unwrap();
                for _ in 0..10_000 {
                    let (debit, credit) = picker.pair(&mut rng);
                    assert!(
                        debit < accounts && credit < accounts && debit != credit,
                        "{distribution:?}: {debit} {credit}"
                    );
                }
            }
        }
    }

    #[test]
    fn hot_debits_the_first_account_and_credits_the_others_uniformly() {
        let mut rng = rng();
        let picker = AccountPicker::new(10, AccountDistribution::Hot, &mut rng).unwrap();
        let mut credits = [0u32; 10];
        for _ in 0..90_000 {
            let (debit, credit) = picker.pair(&mut rng);
            assert_eq!(debit, 0);
            credits[credit as usize] += 1;
        }
        assert_eq!(credits[0], 0);
        assert!(
            credits[1..].iter().all(|&n| (9_000..11_000).contains(&n)),
            "{credits:?}"
        );
    }

    #[test]
    fn zipf_ranks_follow_theta_and_the_shuffle_spreads_them() {
        let mut rng = rng();
        let zipf = Zipfian::new(10_000, ZIPF_THETA, &mut rng).unwrap();
        let draws = 200_000;
        let mut counts = vec![0u32; 10_000];
        for _ in 0..draws {
            counts[zipf.rank(&mut rng) as usize] += 1;
        }
        // P(rank 0) = 1 / zeta(10000, 0.99) ≈ 0.098; P(rank 1) = 2^-0.99 of that.
        let p0 = counts[0] as f64 / draws as f64;
        assert!((0.09..0.106).contains(&p0), "p0 {p0}");
        let ratio = counts[1] as f64 / counts[0] as f64;
        assert!((0.46..0.54).contains(&ratio), "ratio {ratio}");
        // Shuffled: the hottest index is rank 0 times the multiplier, and indices stay in range.
        let mut shuffled = vec![0u32; 10_000];
        for _ in 0..draws {
            shuffled[zipf.sample(&mut rng) as usize] += 1;
        }
        let hottest = (0..10_000).max_by_key(|&i| shuffled[i]).unwrap();
        assert_eq!(
            hottest as u64, 0,
            "rank 0 maps to index 0 under any multiplier"
        );
        let second = zipf.multiplier % 10_000;
        assert!(
            shuffled[second as usize] > draws / 30,
            "rank 1 lands on {second}"
        );
    }

    #[test]
    fn the_multiplier_is_coprime_so_the_shuffle_is_a_bijection() {
        let mut rng = rng();
        for items in [1u64, 2, 12, 97, 10_000] {
            let zipf = Zipfian::new(items, ZIPF_THETA, &mut rng).unwrap();
            let mut seen = vec![false; items as usize];
            for rank in 0..items as u128 {
                seen[(rank * zipf.multiplier as u128 % items as u128) as usize] = true;
            }
            assert!(seen.iter().all(|&s| s), "items {items}");
        }
    }

    #[test]
    fn batches_are_sequential_ids_under_the_high_part_and_stop_at_the_total() {
        let mut workload = Workload::new(WorkloadConfig {
            accounts: 100,
            transfers: 10,
            distribution: AccountDistribution::Zipf,
            seed: 42,
            id_high: 0xABCD,
        })
        .unwrap();
        let accounts = workload.accounts();
        assert_eq!(accounts[0].id, (0xABCD << 64) | 1);
        assert_eq!(accounts[99].id, (0xABCD << 64) | 100);
        let first = workload.next_batch(4);
        let rest = workload.next_batch(8189);
        assert_eq!((first.len(), rest.len()), (4, 6));
        assert!(workload.next_batch(8189).is_empty());
        let ids: Vec<u128> = first
            .iter()
            .chain(&rest)
            .map(|t| t.id & u64::MAX as u128)
            .collect();
        assert_eq!(ids, (1..=10).collect::<Vec<u128>>());
        assert!(first
            .iter()
            .all(|t| t.amount >= 1 && t.debit_account_id >> 64 == 0xABCD));
    }

    #[test]
    fn reserved_high_parts_are_refused() {
        let config = WorkloadConfig {
            accounts: 2,
            transfers: 1,
            distribution: AccountDistribution::Uniform,
            seed: 1,
            id_high: u64::MAX,
        };
        assert!(Workload::new(config).is_err());
    }
}
