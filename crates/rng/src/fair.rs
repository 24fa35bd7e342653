//! Provably fair play: commit/reveal of a server seed, the outcome byte stream of the widely
//! used scheme (Stake and others), its floats, and reverse SHA-256 hash chains for rounds many
//! players share (crash-game style).
//!
//! - commitment = hex(SHA-256(server seed)), the seed taken as the ASCII text it is shown as;
//! - block r = HMAC-SHA256(key = server seed text, message = "client_seed:nonce:r"),
//!   r = 0, 1, ...; the stream is block 0 || block 1 || ...;
//! - float = b0/256 + b1/256^2 + b2/256^3 + b3/256^4 for each 4 bytes (8 floats per block);
//! - `FairStream` is an `RngCore` over the same stream: `next_u32` = the next 4 bytes
//!   big-endian (so next_u32 / 2^32 is the float above), `next_u64` = the next 8 bytes
//!   big-endian, `fill_bytes` = the next bytes. Integers come from `crate::sample` on it.

use hmac::{Hmac, Mac};
use rand_core::RngCore;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Bytes per HMAC-SHA256 block.
pub const BLOCK_BYTES: usize = 32;
/// Longest server or client seed accepted, in characters.
pub const SEED_CHARS_MAX: usize = 256;
/// Longest hash chain `HashChain::generate` builds.
pub const CHAIN_LENGTH_MAX: u64 = 10_000_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FairError {
    #[error("the server seed must be 1 to {SEED_CHARS_MAX} hexadecimal characters")]
    ServerSeedNotHex,
    #[error("the client seed must be 1 to {SEED_CHARS_MAX} characters")]
    ClientSeedLength,
    #[error("a hash must be 64 hexadecimal characters (SHA-256)")]
    HashNotHex,
    #[error("a hash chain has 1 to {CHAIN_LENGTH_MAX} links")]
    ChainLength,
    #[error("round {round} is outside a chain of {length} links")]
    RoundOutsideChain { round: u64, length: u64 },
}

/// A server seed as shown to players: hexadecimal text, used byte for byte (case included).
pub fn check_server_seed(seed: &str) -> Result<(), FairError> {
    let ok = !seed.is_empty()
        && seed.len() <= SEED_CHARS_MAX
        && seed.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(()).ok_or(FairError::ServerSeedNotHex)
}

pub fn check_client_seed(seed: &str) -> Result<(), FairError> {
    (!seed.is_empty() && seed.chars().count() <= SEED_CHARS_MAX)
        .then_some(())
        .ok_or(FairError::ClientSeedLength)
}

/// A SHA-256 hash as 64 hex digits, normalized to lowercase.
pub fn parse_hash(text: &str) -> Result<String, FairError> {
    let ok = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| text.to_ascii_lowercase())
        .ok_or(FairError::HashNotHex)
}

/// hex(SHA-256(seed text)): the commitment published before betting, and one link of a chain.
pub fn commitment(server_seed: &str) -> String {
    hex::encode(Sha256::digest(server_seed.as_bytes()))
}

/// True when `server_seed` hashes to the published `commitment` (hex, any case).
pub fn commitment_matches(server_seed: &str, commitment_hex: &str) -> bool {
    commitment(server_seed).eq_ignore_ascii_case(commitment_hex)
}

/// A fresh server seed: 32 random bytes as 64 lowercase hex characters.
pub fn new_server_seed<R: RngCore + ?Sized>(rng: &mut R) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// HMAC-SHA256(key = server seed, message = "client_seed:nonce:round").
pub fn block(server_seed: &str, client_seed: &str, nonce: u64, round: u64) -> [u8; BLOCK_BYTES] {
    let keyed =
        HmacSha256::new_from_slice(server_seed.as_bytes()).expect("HMAC takes any key length");
    block_with(&keyed, client_seed, nonce, round)
}

fn block_with(keyed: &HmacSha256, client_seed: &str, nonce: u64, round: u64) -> [u8; BLOCK_BYTES] {
    let mut mac = keyed.clone();
    mac.update(format!("{client_seed}:{nonce}:{round}").as_bytes());
    mac.finalize().into_bytes().into()
}

