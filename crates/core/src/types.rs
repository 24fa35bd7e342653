//! Accounts, transfers, their flags and the named result of creating each.

use crate::ids::{AccountId, LedgerCode, TransferId};

/// Declares a small flag set over a u16 with stable snake_case names (the JSON/API spelling).
macro_rules! flag_set {
    ($(#[$meta:meta])* $name:ident { $($flag:ident = $bit:expr => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name(u16);

        impl $name {
            $(pub const $flag: $name = $name(1 << $bit);)*
            pub const ALL: &'static [($name, &'static str)] = &[$(($name::$flag, $text),)*];

            pub const fn empty() -> Self { $name(0) }
            pub const fn bits(self) -> u16 { self.0 }
            /// `None` when a bit outside the known flags is set.
            pub fn from_bits(bits: u16) -> Option<Self> {
                let known = 0 $(| (1u16 << $bit))*;
                (bits & !known == 0).then_some($name(bits))
            }
            pub const fn contains(self, other: Self) -> bool { self.0 & other.0 == other.0 }
            pub const fn union(self, other: Self) -> Self { $name(self.0 | other.0) }
            pub fn insert(&mut self, other: Self) { self.0 |= other.0 }
            pub fn remove(&mut self, other: Self) { self.0 &= !other.0 }
            pub fn from_name(text: &str) -> Option<Self> {
                Self::ALL.iter().find(|(_, name)| *name == text).map(|(flag, _)| *flag)
            }
            /// Names of the set flags, in declaration order.
            pub fn names(self) -> Vec<&'static str> {
                Self::ALL.iter().filter(|(flag, _)| self.contains(*flag)).map(|(_, n)| *n).collect()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}{:?}", stringify!($name), self.names())
            }
        }
    };
}

flag_set! {
    /// Account flags (TigerBeetle's balance limits plus `closed`). `linked` chains the account
    /// with the next one of the same create_accounts command (all or nothing), as in
    /// TigerBeetle; like TigerBeetle the ledger keeps it on the stored account.
    AccountFlags {
        DEBITS_MUST_NOT_EXCEED_CREDITS = 0 => "debits_must_not_exceed_credits",
        CREDITS_MUST_NOT_EXCEED_DEBITS = 1 => "credits_must_not_exceed_debits",
        CLOSED = 2 => "closed",
        LINKED = 3 => "linked",
    }
}

flag_set! {
    /// Transfer flags. `linked` chains this transfer with the next one in the same command.
    TransferFlags {
        LINKED = 0 => "linked",
        PENDING = 1 => "pending",
        POST_PENDING_TRANSFER = 2 => "post_pending_transfer",
        VOID_PENDING_TRANSFER = 3 => "void_pending_transfer",
        CLOSING_DEBIT = 4 => "closing_debit",
        CLOSING_CREDIT = 5 => "closing_credit",
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountKind {
    Player,
    House,
    Clearing,
    Bonus,
    Jackpot,
    System,
}

impl AccountKind {
    pub const ALL: [AccountKind; 6] = [
        AccountKind::Player,
        AccountKind::House,
        AccountKind::Clearing,
        AccountKind::Bonus,
        AccountKind::Jackpot,
        AccountKind::System,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AccountKind::Player => "player",
            AccountKind::House => "house",
            AccountKind::Clearing => "clearing",
            AccountKind::Bonus => "bonus",
            AccountKind::Jackpot => "jackpot",
            AccountKind::System => "system",
        }
    }

    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == text)
    }

    pub fn to_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(raw: u8) -> Option<Self> {
        Self::ALL.get(raw as usize).copied()
    }
}

/// What a client asks to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAccount {
    pub id: AccountId,
    pub ledger: LedgerCode,
    pub kind: AccountKind,
    pub flags: AccountFlags,
}

/// An account as the ledger holds it. Balances are sums of transfer amounts in minor units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    pub ledger: LedgerCode,
    pub kind: AccountKind,
    pub flags: AccountFlags,
    pub debits_pending: u128,
    pub debits_posted: u128,
    pub credits_pending: u128,
    pub credits_posted: u128,
    /// Ledger timestamp (ns) at which the account was created.
    pub timestamp: u64,
}

/// What a client asks to transfer. `pending_id` is 0 unless posting or voiding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewTransfer {
    pub id: TransferId,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: u64,
    pub ledger: LedgerCode,
    pub flags: TransferFlags,
    pub pending_id: TransferId,
    /// Seconds until a pending transfer expires; 0 = never. Only valid with `pending`.
    pub timeout_s: u32,
}

