//! The binary codec: round trips, a pinned byte layout, and decoding that never panics.

mod common;

use common::*;
use croupier_core::codec::{
    decode_checkpoint, decode_proposal, decode_record, decode_results, encode_proposal,
    encode_record, encode_results, DecodeError, CHECKPOINT_FORMAT_VERSION, PROPOSAL_FORMAT_VERSION,
    RESULTS_FORMAT_VERSION, TRANSFER_ENCODED_BYTES,
};
use croupier_core::command::Proposal;
use croupier_core::consumers::{ConsumerAck, ConsumerOutcome};
use croupier_core::MemoryLedger;
use croupier_core::{
    AccountFlags, AccountKind, Command, CommandResult, CreateAccountResult, CreateTransferResult,
    NewAccount, TransferFlags, WalletOutcome, BATCH_ITEMS_MAX,
};
use proptest::prelude::*;

fn every_command() -> Proposal {
    Proposal {
        timestamp_ns: T0,
        commands: vec![
            Command::CreateAccounts(vec![NewAccount {
                flags: AccountFlags::LINKED,
                ..account(7, AccountKind::Player)
            }]),
            Command::CreateTransfers(vec![linked(pending(1, 2, 3, 4, 5)), post(6, 1, 0)]),
            Command::WalletBet(bet("b-1", 7, "round-9", 250)),
            Command::WalletWin(win("w-1", 7, "round-9", 500)),
            Command::WalletRollback(rollback("rb-1", 7, "round-9", "b-1")),
            Command::Tick,
            Command::ConsumerAck(ConsumerAck {
                name: "webhook-ops".into(),
                position: 42,
            }),
        ],
    }
}

fn encoded(proposal: &Proposal) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_proposal(proposal, &mut bytes);
    bytes
}

/// A ledger with accounts, every kind of transfer, an expiry and every kind of wallet entry.
fn busy_ledger() -> Harness {
    let mut h = Harness::with_players(&[20, 21], 100);
    h.accounts_ok(vec![
        account(10, AccountKind::System),
        account(11, AccountKind::Clearing),
    ]);
    let closing = croupier_core::NewTransfer {
        flags: TransferFlags::PENDING.union(TransferFlags::CLOSING_CREDIT),
        ..pending(4, 10, 11, 1, 0)
    };
    h.transfers(vec![
        pending(1, 10, 11, 5, 2),
        pending(2, 10, 11, 6, 0),
        pending(3, 10, 11, 7, 0),
        closing,
    ]);
    h.transfers(vec![post(5, 2, 3), void(6, 3)]);
    h.bet("b1", 20, "r1", 30);
    h.bet("b2", 20, "r1", 1_000);
    h.win("w1", 21, "r2", 10);
    h.rollback("rb1", 20, "r1", "b1");
    h.rollback("rb2", 21, "r3", "never-seen");
    h.advance_s(10);
    h.apply(vec![Command::Tick]);
    h.apply(vec![
        Command::ConsumerAck(ConsumerAck {
            name: "webhook-ops".into(),
            position: 77,
        }),
        Command::ConsumerAck(ConsumerAck {
            name: "aml".into(),
            position: 5,
        }),
    ]);
    h.apply(vec![Command::ByOperator {
        key_id: "finance-1".into(),
        command: Box::new(Command::CreateTransfers(vec![transfer(7, 10, 11, 3)])),
        recorded: true,
    }]);
    h
}

fn snapshot(h: &Harness) -> Vec<u8> {
    h.ledger.checkpoint()
}

fn restore(h: &Harness, checkpoint: &[u8]) -> Result<MemoryLedger, DecodeError> {
    MemoryLedger::restore(checkpoint, h.ledger.history.clone())
}

#[test]
fn every_command_kind_round_trips() {
    let proposal = every_command();
    assert_eq!(decode_proposal(&encoded(&proposal)).unwrap(), proposal);
}