/// b0/256 + b1/256^2 + b2/256^3 + b3/256^4, exact in f64 (it is a multiple of 2^-32).
pub fn float_from_bytes(bytes: [u8; 4]) -> f64 {
    u32::from_be_bytes(bytes) as f64 / 4_294_967_296.0
}

/// The first `count` floats of the stream for (server seed, client seed, nonce).
pub fn floats(server_seed: &str, client_seed: &str, nonce: u64, count: usize) -> Vec<f64> {
    let mut stream = FairStream::new(server_seed, client_seed, nonce);
    (0..count).map(|_| stream.next_float()).collect()
}

/// The outcome byte stream as an `RngCore`, so game math runs on it unchanged.
#[derive(Clone)]
pub struct FairStream {
    keyed: HmacSha256,
    client_seed: String,
    nonce: u64,
    round: u64,
    block: [u8; BLOCK_BYTES],
    position: usize,
}

/// The server seed is the secret until revealed: never printed.
impl std::fmt::Debug for FairStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FairStream")
            .field("client_seed", &self.client_seed)
            .field("nonce", &self.nonce)
            .field("bytes_used", &self.bytes_used())
            .finish_non_exhaustive()
    }
}

impl FairStream {
    pub fn new(server_seed: &str, client_seed: &str, nonce: u64) -> Self {
        let keyed =
            HmacSha256::new_from_slice(server_seed.as_bytes()).expect("HMAC takes any key length");
        let block = block_with(&keyed, client_seed, nonce, 0);
        FairStream {
            keyed,
            client_seed: client_seed.to_owned(),
            nonce,
            round: 0,
            block,
            position: 0,
        }
    }

    pub fn next_byte(&mut self) -> u8 {
        if self.position == BLOCK_BYTES {
            self.round += 1;
            self.block = block_with(&self.keyed, &self.client_seed, self.nonce, self.round);
            self.position = 0;
        }
        let byte = self.block[self.position];
        self.position += 1;
        byte
    }

    /// The next float of the scheme (4 bytes).
    pub fn next_float(&mut self) -> f64 {
        float_from_bytes(self.take())
    }

    /// Bytes consumed so far (the scheme's "cursor").
    pub fn bytes_used(&self) -> u64 {
        self.round * BLOCK_BYTES as u64 + self.position as u64
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.next_byte())
    }
}

impl RngCore for FairStream {
    fn next_u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }

    fn next_u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take())
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        dst.iter_mut().for_each(|b| *b = self.next_byte());
    }
}

/// A reverse hash chain: the last seed is random, seed[i] = SHA-256(hex(seed[i+1])) (each
/// link is the commitment of the next seed, hashed as its lowercase hex text, as bustabit
/// does), round r reveals hex(seed[r]), and terminal = hex(SHA-256(hex(seed[0]))) is published
/// before round 0. A revealed seed proves itself against the terminal hash, yet says nothing
/// about the seeds of later rounds (SHA-256 is not invertible).
#[derive(Clone)]
pub struct HashChain {
    seeds: Vec<[u8; 32]>,
    terminal: String,
}

impl std::fmt::Debug for HashChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashChain")
            .field("length", &self.seeds.len())
            .field("terminal", &self.terminal)
            .finish_non_exhaustive()
    }
}

impl HashChain {
    /// Builds the chain down from `last_seed`, the secret all other seeds follow from.
    pub fn generate(last_seed: [u8; 32], length: u64) -> Result<Self, FairError> {
        if length == 0 || length > CHAIN_LENGTH_MAX {
            return Err(FairError::ChainLength);
        }
        let mut seeds = Vec::with_capacity(length as usize);
        seeds.push(last_seed);
        for _ in 1..length {
            let next = link(seeds.last().expect("not empty"));
            seeds.push(next);
        }
        seeds.reverse();
        let terminal = hex::encode(link(&seeds[0]));
        Ok(HashChain { seeds, terminal })
    }

