//! The player and session parts of the codec (commands 7–11, result 5, checkpoint section of
//! version 3). Layouts are in the parent module's docs.

use super::{DecodeError, Reader, Writer};
use crate::command::{check_operator_key_id, Command};
use crate::ids::LedgerCode;
use crate::players::{
    NewPlayer, NewSession, Player, PlayerOutcome, Session, TokenHash, CURRENCIES_PER_PLAYER_MAX,
    PASSWORD_HASH_LEN_MAX, SESSION_TTL_S_MAX,
};

pub(super) const TAG_CREATE_PLAYER: u8 = 7;
pub(super) const TAG_OPEN_SESSION: u8 = 8;
pub(super) const TAG_CLOSE_SESSION: u8 = 9;
pub(super) const TAG_REVOKE_SESSIONS: u8 = 10;
/// An operator's command logged before the audit trail existed: applies without a record.
pub(super) const TAG_BY_OPERATOR: u8 = 11;
/// An operator's command that leaves an audit trail record (`crate::operators`).
pub(super) const TAG_BY_OPERATOR_RECORDED: u8 = 12;

const OUTCOME_PLAYER_CREATED: u8 = 1;
const OUTCOME_USERNAME_TAKEN: u8 = 2;
const OUTCOME_SESSION_OPENED: u8 = 3;
const OUTCOME_SESSIONS_CLOSED: u8 = 4;
const OUTCOME_PLAYER_NOT_FOUND: u8 = 5;
const OUTCOME_SESSION_NOT_FOUND: u8 = 6;

impl Writer<'_> {
    fn text(&mut self, text: &str) {
        self.u16(u16::try_from(text.len()).expect("short text"));
        self.0.extend_from_slice(text.as_bytes());
    }

    fn token(&mut self, token: &TokenHash) {
        self.0.extend_from_slice(&token.0);
    }

    /// Player commands; `false` if `command` is not one (the caller encodes it).
    pub(super) fn player_command(&mut self, command: &Command) -> bool {
        match command {
            Command::CreatePlayer(player) => {
                assert!(player.check().is_ok(), "unchecked player request");
                self.u8(TAG_CREATE_PLAYER);
                self.text(&player.username);
                self.text(&player.password_hash);
                self.u8(player.currencies.len() as u8);
                for code in &player.currencies {
                    self.u64(code.to_u64());
                }
            }
            Command::OpenSession(session) => {
                self.u8(TAG_OPEN_SESSION);
                self.token(&session.token_hash);
                self.u128(session.player_id);
                self.u32(session.ttl_s);
            }
            Command::CloseSession(token) => {
                self.u8(TAG_CLOSE_SESSION);
                self.token(token);
            }
            Command::RevokeSessions(player) => {
                self.u8(TAG_REVOKE_SESSIONS);
                self.u128(*player);
            }
            Command::ByOperator {
                key_id,
                command,
                recorded,
            } => {
                assert!(check_operator_key_id(key_id), "bad operator key id");
                assert!(!matches!(**command, Command::ByOperator { .. }), "nested");
                self.u8(if *recorded {
                    TAG_BY_OPERATOR_RECORDED
                } else {
                    TAG_BY_OPERATOR
                });
                self.text(key_id);
                self.command(command);
            }
            _ => return false,
        }
        true
    }

    pub(super) fn player_outcome(&mut self, outcome: &PlayerOutcome) {
        match *outcome {
            PlayerOutcome::PlayerCreated { player_id } => {
                self.u8(OUTCOME_PLAYER_CREATED);
                self.u128(player_id);
            }
            PlayerOutcome::UsernameTaken => self.u8(OUTCOME_USERNAME_TAKEN),
            PlayerOutcome::SessionOpened { expires_at_ns } => {
                self.u8(OUTCOME_SESSION_OPENED);
                self.u64(expires_at_ns);
            }
            PlayerOutcome::SessionsClosed { count } => {
                self.u8(OUTCOME_SESSIONS_CLOSED);
                self.u32(count);
            }
            PlayerOutcome::PlayerNotFound => self.u8(OUTCOME_PLAYER_NOT_FOUND),
            PlayerOutcome::SessionNotFound => self.u8(OUTCOME_SESSION_NOT_FOUND),
        }
    }

    pub(super) fn checkpoint_player(&mut self, player: &Player) {
        self.u128(player.id);
        self.u64(player.created_at_ns);
        self.text(&player.username);
        self.text(&player.password_hash);
        self.u8(player.wallets.len() as u8);
        for (code, account) in &player.wallets {
            self.u64(code.to_u64());
            self.u128(*account);
        }
    }

    pub(super) fn checkpoint_session(&mut self, session: &Session) {
        self.token(&session.token_hash);
        self.u128(session.player_id);
        self.u64(session.expires_at_ns);
    }
}

