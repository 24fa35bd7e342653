//! Registered players and their open sessions: hot state like the accounts, shared with
//! checkpoints the same way (players and session slots live in copy-on-write pages; the
//! username and token indexes and the expiry order are rebuilt when a checkpoint is loaded).

use std::collections::BTreeSet;

use super::hashing::IdMap;
use super::{Ledger, NANOS_PER_SECOND};
use crate::ids::{player_id, player_sequence, player_wallet_account_id, AccountId, LedgerCode};
use crate::paged::{FreeSlots, PagedVec};
use crate::players::{
    NewPlayer, NewSession, Player, PlayerId, PlayerOutcome, Session, TokenHash,
    SESSIONS_PER_PLAYER_MAX, SESSION_EXPIRIES_PER_ENTRY_MAX, SESSION_TTL_S_MAX,
};
use crate::types::{AccountFlags, AccountKind};

#[derive(Clone, Debug, Default)]
pub(crate) struct Directory {
    /// Slot = registration sequence (`ids::player_sequence`).
    pub(crate) players: PagedVec<Player>,
    usernames: IdMap<String, u32>,
    pub(crate) sessions: SessionSet,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct SessionSet {
    pub(crate) slots: FreeSlots<Session>,
    index: IdMap<TokenHash, u32>,
    /// By (expiry, token): the expiry sweep.
    expiries: BTreeSet<(u64, TokenHash)>,
    /// By (player, expiry, token): a player's sessions, earliest expiry first.
    by_player: BTreeSet<(PlayerId, u64, TokenHash)>,
}

impl SessionSet {
    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn get(&self, token: &TokenHash) -> Option<&Session> {
        let slot = *self.index.get(token)?;
        Some(self.slots.get(slot))
    }

    pub(crate) fn insert(&mut self, session: Session) {
        let token = session.token_hash;
        assert!(self.expiries.insert((session.expires_at_ns, token)));
        assert!(self
            .by_player
            .insert((session.player_id, session.expires_at_ns, token)));
        let slot = self.slots.insert(session);
        assert!(
            self.index.insert(token, slot).is_none(),
            "session inserted twice"
        );
    }

    pub(crate) fn remove(&mut self, token: &TokenHash) -> Option<Session> {
        let slot = self.index.remove(token)?;
        let session = self.slots.take(slot);
        assert!(self.expiries.remove(&(session.expires_at_ns, *token)));
        assert!(self
            .by_player
            .remove(&(session.player_id, session.expires_at_ns, *token)));
        Some(session)
    }

    fn of_player(&self, player: PlayerId) -> impl Iterator<Item = TokenHash> + '_ {
        self.by_player
            .range((player, 0, TokenHash([0; 32]))..=(player, u64::MAX, TokenHash([0xFF; 32])))
            .map(|&(_, _, token)| token)
    }

    fn first_expired(&self, now: u64) -> Option<TokenHash> {
        self.expiries
            .first()
            .filter(|(deadline, _)| *deadline <= now)
            .map(|&(_, token)| token)
    }
}

impl Directory {
    pub(crate) fn player(&self, id: PlayerId) -> Option<&Player> {
        let sequence = player_sequence(id)?;
        let slot = usize::try_from(sequence).ok()?;
        (slot < self.players.len()).then(|| self.players.get(slot))
    }

    pub(crate) fn player_by_username(&self, username: &str) -> Option<&Player> {
        let slot = *self.usernames.get(username)?;
        Some(self.players.get(slot as usize))
    }

    /// Rebuilding from a checkpoint: players in registration order, then sessions.
    pub(crate) fn restore_player(&mut self, player: Player) -> Result<(), &'static str> {
        let slot = self.players.len();
        if player.id != player_id(slot as u64) {
            return Err("player id out of sequence");
        }
        let wallets_derived = player
            .wallets
            .iter()
            .enumerate()
            .all(|(i, &(_, account))| account == player_wallet_account_id(slot as u64, i));
        if !wallets_derived || player.wallets.is_empty() {
            return Err("player wallets");
        }
        if self
            .usernames
            .insert(player.username.clone(), slot as u32)
            .is_some()
        {
            return Err("repeated username");
        }
        self.players.push(player);
        Ok(())
    }

    pub(crate) fn restore_session(&mut self, session: Session) -> Result<(), &'static str> {
        if self.player(session.player_id).is_none() {
            return Err("session of an unknown player");
        }
        if self.sessions.get(&session.token_hash).is_some() {
            return Err("repeated session");
        }
        self.sessions.insert(session);
        Ok(())
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        if self.usernames.len() != self.players.len() {
            return Err("username index disagrees with the players".into());
        }
        if self.sessions.index.len() != self.sessions.expiries.len()
            || self.sessions.index.len() != self.sessions.by_player.len()
        {
            return Err("session indexes disagree".into());
        }
        Ok(())
    }
}

