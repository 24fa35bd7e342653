//! Punto banco baccarat: cards dealt without replacement from a full shoe of `decks` decks
//! each coup, the standard tableau, and bets on player, banker, tie and the pairs.
//!
//! Cards are ranks 0..13 (ace, 2..9, ten, jack, queen, king); a pair is two equal ranks, a
//! hand's total is the sum of card values (ace 1, 2..9 face value, ten and court cards 0)
//! modulo 10. The exact calculator enumerates every deal by rank with its multiplicity
//! (13^4 first-four deals, then third cards by value), so it is exact for the shoe, and the
//! simulator draws a card by weighting ranks by the cards left: no shuffle, no allocation.

use croupier_rng::{sample::below_u32, RngCore};
use serde::Deserialize;

use crate::exact::ratio;
use crate::table::{capped_return, check_header, check_within_cap, invalid, parse_toml, Number};
use crate::{DefinitionError, GameMath, ReturnDistribution};

const GAME: &str = "baccarat";
const RANKS: usize = 13;
const DECKS_MAX: u32 = 16;

/// Which outcome a bet wins on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wager {
    Player,
    Banker,
    Tie,
    PlayerPair,
    BankerPair,
}

impl Wager {
    fn parse(name: &str) -> Option<Wager> {
        Some(match name {
            "player" => Wager::Player,
            "banker" => Wager::Banker,
            "tie" => Wager::Tie,
            "player_pair" => Wager::PlayerPair,
            "banker_pair" => Wager::BankerPair,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct BaccaratBet {
    pub name: String,
    pub wins_on: Wager,
    /// Winnings n:1 in `RETURN_SCALE` units (0.95 → 9 500).
    pub pays_units: u64,
    pub push_on_tie: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Winner {
    Player,
    Banker,
    Tie,
}

/// Up to three cards, by rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hand {
    pub ranks: [u8; 3],
    pub len: u8,
}

impl Hand {
    fn push(&mut self, rank: u8) {
        self.ranks[self.len as usize] = rank;
        self.len += 1;
    }

    pub fn total(&self) -> u8 {
        self.ranks[..self.len as usize]
            .iter()
            .map(|&r| value(r))
            .sum::<u8>()
            % 10
    }

    pub fn is_pair(&self) -> bool {
        self.ranks[0] == self.ranks[1]
    }
}

/// One coup: both hands as dealt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coup {
    pub player: Hand,
    pub banker: Hand,
}

impl Coup {
    pub fn winner(&self) -> Winner {
        winner(self.player.total(), self.banker.total())
    }
}

#[derive(Debug, Clone)]
pub struct Baccarat {
    title: String,
    win_cap: u64,
    decks: u32,
    bets: Vec<BaccaratBet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaccarat {
    game: String,
    title: String,
    decks: u32,
    win_cap: u64,
    bets: Vec<RawBet>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBet {
    name: String,
    wins_on: String,
    pays: Number,
    push_on_tie: bool,
}

/// Card value of a rank: ace 1, two..nine face value, ten and court cards 0.
fn value(rank: u8) -> u8 {
    if rank < 9 {
        rank + 1
    } else {
        0
    }
}

fn winner(player: u8, banker: u8) -> Winner {
    match player.cmp(&banker) {
        std::cmp::Ordering::Greater => Winner::Player,
        std::cmp::Ordering::Less => Winner::Banker,
        std::cmp::Ordering::Equal => Winner::Tie,
    }
}

fn natural(total: u8) -> bool {
    total >= 8
}

/// The player draws on 0..=5 (when neither hand is a natural).
fn player_draws(player_total: u8) -> bool {
    player_total <= 5
}

/// The banker's tableau: on the player's third card value if the player drew, else the
/// banker draws on 0..=5 like the player.
fn banker_draws(banker_total: u8, player_third: Option<u8>) -> bool {
    match player_third {
        None => banker_total <= 5,
        Some(card) => match banker_total {
            0..=2 => true,
            3 => card != 8,
            4 => (2..=7).contains(&card),
            5 => (4..=7).contains(&card),
            6 => (6..=7).contains(&card),
            _ => false,
        },
    }
}

impl Baccarat {
    pub(crate) fn from_toml(text: &str) -> Result<Baccarat, DefinitionError> {
        let raw: RawBaccarat = parse_toml(GAME, text)?;
        check_header(GAME, &raw.game, raw.win_cap)?;
        if !(1..=DECKS_MAX).contains(&raw.decks) {
            return Err(invalid(
                GAME,
                "decks",
                format!("must be in 1..={DECKS_MAX}"),
            ));
        }
        if raw.bets.is_empty() {
            return Err(invalid(GAME, "bets", "at least one bet is needed"));
        }
        let bets = raw
            .bets
            .into_iter()
            .enumerate()
            .map(|(i, bet)| {
                let wins_on = Wager::parse(&bet.wins_on).ok_or_else(|| {
                    invalid(
                        GAME,
                        format!("bets[{i}].wins_on"),
                        "one of player, banker, tie, player_pair, banker_pair",
                    )
                })?;
                let pays_units = bet.pays.units().filter(|&u| u > 0).ok_or_else(|| {
                    invalid(
                        GAME,
                        format!("bets[{i}].pays"),
                        "a positive multiple with at most 4 decimals",
                    )
                })?;
                let return_units = pays_units.saturating_add(crate::RETURN_SCALE);
                check_within_cap(GAME, format!("bets[{i}].pays"), return_units, raw.win_cap)?;
                Ok(BaccaratBet {
                    name: bet.name,
                    wins_on,
                    pays_units,
                    push_on_tie: bet.push_on_tie,
                })
            })
            .collect::<Result<Vec<_>, DefinitionError>>()?;
        Ok(Baccarat {
            title: raw.title,
            win_cap: raw.win_cap,
            decks: raw.decks,
            bets,
        })
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    pub fn win_cap(&self) -> u64 {
        self.win_cap
    }

    pub fn decks(&self) -> u32 {
        self.decks
    }

    pub fn bets(&self) -> &[BaccaratBet] {
        &self.bets
    }

    /// Deals one coup from a full shoe.
    #[inline]
    pub fn deal<R: RngCore + ?Sized>(&self, rng: &mut R) -> Coup {
        let mut shoe = Shoe::full(self.decks);
        let mut player = Hand::default();
        let mut banker = Hand::default();
        player.push(shoe.draw(rng));
        banker.push(shoe.draw(rng));
        player.push(shoe.draw(rng));
        banker.push(shoe.draw(rng));
        let (p, b) = (player.total(), banker.total());
        if !natural(p) && !natural(b) {
            let mut player_third = None;
            if player_draws(p) {
                let card = shoe.draw(rng);
                player.push(card);
                player_third = Some(value(card));
            }
            if banker_draws(b, player_third) {
                banker.push(shoe.draw(rng));
            }
        }
        Coup { player, banker }
    }

    #[inline]
    pub fn payout_units(&self, bet: &BaccaratBet, coup: &Coup) -> u64 {
        self.settle(
            bet,
            coup.winner(),
            coup.player.is_pair(),
            coup.banker.is_pair(),
        )
    }

    fn settle(
        &self,
        bet: &BaccaratBet,
        winner: Winner,
        player_pair: bool,
        banker_pair: bool,
    ) -> u64 {
        let wins = match bet.wins_on {
            Wager::Player => winner == Winner::Player,
            Wager::Banker => winner == Winner::Banker,
            Wager::Tie => winner == Winner::Tie,
            Wager::PlayerPair => player_pair,
            Wager::BankerPair => banker_pair,
        };
        if wins {
            capped_return(bet.pays_units, self.win_cap)
        } else if bet.push_on_tie && winner == Winner::Tie {
            capped_return(0, self.win_cap)
        } else {
            0
        }
    }

    /// Weight of every (winner, player pair, banker pair) class over all deals, each deal
    /// weighted by the number of card sequences producing it, scaled to six cards so every
    /// deal shares the denominator N(N-1)…(N-5). Returns the classes and that denominator.
    fn enumerate_classes(&self) -> ([[[u128; 2]; 2]; 3], u128) {
        let n = u128::from(self.decks) * 52;
        let mut classes = [[[0u128; 2]; 2]; 3];
        let mut counts = [u128::from(self.decks) * 4; RANKS];
        let mut record = |winner: Winner, pp: bool, bp: bool, weight: u128| {
            classes[winner as usize][pp as usize][bp as usize] += weight;
        };
        for p1 in 0..RANKS {
            let w1 = counts[p1];
            counts[p1] -= 1;
            for b1 in 0..RANKS {
                let w2 = counts[b1];
                counts[b1] -= 1;
                for p2 in 0..RANKS {
                    let w3 = counts[p2];
                    counts[p2] -= 1;
                    for b2 in 0..RANKS {
                        let w4 = counts[b2];
                        if w4 == 0 {
                            continue;
                        }
                        counts[b2] -= 1;
                        let weight = w1 * w2 * w3 * w4;
                        let p = (value(p1 as u8) + value(p2 as u8)) % 10;
                        let b = (value(b1 as u8) + value(b2 as u8)) % 10;
                        let (pp, bp) = (p1 == p2, b1 == b2);
                        let by_value = values_left(&counts);
                        third_cards(p, b, &by_value, n, weight, &mut |winner, w| {
                            record(winner, pp, bp, w)
                        });
                        counts[b2] += 1;
                    }
                    counts[p2] += 1;
                }
                counts[b1] += 1;
            }
            counts[p1] += 1;
        }
        let denominator = (0..6).map(|i| n - i).product();
        (classes, denominator)
    }
}

/// Cards left of each value 0..=9.
fn values_left(counts: &[u128; RANKS]) -> [u128; 10] {
    let mut by_value = [0u128; 10];
    for (rank, &c) in counts.iter().enumerate() {
        by_value[value(rank as u8) as usize] += c;
    }
    by_value
}

/// Completes a deal after the first four cards (totals p and b, weight w of those four):
/// third cards by value, each deal scaled to six cards of an N-card shoe.
fn third_cards(
    p: u8,
    b: u8,
    by_value: &[u128; 10],
    n: u128,
    weight: u128,
    record: &mut impl FnMut(Winner, u128),
) {
    if natural(p) || natural(b) {
        return record(winner(p, b), weight * (n - 4) * (n - 5));
    }
    if !player_draws(p) {
        if !banker_draws(b, None) {
            return record(winner(p, b), weight * (n - 4) * (n - 5));
        }
        for (v, &c) in by_value.iter().enumerate() {
            record(winner(p, (b + v as u8) % 10), weight * c * (n - 5));
        }
        return;
    }
    for (pv, &pc) in by_value.iter().enumerate() {
        if pc == 0 {
            continue;
        }
        let player_total = (p + pv as u8) % 10;
        if !banker_draws(b, Some(pv as u8)) {
            record(winner(player_total, b), weight * pc * (n - 5));
            continue;
        }
        for (bv, &bc) in by_value.iter().enumerate() {
            let left = bc - u128::from(bv == pv);
            record(
                winner(player_total, (b + bv as u8) % 10),
                weight * pc * left,
            );
        }
    }
}

/// Rank counts of the cards left: a draw weights each rank by its count, which is drawing
/// uniformly among the cards left.
struct Shoe {
    counts: [u32; RANKS],
    left: u32,
}

impl Shoe {
    fn full(decks: u32) -> Shoe {
        Shoe {
            counts: [4 * decks; RANKS],
            left: 52 * decks,
        }
    }

    #[inline]
    fn draw<R: RngCore + ?Sized>(&mut self, rng: &mut R) -> u8 {
        let mut point = below_u32(rng, self.left);
        for (rank, count) in self.counts.iter_mut().enumerate() {
            if point < *count {
                *count -= 1;
                self.left -= 1;
                return rank as u8;
            }
            point -= *count;
        }
        unreachable!("point < cards left")
    }
}

impl GameMath for Baccarat {
    type Scratch = ();

    fn bet_names(&self) -> Vec<String> {
        self.bets.iter().map(|b| b.name.clone()).collect()
    }

    fn exact_distributions(&self) -> Vec<ReturnDistribution> {
        let (classes, denominator) = self.enumerate_classes();
        let total: u128 = classes.iter().flatten().flatten().sum();
        assert_eq!(total, denominator, "every deal is counted exactly once");
        let winners = [Winner::Player, Winner::Banker, Winner::Tie];
        self.bets
            .iter()
            .map(|bet| {
                let mut distribution = ReturnDistribution::new();
                for (w, by_pp) in classes.iter().enumerate() {
                    for (pp, by_bp) in by_pp.iter().enumerate() {
                        for (bp, &weight) in by_bp.iter().enumerate() {
                            let units = self.settle(bet, winners[w], pp == 1, bp == 1);
                            distribution.add(units, ratio(weight, denominator));
                        }
                    }
                }
                distribution
            })
            .collect()
    }

    fn new_scratch(&self) {}

    #[inline]
    fn play_round<R: RngCore + ?Sized>(&self, rng: &mut R, _: &mut (), returns: &mut [u64]) {
        let coup = self.deal(rng);
        let (winner, pp, bp) = (coup.winner(), coup.player.is_pair(), coup.banker.is_pair());
        for (bet, slot) in self.bets.iter().zip(returns.iter_mut()) {
            *slot = self.settle(bet, winner, pp, bp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banker_tableau_follows_the_standard_rules() {
        assert!(banker_draws(3, Some(9)) && !banker_draws(3, Some(8)));
        assert!(banker_draws(4, Some(2)) && !banker_draws(4, Some(1)) && !banker_draws(4, Some(8)));
        assert!(banker_draws(5, Some(4)) && !banker_draws(5, Some(3)));
        assert!(banker_draws(6, Some(6)) && !banker_draws(6, Some(5)) && !banker_draws(6, None));
        assert!(!banker_draws(7, Some(6)) && banker_draws(5, None));
    }

    #[test]
    fn shoe_draws_every_card_exactly_once() {
        let mut shoe = Shoe::full(1);
        let mut rng = croupier_rng::sim_rng(4);
        let mut seen = [0u32; RANKS];
        for _ in 0..52 {
            seen[shoe.draw(&mut rng) as usize] += 1;
        }
        assert_eq!(seen, [4; RANKS]);
        assert_eq!(shoe.left, 0);
    }

    #[test]
    fn dealt_coups_follow_the_tableau() {
        let game = match crate::load(GAME).unwrap() {
            crate::Game::Baccarat(b) => b,
            _ => unreachable!(),
        };
        let mut rng = croupier_rng::sim_rng(5);
        for _ in 0..20_000 {
            let coup = game.deal(&mut rng);
            let p2 = (value(coup.player.ranks[0]) + value(coup.player.ranks[1])) % 10;
            let b2 = (value(coup.banker.ranks[0]) + value(coup.banker.ranks[1])) % 10;
            if natural(p2) || natural(b2) {
                assert_eq!((coup.player.len, coup.banker.len), (2, 2));
                continue;
            }
            assert_eq!(coup.player.len == 3, player_draws(p2));
            let third = (coup.player.len == 3).then(|| value(coup.player.ranks[2]));
            assert_eq!(coup.banker.len == 3, banker_draws(b2, third));
        }
    }
}