impl Reader<'_> {
    fn text(&mut self, len_max: usize, what: &'static str) -> Result<String, DecodeError> {
        let offset = self.offset;
        let len = usize::from(self.u16()?);
        let bytes = self.slice(len)?;
        let text = std::str::from_utf8(bytes).map_err(|_| self.invalid(what, offset))?;
        if text.is_empty() || len > len_max {
            return Err(self.invalid(what, offset));
        }
        Ok(text.to_owned())
    }

    fn token(&mut self) -> Result<TokenHash, DecodeError> {
        Ok(TokenHash(self.take::<32>()?))
    }

    fn currencies(&mut self) -> Result<Vec<LedgerCode>, DecodeError> {
        let offset = self.offset;
        let count = usize::from(self.u8()?);
        if count == 0 || count > CURRENCIES_PER_PLAYER_MAX {
            return Err(self.invalid("currency count", offset));
        }
        (0..count).map(|_| self.ledger()).collect()
    }

    /// A player command whose tag was just read.
    pub(super) fn player_command(
        &mut self,
        tag: u8,
        offset: usize,
    ) -> Result<Command, DecodeError> {
        match tag {
            TAG_CREATE_PLAYER => {
                let player = NewPlayer {
                    username: self.text(crate::players::USERNAME_LEN_MAX, "username")?,
                    password_hash: self.text(PASSWORD_HASH_LEN_MAX, "password hash")?,
                    currencies: self.currencies()?,
                };
                player.check().map_err(|_| self.invalid("player", offset))?;
                Ok(Command::CreatePlayer(player))
            }
            TAG_OPEN_SESSION => {
                let (token_hash, player_id, ttl_s) = (self.token()?, self.u128()?, self.u32()?);
                if !(1..=SESSION_TTL_S_MAX).contains(&ttl_s) {
                    return Err(self.invalid("session ttl", offset));
                }
                Ok(Command::OpenSession(NewSession {
                    token_hash,
                    player_id,
                    ttl_s,
                }))
            }
            TAG_CLOSE_SESSION => Ok(Command::CloseSession(self.token()?)),
            TAG_REVOKE_SESSIONS => Ok(Command::RevokeSessions(self.u128()?)),
            TAG_BY_OPERATOR | TAG_BY_OPERATOR_RECORDED => {
                let recorded = tag == TAG_BY_OPERATOR_RECORDED;
                let key_id = self.text(crate::command::OPERATOR_KEY_ID_LEN_MAX, "key id")?;
                if !check_operator_key_id(&key_id) {
                    return Err(self.invalid("operator key id", offset));
                }
                let inner_offset = self.offset;
                let command = self.command()?;
                if matches!(command, Command::ByOperator { .. }) {
                    return Err(self.invalid("nested operator command", inner_offset));
                }
                Ok(Command::ByOperator {
                    key_id,
                    command: Box::new(command),
                    recorded,
                })
            }
            _ => Err(self.invalid("command tag", offset)),
        }
    }

    pub(super) fn player_outcome(&mut self) -> Result<PlayerOutcome, DecodeError> {
        let offset = self.offset;
        Ok(match self.u8()? {
            OUTCOME_PLAYER_CREATED => PlayerOutcome::PlayerCreated {
                player_id: self.u128()?,
            },
            OUTCOME_USERNAME_TAKEN => PlayerOutcome::UsernameTaken,
            OUTCOME_SESSION_OPENED => PlayerOutcome::SessionOpened {
                expires_at_ns: self.u64()?,
            },
            OUTCOME_SESSIONS_CLOSED => PlayerOutcome::SessionsClosed { count: self.u32()? },
            OUTCOME_PLAYER_NOT_FOUND => PlayerOutcome::PlayerNotFound,
            OUTCOME_SESSION_NOT_FOUND => PlayerOutcome::SessionNotFound,
            _ => return Err(self.invalid("player outcome", offset)),
        })
    }

    pub(super) fn checkpoint_player(&mut self) -> Result<Player, DecodeError> {
        let (id, created_at_ns) = (self.u128()?, self.u64()?);
        let username = self.text(crate::players::USERNAME_LEN_MAX, "username")?;
        let password_hash = self.text(PASSWORD_HASH_LEN_MAX, "password hash")?;
        let offset = self.offset;
        let count = usize::from(self.u8()?);
        if count == 0 || count > CURRENCIES_PER_PLAYER_MAX {
            return Err(self.invalid("wallet count", offset));
        }
        let mut wallets = Vec::with_capacity(count);
        for _ in 0..count {
            wallets.push((self.ledger()?, self.u128()?));
        }
        Ok(Player {
            id,
            username,
            password_hash,
            wallets,
            created_at_ns,
        })
    }

    pub(super) fn checkpoint_session(&mut self) -> Result<Session, DecodeError> {
        Ok(Session {
            token_hash: self.token()?,
            player_id: self.u128()?,
            expires_at_ns: self.u64()?,
        })
    }
}
