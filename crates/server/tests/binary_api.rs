//! The binary batch encoding (`application/octet-stream`, 128-byte records) through a real
//! node and socket: records in, one result byte per record out, and every bad body refused
//! with our JSON error and nothing applied.

use croupier_core::{
    AccountFlags, AccountKind, LedgerCode, NewAccount, NewTransfer, TransferFlags, BATCH_ITEMS_MAX,
};
use croupier_server::binary::{self, RECORD_SIZE_BYTES};
use serde_json::Value;

mod common;
use common::TestServer;

/// POSTs `body` with `content_type`; returns status, answer content type and answer bytes.
fn post(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let answer = server
        .request("POST", path)
        .header("content-type", content_type)
        .send(body);
    let answer_type = answer.header("content-type").unwrap_or("").to_owned();
    (answer.status, answer_type, answer.body)
}

fn post_binary(server: &TestServer, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    post(server, path, binary::CONTENT_TYPE, body)
}

fn eur() -> LedgerCode {
    LedgerCode::parse("EUR").unwrap()
}

fn account(id: u128, kind: AccountKind, flags: AccountFlags) -> NewAccount {
    NewAccount {
        id,
        ledger: eur(),
        kind,
        flags,
    }
}

fn transfer(id: u128, debit: u128, credit: u128, amount: u64) -> NewTransfer {
    NewTransfer {
        id,
        debit_account_id: debit,
        credit_account_id: credit,
        amount,
        ledger: eur(),
        flags: TransferFlags::empty(),
        pending_id: 0,
        timeout_s: 0,
    }
}

fn accounts_body(accounts: &[NewAccount]) -> Vec<u8> {
    let mut body = Vec::new();
    for account in accounts {
        binary::encode_account(account, &mut body).unwrap();
    }
    body
}

fn transfers_body(transfers: &[NewTransfer]) -> Vec<u8> {
    let mut body = Vec::new();
    for transfer in transfers {
        binary::encode_transfer(transfer, &mut body).unwrap();
    }
    body
}

fn result_bytes(codes: &[&str]) -> Vec<u8> {
    codes
        .iter()
        .map(|code| {
            (0..=u8::MAX)
                .find(|&byte| binary::transfer_result_code(byte) == Some(code))
                .unwrap_or_else(|| panic!("no byte for {code}"))
        })
        .collect()
}