impl Ledger {
    pub(super) fn create_player(&mut self, request: &NewPlayer) -> PlayerOutcome {
        assert!(
            request.check().is_ok(),
            "unchecked player request reached the ledger"
        );
        assert!(!self.undo.active, "player commands are never linked");
        if self.directory.usernames.contains_key(&request.username) {
            return PlayerOutcome::UsernameTaken;
        }
        let sequence = self.directory.players.len() as u64;
        let id = player_id(sequence);
        let flags = AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS;
        let mut wallets = Vec::with_capacity(request.currencies.len());
        for (index, &ledger) in request.currencies.iter().enumerate() {
            let account = player_wallet_account_id(sequence, index);
            let timestamp = self.next_timestamp();
            let new = super::accounts::new_account(
                account,
                ledger,
                AccountKind::Player,
                flags,
                timestamp,
            );
            self.insert_account(new, flags);
            wallets.push((ledger, account));
        }
        let created_at_ns = self.next_timestamp();
        self.directory
            .usernames
            .insert(request.username.clone(), sequence as u32);
        self.compliance.players.push(Default::default());
        self.directory.players.push(Player {
            id,
            username: request.username.clone(),
            password_hash: request.password_hash.clone(),
            wallets,
            created_at_ns,
        });
        PlayerOutcome::PlayerCreated { player_id: id }
    }

    pub(super) fn open_session(&mut self, request: &NewSession) -> PlayerOutcome {
        assert!((1..=SESSION_TTL_S_MAX).contains(&request.ttl_s));
        if self.directory.player(request.player_id).is_none() {
            return PlayerOutcome::PlayerNotFound;
        }
        let sessions = &mut self.directory.sessions;
        if let Some(existing) = sessions.get(&request.token_hash) {
            // The same login proposed twice (a retried forward): one session.
            let same = existing.player_id == request.player_id;
            let expires_at_ns = existing.expires_at_ns;
            return match same {
                true => PlayerOutcome::SessionOpened { expires_at_ns },
                false => PlayerOutcome::SessionNotFound,
            };
        }
        let expires_at_ns = self
            .clock
            .saturating_add(u64::from(request.ttl_s) * NANOS_PER_SECOND);
        let held: Vec<TokenHash> = sessions.of_player(request.player_id).collect();
        if held.len() >= SESSIONS_PER_PLAYER_MAX {
            // Earliest expiry first: the oldest login makes room for the newest.
            sessions.remove(&held[0]);
        }
        sessions.insert(Session {
            token_hash: request.token_hash,
            player_id: request.player_id,
            expires_at_ns,
        });
        self.start_play_session(request.player_id);
        PlayerOutcome::SessionOpened { expires_at_ns }
    }

    pub(super) fn close_session(&mut self, token: &TokenHash) -> PlayerOutcome {
        match self.directory.sessions.remove(token) {
            Some(_) => PlayerOutcome::SessionsClosed { count: 1 },
            None => PlayerOutcome::SessionNotFound,
        }
    }

    pub(super) fn revoke_sessions(&mut self, player: PlayerId) -> PlayerOutcome {
        if self.directory.player(player).is_none() {
            return PlayerOutcome::PlayerNotFound;
        }
        let sessions = &mut self.directory.sessions;
        let held: Vec<TokenHash> = sessions.of_player(player).collect();
        for token in &held {
            sessions.remove(token);
        }
        PlayerOutcome::SessionsClosed {
            count: held.len() as u32,
        }
    }

    /// Forgets sessions whose expiry is at or before `now` (bounded per entry).
    pub(super) fn expire_sessions(&mut self, now: u64) {
        let sessions = &mut self.directory.sessions;
        for _ in 0..SESSION_EXPIRIES_PER_ENTRY_MAX {
            let Some(token) = sessions.first_expired(now) else {
                return;
            };
            sessions.remove(&token);
        }
    }

    /// A registered player.
    pub fn player(&self, id: PlayerId) -> Option<&Player> {
        self.directory.player(id)
    }

    pub fn player_by_username(&self, username: &str) -> Option<&Player> {
        self.directory.player_by_username(username)
    }

    /// An open session (it may have expired since the last entry: callers compare
    /// `expires_at_ns` with their clock).
    pub fn session(&self, token: &TokenHash) -> Option<&Session> {
        self.directory.sessions.get(token)
    }

    pub fn player_count(&self) -> usize {
        self.directory.players.len()
    }

    pub fn session_count(&self) -> usize {
        self.directory.sessions.len()
    }

    /// The account a wallet call naming `player` reaches: a registered player's wallet in
    /// `ledger` (its first wallet without one), or `player` itself as an account id.
    pub fn wallet_account_of(
        &self,
        player: PlayerId,
        ledger: Option<LedgerCode>,
    ) -> Option<AccountId> {
        if player_sequence(player).is_none() {
            return Some(player);
        }
        let registered = self.directory.player(player)?;
        match ledger {
            Some(ledger) => registered.wallet(ledger),
            None => Some(registered.first_wallet().1),
        }
    }
}
