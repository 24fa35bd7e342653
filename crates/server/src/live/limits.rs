//! The live push's bounds, in one place for the hub, the server's settings and the tests.

/// Two: one result to 10,000 screens is 10,000 socket writes, and on one thread the last
/// screen waited for all of them (result delivery p99 222–360 ms under `croupier bench live`;
/// 168–175 ms on two threads, alternated in the same session, README "Live tables"). A result
/// goes out when its round's betting has closed, so the second core is free then; while bets
/// flow, the fan-out is paced and two threads do not make it any larger.
pub const THREADS_DEFAULT: usize = 2;

/// Just under the default `bets_total` interval (1 s): each table's totals then trickle out
/// over most of the second until the next ones, instead of half of it at twice the rate.
/// Against 500 ms, alternated under `croupier bench live` (session 23), bets over 50 ms fell in
/// each of three pairs (181k/105k/125k against 102k/87k/0). A screen may see `round_opened` up
/// to this much after another; the countdown is drawn from `closes_at`, so it stays right.
pub const PACED_SPREAD_MS_DEFAULT: u64 = 900;

/// Bounds of the live push on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLimits {
    /// Messages kept per table for clients that resume (`after`).
    pub retained_messages_max: usize,
    pub retained_bytes_max: usize,
    /// A client further behind than this is closed (code 1008).
    pub client_queue_max: usize,
    pub client_queue_bytes_max: usize,
    /// Open live connections on this node.
    pub subscribers_max: usize,
    /// At start, how many log entries back the hub reads the feed to fill its windows.
    pub backfill_entries: u64,
    /// Worker threads of the live push's own (0: it shares the server's runtime).
    pub threads: usize,
    /// Messages that can wait (`bets_total`, `round_opened`) go to the node's screens spread
    /// over this long instead of in one burst on the ledger's cores (0: not paced).
    pub paced_spread_ms: u64,
}

impl Default for LiveLimits {
    fn default() -> Self {
        LiveLimits {
            retained_messages_max: 1_024,
            retained_bytes_max: 4 << 20,
            client_queue_max: 256,
            client_queue_bytes_max: 1 << 20,
            subscribers_max: 20_000,
            backfill_entries: 1_000_000,
            threads: THREADS_DEFAULT,
            paced_spread_ms: PACED_SPREAD_MS_DEFAULT,
        }
    }
}