fn assert_json_error(answer: (u16, String, Vec<u8>), status: u16, code: &str) -> Value {
    let (got_status, content_type, bytes) = answer;
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    assert_eq!(
        (got_status, content_type.as_str()),
        (status, "application/json"),
        "{body}"
    );
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

const CLEARING: u128 = 1;
const PLAYER: u128 = 2;

fn setup(server: &TestServer) {
    let body = accounts_body(&[
        account(CLEARING, AccountKind::Clearing, AccountFlags::empty()),
        account(
            PLAYER,
            AccountKind::Player,
            AccountFlags::DEBITS_MUST_NOT_EXCEED_CREDITS,
        ),
    ]);
    let answer = post_binary(server, "/v1/accounts", &body);
    assert_eq!(answer, (200, binary::CONTENT_TYPE.to_owned(), vec![0, 0]));
}

#[test]
fn binary_transfers_answer_one_result_byte_per_record() {
    let server = TestServer::start();
    setup(&server);
    let (_, player) = server.get(&format!("/v1/accounts/{PLAYER}"));
    assert_eq!(
        (player["kind"].as_str(), player["ledger"].as_str()),
        (Some("player"), Some("EUR"))
    );

    let batch = [
        transfer(10, CLEARING, PLAYER, 500),
        transfer(11, PLAYER, CLEARING, 501),
        transfer(12, PLAYER, CLEARING, 200),
    ];
    let (status, content_type, bytes) =
        post_binary(&server, "/v1/transfers", &transfers_body(&batch));
    assert_eq!((status, content_type.as_str()), (200, binary::CONTENT_TYPE));
    assert_eq!(bytes, result_bytes(&["ok", "exceeds_credits", "ok"]));
    // Retried: the same records answer `exists`, the refused one is refused again.
    let (_, _, bytes) = post_binary(&server, "/v1/transfers", &transfers_body(&batch));
    assert_eq!(
        bytes,
        result_bytes(&["exists", "exceeds_credits", "exists"])
    );

    let (status, stored) = server.get("/v1/transfers/10");
    assert_eq!(status, 200);
    assert_eq!(
        (stored["amount"].as_u64(), stored["ledger"].as_str()),
        (Some(500), Some("EUR"))
    );
    let (_, player) = server.get(&format!("/v1/accounts/{PLAYER}"));
    assert_eq!(
        (
            player["credits_posted"].as_u64(),
            player["debits_posted"].as_u64()
        ),
        (Some(500), Some(200))
    );
    // An empty binary body is an empty batch.
    assert_eq!(
        post_binary(&server, "/v1/transfers", &[]),
        (200, binary::CONTENT_TYPE.to_owned(), vec![])
    );
}

#[test]
fn bad_binary_bodies_answer_json_errors_and_apply_nothing() {
    let server = TestServer::start();
    setup(&server);
    let good = transfers_body(&[
        transfer(20, CLEARING, PLAYER, 5),
        transfer(21, CLEARING, PLAYER, 6),
    ]);

    assert_json_error(
        post_binary(&server, "/v1/transfers", &good[..RECORD_SIZE_BYTES + 1]),
        400,
        "invalid_request",
    );
    let too_many = good[..RECORD_SIZE_BYTES].repeat(BATCH_ITEMS_MAX + 1);
    assert_json_error(
        post_binary(&server, "/v1/transfers", &too_many),
        413,
        "too_many_items",
    );

    let with = |offset: usize, value: u8| {
        let mut body = good.clone();
        body[RECORD_SIZE_BYTES + offset] = value;
        body
    };
    for (offset, value, field) in [
        (63, 1, "amount"),        // amount above 2^64-1
        (80, 1, "user_data_128"), // data Croupier would drop
        (116, 1, "code"),
        (118, 1 << 4, "flags"), // TigerBeetle's balancing_debit: not implemented
        (112, b'e', "ledger"),  // lowercase ledger code
        (120, 1, "timestamp"),
        (16, 0, "debit_account_id"), // id of 0 (debit id 1 has a single non-zero byte)
    ] {
        let body = assert_json_error(
            post_binary(&server, "/v1/transfers", &with(offset, value)),
            400,
            "invalid_request",
        );
        assert_eq!(
            (body["index"].as_u64(), body["field"].as_str()),
            (Some(1), Some(field)),
            "{body}"
        );
    }
    assert_json_error(
        post(&server, "/v1/transfers", "application/x-tigerbeetle", &good),
        415,
        "unsupported_media_type",
    );
    assert_json_error(
        post_binary(&server, "/v1/accounts", &good[..100]),
        400,
        "invalid_request",
    );

    // None of it was applied.
    assert_eq!(server.get("/v1/transfers/20").0, 404);
    let (_, player) = server.get(&format!("/v1/accounts/{PLAYER}"));
    assert_eq!(player["credits_posted"].as_u64(), Some(0));
}

#[test]
fn openapi_documents_both_encodings_of_the_batch_routes() {
    let server = TestServer::start();
    let (status, document) = server.get("/v1/openapi.json");
    assert_eq!(status, 200);
    for path in ["/v1/accounts", "/v1/transfers"] {
        let operation = &document["paths"][path]["post"];
        let request = &operation["requestBody"]["content"];
        let answer = &operation["responses"]["200"]["content"];
        for content in [request, answer] {
            assert!(
                content.get("application/json").is_some(),
                "{path}: {content}"
            );
            assert!(
                content.get("application/octet-stream").is_some(),
                "{path}: {content}"
            );
        }
    }
}