    pub fn len(&self) -> u64 {
        self.seeds.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty()
    }

    /// The seed revealed at `round`, as the hex text players see.
    pub fn seed(&self, round: u64) -> Option<String> {
        self.seeds.get(round as usize).map(hex::encode)
    }

    /// Seeds in play order (round 0 first), as hex text.
    pub fn seeds(&self) -> impl Iterator<Item = String> + '_ {
        self.seeds.iter().map(hex::encode)
    }

    pub fn terminal(&self) -> &str {
        &self.terminal
    }
}

/// SHA-256 of the lowercase hex text of `seed`: `commitment` without the round trip via String.
fn link(seed: &[u8; 32]) -> [u8; 32] {
    let mut text = [0u8; 64];
    hex::encode_to_slice(seed, &mut text).expect("64 bytes hold 32 in hex");
    Sha256::digest(text).into()
}

/// Checks that `seed` is the seed of `round` in the chain ending in `terminal`: hashing it
/// round + 1 times gives the terminal hash.
pub fn chain_seed_matches(
    seed: &str,
    round: u64,
    terminal: &str,
    length: u64,
) -> Result<bool, FairError> {
    check_server_seed(seed)?;
    let terminal = parse_hash(terminal)?;
    if length == 0 || length > CHAIN_LENGTH_MAX {
        return Err(FairError::ChainLength);
    }
    if round >= length {
        return Err(FairError::RoundOutsideChain { round, length });
    }
    let mut link = seed.to_owned();
    for _ in 0..=round {
        link = commitment(&link);
    }
    Ok(link == terminal)
}