/// A transfer as the ledger holds it: the request plus its ledger timestamp (ns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub id: TransferId,
    pub debit_account_id: AccountId,
    pub credit_account_id: AccountId,
    pub amount: u64,
    pub ledger: LedgerCode,
    pub flags: TransferFlags,
    pub pending_id: TransferId,
    pub timeout_s: u32,
    pub timestamp: u64,
}

/// Declares a result enum whose variants have stable snake_case codes (the API spelling).
macro_rules! result_codes {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum $name { $($variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
            pub fn to_u8(self) -> u8 { self as u8 }
            pub fn from_u8(raw: u8) -> Option<Self> { Self::ALL.get(raw as usize).copied() }
            pub fn is_ok_or_exists(self) -> bool {
                self.code() == "ok" || self.code() == "exists"
            }
        }
    };
}

result_codes! {
    /// The outcome of one item of a create_accounts command.
    CreateAccountResult {
        Ok => "ok",
        Exists => "exists",
        LinkedEventFailed => "linked_event_failed",
        IdMustNotBeZero => "id_must_not_be_zero",
        IdMustNotBeReserved => "id_must_not_be_reserved",
        FlagsAreMutuallyExclusive => "flags_are_mutually_exclusive",
        KindMustNotBeHouse => "kind_must_not_be_house",
        ExistsWithDifferentLedger => "exists_with_different_ledger",
        ExistsWithDifferentKind => "exists_with_different_kind",
        ExistsWithDifferentFlags => "exists_with_different_flags",
        LinkedEventChainOpen => "linked_event_chain_open",
    }
}

result_codes! {
    /// The outcome of one item of a create_transfers command. In a failed linked chain the
    /// member that failed carries its own code; every other member `linked_event_failed`.
    CreateTransferResult {
        Ok => "ok",
        Exists => "exists",
        LinkedEventFailed => "linked_event_failed",
        LinkedEventChainOpen => "linked_event_chain_open",
        IdMustNotBeZero => "id_must_not_be_zero",
        IdMustNotBeReserved => "id_must_not_be_reserved",
        FlagsAreMutuallyExclusive => "flags_are_mutually_exclusive",
        DebitAccountIdMustNotBeZero => "debit_account_id_must_not_be_zero",
        CreditAccountIdMustNotBeZero => "credit_account_id_must_not_be_zero",
        AccountsMustBeDifferent => "accounts_must_be_different",
        PendingIdMustBeZero => "pending_id_must_be_zero",
        PendingIdMustNotBeZero => "pending_id_must_not_be_zero",
        PendingIdMustBeDifferent => "pending_id_must_be_different",
        TimeoutReservedForPendingTransfer => "timeout_reserved_for_pending_transfer",
        ClosingTransferMustBePending => "closing_transfer_must_be_pending",
        AmountMustNotBeZero => "amount_must_not_be_zero",
        DebitAccountNotFound => "debit_account_not_found",
        CreditAccountNotFound => "credit_account_not_found",
        AccountsMustHaveTheSameLedger => "accounts_must_have_the_same_ledger",
        TransferMustHaveTheSameLedgerAsAccounts => "transfer_must_have_the_same_ledger_as_accounts",
        DebitAccountAlreadyClosed => "debit_account_already_closed",
        CreditAccountAlreadyClosed => "credit_account_already_closed",
        PendingTransferNotFound => "pending_transfer_not_found",
        PendingTransferNotPending => "pending_transfer_not_pending",
        PendingTransferHasDifferentDebitAccountId => "pending_transfer_has_different_debit_account_id",
        PendingTransferHasDifferentCreditAccountId => "pending_transfer_has_different_credit_account_id",
        PendingTransferHasDifferentLedger => "pending_transfer_has_different_ledger",
        PendingTransferAlreadyPosted => "pending_transfer_already_posted",
        PendingTransferAlreadyVoided => "pending_transfer_already_voided",
        PendingTransferExpired => "pending_transfer_expired",
        ExceedsPendingTransferAmount => "exceeds_pending_transfer_amount",
        PendingTransferHasDifferentAmount => "pending_transfer_has_different_amount",
        ExistsWithDifferentFlags => "exists_with_different_flags",
        ExistsWithDifferentDebitAccountId => "exists_with_different_debit_account_id",
        ExistsWithDifferentCreditAccountId => "exists_with_different_credit_account_id",
        ExistsWithDifferentAmount => "exists_with_different_amount",
        ExistsWithDifferentPendingId => "exists_with_different_pending_id",
        ExistsWithDifferentLedger => "exists_with_different_ledger",
        ExistsWithDifferentTimeout => "exists_with_different_timeout",
        OverflowsDebits => "overflows_debits",
        OverflowsCredits => "overflows_credits",
        OverflowsTimeout => "overflows_timeout",
        ExceedsCredits => "exceeds_credits",
        ExceedsDebits => "exceeds_debits",
    }
}