#[test]
fn transfer_layout_is_pinned() {
    let proposal = Proposal {
        timestamp_ns: 0x0102_0304_0506_0708,
        commands: vec![Command::CreateTransfers(vec![croupier_core::NewTransfer {
            flags: TransferFlags::PENDING,
            timeout_s: 0x0A0B_0C0D,
            pending_id: 0,
            ..transfer(0x11, 0x22, 0x33, 0x44)
        }])],
    };
    let bytes = encoded(&proposal);
    let mut expected = vec![
        PROPOSAL_FORMAT_VERSION,
        8,
        7,
        6,
        5,
        4,
        3,
        2,
        1,
        1,
        0,
        0,
        0,
        2,
        1,
        0,
        0,
        0,
    ];
    for id in [0x11u128, 0x22, 0x33] {
        expected.extend_from_slice(&id.to_le_bytes());
    }
    expected.extend_from_slice(&0x44u64.to_le_bytes());
    expected.extend_from_slice(&[0, 0, 0, 0, 0, b'R', b'U', b'E']);
    expected.extend_from_slice(&[2, 0]);
    expected.extend_from_slice(&[0; 16]);
    expected.extend_from_slice(&[0x0D, 0x0C, 0x0B, 0x0A]);
    assert_eq!(bytes, expected);
}

#[test]
fn a_full_batch_of_transfers_costs_86_bytes_each() {
    let items = (1..=BATCH_ITEMS_MAX as u128)
        .map(|id| transfer(id, 1, 2, 3))
        .collect();
    let bytes = encoded(&Proposal {
        timestamp_ns: T0,
        commands: vec![Command::CreateTransfers(items)],
    });
    assert_eq!(TRANSFER_ENCODED_BYTES, 86);
    assert_eq!(
        bytes.len(),
        1 + 8 + 4 + 1 + 4 + BATCH_ITEMS_MAX * TRANSFER_ENCODED_BYTES
    );
}

#[test]
fn unknown_version_is_refused() {
    let mut bytes = encoded(&every_command());
    bytes[0] = 99;
    assert_eq!(decode_proposal(&bytes), Err(DecodeError::Version(99)));
    let mut snapshot = snapshot(&busy_ledger());
    snapshot[0] = 0;
    assert_eq!(
        decode_checkpoint(&snapshot).unwrap_err(),
        DecodeError::Version(0)
    );
}