/// The round at which `seed` sits in the chain ending in `terminal`, searching at most
/// `length` links; None when it is not in the chain.
pub fn chain_round_of(seed: &str, terminal: &str, length: u64) -> Result<Option<u64>, FairError> {
    check_server_seed(seed)?;
    let terminal = parse_hash(terminal)?;
    if length == 0 || length > CHAIN_LENGTH_MAX {
        return Err(FairError::ChainLength);
    }
    let mut link = seed.to_owned();
    for round in 0..length {
        link = commitment(&link);
        if link == terminal {
            return Ok(Some(round));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::below_u32;

    // Vectors computed independently with Python's hashlib/hmac (see docs/rng.md):
    //   hashlib.sha256(S.encode()).hexdigest()
    //   hmac.new(S.encode(), f"{C}:{N}:{r}".encode(), hashlib.sha256).digest()
    const SERVER: &str = "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b";
    const CLIENT: &str = "croupier-client-seed";

    #[test]
    fn commitment_is_sha256_of_the_seed_text() {
        assert_eq!(commitment(SERVER), COMMITMENT);
        assert!(commitment_matches(SERVER, &COMMITMENT.to_uppercase()));
        assert!(!commitment_matches("6b86", COMMITMENT));
    }

    #[test]
    fn blocks_match_hmac_sha256_of_client_nonce_round() {
        assert_eq!(hex::encode(block(SERVER, CLIENT, 7, 0)), BLOCK_7_0);
        assert_eq!(hex::encode(block(SERVER, CLIENT, 7, 1)), BLOCK_7_1);
    }

    #[test]
    fn floats_match_the_widely_used_scheme_across_blocks() {
        let floats = floats(SERVER, CLIENT, 7, 10);
        assert_eq!(floats, FLOATS_7);
    }

    #[test]
    fn stream_words_are_big_endian_so_a_word_over_2_pow_32_is_the_float() {
        let mut words = FairStream::new(SERVER, CLIENT, 7);
        let mut floats = FairStream::new(SERVER, CLIENT, 7);
        for _ in 0..20 {
            assert_eq!(
                words.next_u32() as f64 / 4_294_967_296.0,
                floats.next_float()
            );
        }
        assert_eq!(words.bytes_used(), 80);
    }

    #[test]
    fn integers_pin_the_documented_mapping() {
        // Lemire's reduction on the big-endian words: floor(float * n) unless the word is in
        // the rejection zone (probability < n / 2^32).
        let mut stream = FairStream::new(SERVER, CLIENT, 7);
        let dice: Vec<u32> = (0..10).map(|_| below_u32(&mut stream, 6)).collect();
        let expected: Vec<u32> = FLOATS_7.iter().map(|f| (f * 6.0) as u32).collect();
        assert_eq!(dice, expected);
        let mut stream = FairStream::new(SERVER, CLIENT, 7);
        let roulette: Vec<u32> = (0..10).map(|_| below_u32(&mut stream, 37)).collect();
        assert_eq!(roulette, ROULETTE_7);
    }

    #[test]
    fn bad_seeds_and_hashes_are_refused() {
        assert_eq!(check_server_seed("xyz"), Err(FairError::ServerSeedNotHex));
        assert_eq!(check_server_seed(""), Err(FairError::ServerSeedNotHex));
        assert!(check_server_seed(SERVER).is_ok());
        assert!(check_client_seed("").is_err());
        assert!(parse_hash("abc").is_err());
        assert_eq!(parse_hash(&COMMITMENT.to_uppercase()).unwrap(), COMMITMENT);
    }

    fn last_seed() -> [u8; 32] {
        hex::decode(SERVER).unwrap().try_into().unwrap()
    }

    #[test]
    fn chain_links_hash_down_to_the_terminal() {
        let chain = HashChain::generate(last_seed(), 5).unwrap();
        let seeds: Vec<String> = chain.seeds().collect();
        assert_eq!(seeds[4], SERVER);
        assert_eq!(
            seeds[3], COMMITMENT,
            "a link is the commitment of the next seed"
        );
        for (round, seed) in seeds.iter().enumerate() {
            assert!(chain_seed_matches(seed, round as u64, chain.terminal(), 5).unwrap());
            assert_eq!(
                chain_round_of(seed, chain.terminal(), 5).unwrap(),
                Some(round as u64)
            );
        }
        assert!(!chain_seed_matches(&seeds[2], 1, chain.terminal(), 5).unwrap());
        assert_eq!(chain_round_of("abcd", chain.terminal(), 5).unwrap(), None);
        assert_eq!(
            chain_seed_matches(SERVER, 5, chain.terminal(), 5),
            Err(FairError::RoundOutsideChain {
                round: 5,
                length: 5
            })
        );
        assert_eq!(chain.terminal(), CHAIN_5_TERMINAL);
        assert_eq!(chain.seed(0).unwrap(), seeds[0]);
        assert_eq!(
            HashChain::generate(last_seed(), 0).unwrap_err(),
            FairError::ChainLength
        );
    }

    #[test]
    fn debug_output_never_shows_the_server_seed() {
        let stream = FairStream::new(SERVER, CLIENT, 7);
        assert!(!format!("{stream:?}").contains(SERVER));
        let chain = HashChain::generate(last_seed(), 2).unwrap();
        assert!(!format!("{chain:?}").contains(SERVER));
    }

    const COMMITMENT: &str = "e0bc614e4fd035a488619799853b075143deea596c477b8dc077e309c0fe42e9";
    const BLOCK_7_0: &str = "3086d6e53779fd002020549b76e8919597889e9783819b3becb2bbc6dd775a29";
    const BLOCK_7_1: &str = "f0ab54db9b63d3227e467927057216f78cd9b91be37ab84b0d39addd9c7296ee";
    const FLOATS_7: [f64; 10] = [
        0.18955748644657433,
        0.21670514345169067,
        0.1254933241289109,
        0.46448621642775834,
        0.5919283980038017,
        0.5136963862460107,
        0.9246022566221654,
        0.8651024198625237,
        0.9401143107097596,
        0.606991954613477,
    ];
    const ROULETTE_7: [u32; 10] = [7, 8, 4, 17, 21, 19, 34, 32, 34, 22];
    const CHAIN_5_TERMINAL: &str =
        "f595eaa487be7ad3be3632dee5d2bbf4f5639261a6ff90624c9dfec7e68e70e4";
}