#[test]
fn every_strict_prefix_of_a_proposal_is_refused() {
    let bytes = encoded(&every_command());
    for len in 0..bytes.len() {
        assert!(
            decode_proposal(&bytes[..len]).is_err(),
            "prefix of {len} bytes decoded"
        );
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = encoded(&every_command());
    bytes.push(0);
    assert!(matches!(
        decode_proposal(&bytes),
        Err(DecodeError::Invalid {
            what: "trailing bytes",
            ..
        })
    ));
}

#[test]
fn bad_fields_are_named_with_their_offset() {
    let base = encoded(&Proposal {
        timestamp_ns: 1,
        commands: vec![Command::WalletBet(bet("b", 7, "r", 1))],
    });
    let command_at = 13;
    let key_at = command_at + 1;
    let cases: Vec<(usize, u8, &str)> = vec![
        (command_at, 42, "command tag"),
        (key_at, 0, "wallet key length"),
        (key_at + 2, 0xFF, "UTF-8 key"),
    ];
    for (at, byte, what) in cases {
        let mut bytes = base.clone();
        bytes[at] = byte;
        match decode_proposal(&bytes) {
            Err(DecodeError::Invalid {
                what: found,
                offset,
            }) => {
                assert_eq!(found, what);
                assert!(offset >= command_at);
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    let mut oversized = base[..key_at].to_vec();
    oversized.extend_from_slice(&129u16.to_le_bytes());
    oversized.extend_from_slice(&[b'x'; 129]);
    oversized.extend_from_slice(&base[key_at + 3..]);
    assert!(matches!(
        decode_proposal(&oversized),
        Err(DecodeError::Invalid {
            what: "wallet key length",
            ..
        })
    ));
}

#[test]
fn a_huge_count_does_not_allocate_and_is_refused() {
    let mut bytes = vec![PROPOSAL_FORMAT_VERSION];
    bytes.extend_from_slice(&T0.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.push(2);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode_proposal(&bytes),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
#[should_panic(expected = "wallet key cannot be encoded")]
fn encoding_an_empty_key_is_a_caller_bug() {
    encoded(&Proposal {
        timestamp_ns: 1,
        commands: vec![Command::WalletBet(bet("", 7, "r", 1))],
    });
}

#[test]
fn checkpoint_round_trips_byte_for_byte_and_behaves_the_same() {
    let mut h = busy_ledger();
    let bytes = snapshot(&h);
    let mut restored = restore(&h, &bytes).unwrap();
    assert_eq!(restored.checkpoint(), bytes);
    restored.check_invariants().unwrap();
    assert_eq!(restored.totals(), h.ledger.totals());
    for id in [10, 11, 20, 21] {
        assert_eq!(restored.account(id), h.ledger.account(id));
        assert_eq!(
            restored.account_transfers(id, 100),
            h.ledger.account_transfers(id, 100)
        );
    }
    // Further commands give the same answers on both.
    let next = vec![
        Command::CreateTransfers(vec![
            post(7, 2, 0),
            void(8, 4),
            post(9, 1, 0),
            transfer(10, 10, 11, 1),
        ]),
        Command::WalletBet(bet("late", 20, "r1", 1)),
        Command::WalletBet(bet("never-seen", 21, "r3", 1)),
        Command::WalletRollback(rollback("rb3", 20, "r1", "b1")),
        Command::WalletBet(bet("b2", 20, "r1", 1_000)),
    ];
    let now = h.now + SECOND_NS;
    assert_eq!(restored.apply(now, &next), h.ledger.apply(now, &next));
    assert_eq!(restored.state_bytes(), h.ledger.state_bytes());
}

#[test]
fn consumer_cursors_survive_a_checkpoint() {
    let h = busy_ledger();
    let restored = restore(&h, &snapshot(&h)).unwrap();
    assert_eq!(restored.ledger.consumer_cursor("webhook-ops"), Some(77));
    assert_eq!(restored.ledger.consumer_cursor("aml"), Some(5));
    assert_eq!(restored.ledger.consumer_cursor("webhook-other"), None);
}

#[test]
fn a_consumer_ack_with_a_name_the_ledger_would_refuse_does_not_decode() {
    let proposal = Proposal {
        timestamp_ns: T0,
        commands: vec![Command::ConsumerAck(ConsumerAck {
            name: "aml".into(),
            position: 1,
        })],
    };
    let mut bytes = encoded(&proposal);
    let name_at = bytes.len() - 8 - 3;
    bytes[name_at] = b'A';
    assert!(matches!(
        decode_proposal(&bytes),
        Err(DecodeError::Invalid {
            what: "consumer name",
            ..
        })
    ));
}

#[test]
fn every_history_record_round_trips_through_the_codec() {
    let h = busy_ledger();
    assert!(h.ledger.history.records().len() > 10);
    for record in h.ledger.history.records() {
        let mut bytes = Vec::new();
        encode_record(record, &mut bytes);
        assert_eq!(&decode_record(&bytes).unwrap(), record);
    }
}

/// The compliance section of a checkpoint without registered players (version 8): the
/// default policy (three levels, a u64 and a level, then a u16 count) and two u64 counts
/// (players, cases); then the empty payments section (version 10): a u16 count (connectors)
/// and two u64 counts (deposits, withdrawals); then the empty consumer cursors (version 11): a
/// u64 count; then the case decided last (version 12): u128 0.
const EMPTY_COMPLIANCE_BYTES: usize = 3 + 8 + 1 + 2 + 8 + 8 + 2 + 8 + 8 + 8 + 16;

#[test]
fn empty_ledger_round_trips() {
    let h = Harness::new();
    let bytes = snapshot(&h);
    assert_eq!(
        bytes.len(),
        1 + 8 * 4 + 8 * 4 + 8 + 32 + 4 + EMPTY_COMPLIANCE_BYTES
    );
    let restored = restore(&h, &bytes).unwrap();
    assert_eq!(restored.totals(), h.ledger.totals());
}

#[test]
fn checkpoints_written_before_players_existed_still_load() {
    let h = Harness::new();
    let mut bytes = snapshot(&h);
    // Version 2 ended after the pending transfers: no player or session counts.
    bytes[0] = 2;
    bytes.truncate(bytes.len() - 16 - 40 - 4 - EMPTY_COMPLIANCE_BYTES);
    let restored = restore(&h, &bytes).unwrap();
    assert_eq!(restored.totals(), h.ledger.totals());
}

#[test]
fn checkpoints_written_before_the_operator_trail_still_load() {
    let h = Harness::with_players(&[20], 100);
    let mut bytes = snapshot(&h);
    // Version 3 ended after the sessions: no operator chain.
    bytes[0] = 3;
    bytes.truncate(bytes.len() - 40 - 4 - EMPTY_COMPLIANCE_BYTES);
    let restored = restore(&h, &bytes).unwrap();
    assert_eq!(restored.totals(), h.ledger.totals());
    assert_eq!(restored.ledger.operator_chain().count, 0);
}

#[test]
fn checkpoints_written_before_tables_still_load() {
    let h = Harness::with_players(&[20], 100);
    let mut bytes = snapshot(&h);
    // Version 4 ended after the operator chain: no tables section.
    bytes[0] = 4;
    bytes.truncate(bytes.len() - 4 - EMPTY_COMPLIANCE_BYTES);
    let restored = restore(&h, &bytes).unwrap();
    assert_eq!(restored.totals(), h.ledger.totals());
    assert_eq!(restored.ledger.tables().count(), 0);
}

#[test]
fn the_operator_trail_head_survives_a_checkpoint() {
    let h = busy_ledger();
    let chain = h.ledger.ledger.operator_chain();
    assert_eq!(chain.count, 1);
    let restored = restore(&h, &snapshot(&h)).unwrap();
    assert_eq!(restored.ledger.operator_chain(), chain);
}

#[test]
fn every_strict_prefix_of_a_checkpoint_is_refused() {
    let bytes = snapshot(&busy_ledger());
    for len in 0..bytes.len() {
        assert!(
            decode_checkpoint(&bytes[..len]).is_err(),
            "prefix of {len} bytes decoded"
        );
    }
}

#[test]
fn checkpoint_whose_balances_do_not_balance_is_refused() {
    let h = busy_ledger();
    let bytes = snapshot(&h);
    // The first account's debits_posted (after version, clock, 3 counters, count, id, ledger,
    // kind, flags, flags_at_creation, debits_pending): add one to its lowest byte.
    let at = 1 + 8 * 4 + 8 + 16 + 8 + 1 + 2 + 2 + 16;
    let mut tampered = bytes.clone();
    tampered[at] = tampered[at].wrapping_add(1);
    assert!(
        matches!(
            decode_checkpoint(&tampered),
            Err(DecodeError::Inconsistent(_))
        ),
        "{:?}",
        decode_checkpoint(&tampered)
    );
}

/// Regression (found by the corruption property test): a checkpoint whose pending transfers
/// were out of sequence order decoded, and re-encoded to other bytes.
#[test]
fn checkpoint_with_pendings_out_of_order_is_refused() {
    let mut h = Harness::with_players(&[20], 1_000);
    assert_eq!(
        h.transfer(pending(1, BANK, 20, 5, 0)),
        croupier_core::CreateTransferResult::Ok
    );
    assert_eq!(
        h.transfer(pending(2, BANK, 20, 6, 0)),
        croupier_core::CreateTransferResult::Ok
    );
    let bytes = snapshot(&h);
    let record = croupier_core::codec::TRANSFER_RECORD_BYTES;
    // After the pendings: players and sessions (counts), the operator chain, tables, compliance.
    let tail = 8 + 8 + 8 + 32 + 4 + EMPTY_COMPLIANCE_BYTES;
    let (head, rest) = bytes.split_at(bytes.len() - tail - 2 * record);
    let (pendings, tail) = rest.split_at(2 * record);
    let mut swapped = head.to_vec();
    swapped.extend_from_slice(&pendings[record..]);
    swapped.extend_from_slice(&pendings[..record]);
    swapped.extend_from_slice(tail);
    assert!(matches!(
        decode_checkpoint(&swapped),
        Err(DecodeError::Invalid {
            what: "pending transfer order",
            ..
        })
    ));
}

#[test]
fn checkpoint_whose_balances_disagree_with_history_is_caught_by_the_full_check() {
    let h = busy_ledger();
    let mut bytes = snapshot(&h);
    // Move one unit of posted credits from the first account to the second (both system
    // accounts, no limits): the checkpoint still balances, but history disagrees.
    let account = 16 + 8 + 1 + 2 + 2 + 16 * 4 + 8 + 8;
    let first_credits_posted = 1 + 8 * 4 + 8 + 16 + 8 + 1 + 2 + 2 + 16 * 3;
    bytes[first_credits_posted] = bytes[first_credits_posted].wrapping_add(1);
    bytes[first_credits_posted + account] = bytes[first_credits_posted + account].wrapping_sub(1);
    if let Ok(restored) = restore(&h, &bytes) {
        assert!(restored.check_invariants().is_err());
    }
}

/// Every wallet outcome, with and without a transfer id.
fn every_wallet_outcome() -> Vec<WalletOutcome> {
    vec![
        WalletOutcome::Ok {
            balance: u128::MAX,
            transfer_id: Some(u128::MAX - 1),
        },
        WalletOutcome::Ok {
            balance: 0,
            transfer_id: None,
        },
        WalletOutcome::InsufficientFunds { balance: 17 },
        WalletOutcome::TransactionConflict,
        WalletOutcome::PlayerNotFound,
        WalletOutcome::NotAPlayerAccount,
        WalletOutcome::LedgerMismatch,
        WalletOutcome::PlayerAccountClosed,
        WalletOutcome::BetAlreadyRolledBack,
        WalletOutcome::BetAlreadySettled,
        WalletOutcome::RollbackTargetInvalid,
        WalletOutcome::AmountMustNotBeZero,
        WalletOutcome::RoundMismatch,
        WalletOutcome::Refused(croupier_core::compliance::Refusal::LossLimitReached),
    ]
}

/// Every variant, every result code and every wallet outcome in one batch.
fn every_result() -> Vec<CommandResult> {
    let mut results = vec![
        CommandResult::Accounts(CreateAccountResult::ALL.to_vec()),
        CommandResult::Transfers(CreateTransferResult::ALL.to_vec()),
        CommandResult::Accounts(Vec::new()),
        CommandResult::Transfers(Vec::new()),
        CommandResult::Tick,
    ];
    results.extend(
        every_wallet_outcome()
            .into_iter()
            .map(CommandResult::Wallet),
    );
    use croupier_core::compliance::{ComplianceOutcome as C, Refusal};
    results.extend(
        [
            C::Ok,
            C::Deposited { balance: 9 },
            C::Refused(Refusal::SelfExcluded),
            C::PlayerNotFound,
            C::NoWalletInCurrency,
            C::SelfExclusionActive,
            C::DepositRefused(CreateTransferResult::ExceedsCredits),
            C::CaseNotFound,
            C::CaseClosed,
            C::CaseConflict,
        ]
        .map(CommandResult::Compliance),
    );
    results.extend(
        [ConsumerOutcome::Ok, ConsumerOutcome::TooManyConsumers].map(CommandResult::Consumer),
    );
    results
}

fn encoded_results(results: &[CommandResult]) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_results(results, &mut bytes);
    bytes
}

fn command_result() -> impl Strategy<Value = CommandResult> {
    let account = prop::sample::select(CreateAccountResult::ALL);
    let transfer = prop::sample::select(CreateTransferResult::ALL);
    prop_oneof![
        prop::collection::vec(account, 0..20).prop_map(CommandResult::Accounts),
        prop::collection::vec(transfer, 0..20).prop_map(CommandResult::Transfers),
        prop::sample::select(every_wallet_outcome()).prop_map(CommandResult::Wallet),
        (any::<u128>(), any::<Option<u128>>()).prop_map(|(balance, transfer_id)| {
            CommandResult::Wallet(WalletOutcome::Ok {
                balance,
                transfer_id,
            })
        }),
        any::<u128>().prop_map(
            |balance| CommandResult::Wallet(WalletOutcome::InsufficientFunds { balance })
        ),
        Just(CommandResult::Tick),
    ]
}

#[test]
fn every_result_variant_code_and_outcome_round_trips() {
    let results = every_result();
    assert_eq!(decode_results(&encoded_results(&results)).unwrap(), results);
    assert_eq!(decode_results(&encoded_results(&[])).unwrap(), Vec::new());
}

#[test]
fn result_layout_is_pinned() {
    let results = vec![
        CommandResult::Transfers(vec![CreateTransferResult::Ok, CreateTransferResult::Exists]),
        CommandResult::Wallet(WalletOutcome::PlayerNotFound),
        CommandResult::Tick,
    ];
    let expected = vec![
        RESULTS_FORMAT_VERSION,
        3,
        0,
        0,
        0,
        2, // transfers
        2,
        0,
        0,
        0,
        0, // ok
        1, // exists
        3, // wallet
        3, // player_not_found, as in a wallet record
        4, // tick
    ];
    assert_eq!(encoded_results(&results), expected);
}

#[test]
fn every_strict_prefix_of_results_is_refused() {
    let bytes = encoded_results(&every_result());
    for len in 0..bytes.len() {
        assert!(
            decode_results(&bytes[..len]).is_err(),
            "prefix of {len} bytes decoded"
        );
    }
}

#[test]
fn results_with_trailing_bytes_are_refused() {
    let mut bytes = encoded_results(&every_result());
    bytes.push(4);
    assert!(matches!(
        decode_results(&bytes),
        Err(DecodeError::Invalid {
            what: "trailing bytes",
            ..
        })
    ));
}

#[test]
fn unknown_results_version_tag_or_code_is_refused() {
    let base = encoded_results(&[CommandResult::Accounts(vec![CreateAccountResult::Ok])]);
    let mut version = base.clone();
    version[0] = 9;
    assert_eq!(decode_results(&version), Err(DecodeError::Version(9)));
    let cases: [(usize, u8, &str); 3] = [
        (5, 0, "result tag"),
        (5, 10, "result tag"),
        (
            10,
            CreateAccountResult::ALL.len() as u8,
            "account result code",
        ),
    ];
    for (at, byte, what) in cases {
        let mut bytes = base.clone();
        bytes[at] = byte;
        match decode_results(&bytes) {
            Err(DecodeError::Invalid {
                what: found,
                offset,
            }) => {
                assert_eq!((found, offset), (what, at));
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    let mut transfers =
        encoded_results(&[CommandResult::Transfers(vec![CreateTransferResult::Ok])]);
    transfers[10] = CreateTransferResult::ALL.len() as u8;
    assert!(decode_results(&transfers).is_err());
    let mut wallet = encoded_results(&[CommandResult::Wallet(WalletOutcome::PlayerNotFound)]);
    wallet[6] = 2 + 10 + 1; // one past the last plain outcome and the refusal
    assert!(decode_results(&wallet).is_err());
}

#[test]
fn an_absurd_result_count_is_refused_without_allocating() {
    let mut bytes = vec![RESULTS_FORMAT_VERSION];
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode_results(&bytes),
        Err(DecodeError::Truncated { .. })
    ));
    // The same for the codes of one result: u32::MAX one-byte codes would be 4 GiB.
    let mut items = vec![RESULTS_FORMAT_VERSION];
    items.extend_from_slice(&1u32.to_le_bytes());
    items.push(2);
    items.extend_from_slice(&u32::MAX.to_le_bytes());
    items.push(0);
    assert!(matches!(
        decode_results(&items),
        Err(DecodeError::Truncated { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_batch_of_results_round_trips_to_the_same_bytes(
        results in prop::collection::vec(command_result(), 0..12),
    ) {
        let bytes = encoded_results(&results);
        let decoded = decode_results(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&decoded, &results);
        prop_assert_eq!(encoded_results(&decoded), bytes);
    }

    #[test]
    fn decoding_random_results_never_panics_and_is_canonical(
        tail in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![RESULTS_FORMAT_VERSION];
        bytes.extend_from_slice(&tail);
        for input in [&tail[..], &bytes[..]] {
            if let Ok(results) = decode_results(input) {
                prop_assert_eq!(encoded_results(&results), input.to_vec());
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn decoding_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_proposal(&bytes);
        let _ = decode_checkpoint(&bytes);
        let _ = decode_record(&bytes);
    }

    #[test]
    fn decoding_random_bytes_after_a_valid_header_never_panics(
        tail in prop::collection::vec(any::<u8>(), 0..400),
        commands in 0u32..4,
    ) {
        let mut bytes = vec![PROPOSAL_FORMAT_VERSION];
        bytes.extend_from_slice(&T0.to_le_bytes());
        bytes.extend_from_slice(&commands.to_le_bytes());
        bytes.extend_from_slice(&tail);
        let _ = decode_proposal(&bytes);
        let mut snapshot = vec![CHECKPOINT_FORMAT_VERSION];
        snapshot.extend_from_slice(&tail);
        let _ = decode_checkpoint(&snapshot);
    }

    #[test]
    fn a_corrupted_proposal_either_fails_or_re_encodes_to_the_same_bytes(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encoded(&every_command());
        for (index, byte) in flips {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        if let Ok(proposal) = decode_proposal(&bytes) {
            prop_assert_eq!(encoded(&proposal), bytes);
        }
    }

    #[test]
    fn a_corrupted_snapshot_never_panics_and_never_decodes_differently(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let original = snapshot(&busy_ledger());
        let mut bytes = original.clone();
        for (index, byte) in flips {
            let at = index.index(bytes.len());
            bytes[at] = byte;
        }
        let h = busy_ledger();
        if let Ok(ledger) = restore(&h, &bytes) {
            // An older version's layout may coincide with this one's where a section is empty
            // (version 11 without payments): it decodes to the same state, written as today's.
            let older_same = bytes[0] < original[0] && ledger.checkpoint() == original;
            if !older_same {
                prop_assert_eq!(ledger.checkpoint(), bytes);
            }
            ledger.ledger.check_hot_invariants().map_err(TestCaseError::fail)?;
        }
    }
}

/// An entry's meaning never changes: operator commands logged before the audit trail existed
/// (tag 11) apply without a trail record, so replicas that replay them from different
/// checkpoints still agree; new ones (tag 12) leave one.
#[test]
fn operator_commands_logged_before_the_trail_apply_without_a_record() {
    let wrapped = |recorded| Command::ByOperator {
        key_id: "ops".into(),
        command: Box::new(Command::Tick),
        recorded,
    };
    for (recorded, tag) in [(false, 11), (true, 12)] {
        let proposal = Proposal {
            timestamp_ns: T0,
            commands: vec![wrapped(recorded)],
        };
        let bytes = encoded(&proposal);
        assert_eq!(
            bytes[1 + 8 + 4],
            tag,
            "version, timestamp, count, then the tag"
        );
        assert_eq!(decode_proposal(&bytes).unwrap(), proposal);
    }
    let mut h = Harness::new();
    h.apply(vec![wrapped(false)]);
    assert_eq!(h.ledger.ledger.operator_chain().count, 0);
    h.apply(vec![wrapped(true)]);
    assert_eq!(h.ledger.ledger.operator_chain().count, 1);
}
