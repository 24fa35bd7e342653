//! The live push over a real WebSocket: a table's messages arrive in `seq` order with nothing
//! missing, a reconnect with `after` resumes with no gap and no duplicate, a player sees their
//! own result, a client whose queue overflows is closed with 1008, and bad handshakes answer
//! JSON errors.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{player, TestServer};
use croupier_core::tables::TableLimits;
use croupier_core::LedgerCode;
use croupier_server::live::LiveLimits;
use croupier_server::tables::TableSpec;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

const TABLE: u32 = 5;

fn server(live: LiveLimits) -> TestServer {
    TestServer::start_with(|config| {
        config.tables = vec![TableSpec {
            table_id: TABLE,
            game: "roulette".into(),
            currency: LedgerCode::parse("EUR").unwrap(),
            betting_window_ms: 700,
            draw_delay_ms: 50,
            bets_total_interval_ms: croupier_server::tables::defaults::BETS_TOTAL_INTERVAL_MS,
            limits: TableLimits {
                bet_min: 1,
                bet_max: 1_000,
                round_stake_max: 1_000_000,
                payout_max: 1_000_000,
                bets_per_round_max: 1_000,
            },
            studio: None,
        }];
        config.live = live;
    })
}

type Socket = WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>;

fn connect(node: &TestServer, query: &str, token: Option<&str>) -> Socket {
    let url = format!("ws://{}/v1/live?{query}", node.addr());
    let mut request = url.into_client_request().unwrap();
    let protocols = match token {
        Some(token) => format!("croupier.live.v1, bearer.{token}"),
        None => "croupier.live.v1".into(),
    };
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    let (socket, response) = tungstenite::connect(request).expect("handshake");
    let selected = response.headers().get("sec-websocket-protocol").unwrap();
    assert_eq!(selected, "croupier.live.v1", "the token is never echoed");
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
    }
    socket
}

/// The next JSON message (control frames skipped).
fn next(socket: &mut Socket) -> Value {
    loop {
        match socket.read().expect("a message") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Messages until one of `kind` for a round after `after_round` (inclusive of it).
fn until(socket: &mut Socket, kind: &str, round_above: u64) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let message = next(socket);
        let done = message["type"] == kind && message["round_id"].as_u64().unwrap() > round_above;
        seen.push(message);
        if done {
            return seen;
        }
    }
}

fn seq(message: &Value) -> u64 {
    message["seq"].as_u64().unwrap()
}

fn hex_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[test]
fn messages_arrive_in_seq_order_and_a_resume_has_no_gap_and_no_duplicate() {
    let node = server(LiveLimits::default());
    let mut socket = connect(&node, &format!("table={TABLE}"), None);
    let first = until(&mut socket, "round_opened", 0);
    let opened_round = first.last().unwrap()["round_id"].as_u64().unwrap();
    let mut seen = first;
    seen.extend(until(&mut socket, "round_settled", opened_round));
    seen.extend(until(&mut socket, "round_drawn", opened_round));
    for pair in seen.windows(2) {
        assert_eq!(seq(&pair[1]), seq(&pair[0]) + 1, "{pair:?}");
    }
    let opened = seen
        .iter()
        .find(|m| m["type"] == "round_opened" && m["round_id"] == opened_round)
        .unwrap();
    let drawn = seen
        .iter()
        .find(|m| m["type"] == "round_drawn" && m["round_id"] == opened_round)
        .unwrap();
    let revealed = drawn["server_seed"].as_str().unwrap();
    assert_eq!(hex_sha256(revealed), opened["commitment"].as_str().unwrap());
    assert_eq!(opened["client_seed"], format!("table:{TABLE}"));
    let pocket: u8 = drawn["label"].as_str().unwrap().parse().unwrap();
    assert!(pocket <= 36);
    assert!(opened["closes_at"].as_str().unwrap().ends_with('Z'));
    drop(socket);

    // Resume from the middle: every message after it, the same bytes' worth, then live.
    let resume_after = seq(&seen[seen.len() / 2]);
    let mut resumed = connect(&node, &format!("table={TABLE}&after={resume_after}"), None);
    let replayed: Vec<Value> = (0..seen.len() + 2).map(|_| next(&mut resumed)).collect();
    assert_eq!(seq(&replayed[0]), resume_after + 1);
    for pair in replayed.windows(2) {
        assert_eq!(seq(&pair[1]), seq(&pair[0]) + 1);
    }
    for message in &replayed {
        if let Some(earlier) = seen.iter().find(|m| seq(m) == seq(message)) {
            assert_eq!(earlier, message, "a replayed message is the one first sent");
        }
    }
}

#[test]
fn a_player_connected_with_a_token_receives_their_own_result() {
    let node = server(LiveLimits::default());
    let (_alice, token) = player(&node, "alice", 10_000);
    let mut socket = connect(&node, &format!("table={TABLE}"), Some(&token));
    let deadline = Instant::now() + Duration::from_secs(60);
    let round = loop {
        assert!(Instant::now() < deadline, "no bet was accepted");
        let opened = until(&mut socket, "round_opened", 0).pop().unwrap();
        let round = opened["round_id"].as_u64().unwrap();
        let bet = json!({"bet_id": round.to_string(), "round_id": round, "spots": [{"bet": "red", "amount": 100}, {"bet": "straight:0", "amount": 5}]});
        let (status, answer) = node
            .request("POST", &format!("/v1/tables/{TABLE}/bets"))
            .bearer(Some(&token))
            .header("content-type", "application/json")
            .send(bet.to_string().as_bytes())
            .status_json();
        match status {
            200 => break round,
            409 => continue, // the window closed first on a slow machine
            _ => panic!("{status} {answer}"),
        }
    };
    let settled = until(&mut socket, "round_settled", round - 1)
        .pop()
        .unwrap();
    assert_eq!(settled["round_id"], round);
    let own = &settled["player"];
    assert_eq!(
        (own["bets"].as_u64(), own["stake"].as_u64()),
        (Some(1), Some(105))
    );
    let paid = own["paid"].as_u64().unwrap();
    assert_eq!(own["balance"].as_u64(), Some(10_000 - 105 + paid));
}

#[test]
fn a_client_whose_queue_overflows_is_closed_with_1008() {
    // A queue of 64 bytes holds no message: the first live one evicts the client.
    let node = server(LiveLimits {
        client_queue_bytes_max: 64,
        ..LiveLimits::default()
    });
    let mut socket = connect(&node, &format!("table={TABLE}"), None);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "never closed");
        match socket.read() {
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(frame.code, CloseCode::Policy);
                break;
            }
            Ok(_) => continue,
            Err(error) => panic!("ended without a close frame: {error}"),
        }
    }
    // The table goes on: a new client still gets messages.
    let mut other = connect(&node, &format!("table={TABLE}"), None);
    assert!(other.read().is_ok());
}

#[test]
fn bad_live_requests_answer_json_errors() {
    let node = server(LiveLimits::default());
    let (status, body) = node.get(&format!("/v1/live?table={TABLE}"));
    assert_eq!(
        (status, body["error"].as_str()),
        (426, Some("upgrade_required"))
    );
    let (status, body) = node.get("/v1/live?table=999");
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("table_not_found"))
    );
    for query in ["table=0", "table=x", "", &format!("table={TABLE}&after=-1")] {
        let (status, body) = node.get(&format!("/v1/live?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
    }
    let url = format!("ws://{}/v1/live?table={TABLE}", node.addr());
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "croupier.live.v1, bearer.crs.not-a-session"
            .parse()
            .unwrap(),
    );
    match tungstenite::connect(request) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!(
            "a bad token was let in: {:?}",
            other.map(|(_, r)| r.status())
        ),
    }
}

#[test]
fn a_due_reality_check_is_pushed_with_session_time_and_net_position_and_holds_bets() {
    let node = server(LiveLimits::default());
    let (alice, token) = player(&node, "alice", 10_000);
    let bet = |tx: &str| {
        let body = json!({"transaction_id": tx, "player_id": alice, "round_id": tx, "amount": 100, "ledger": "EUR"});
        node.post("/v1/wallet/bet", &body)
    };
    let path = format!("/v1/players/{alice}/reality-check");
    let (status, set) = node
        .request("PUT", &path)
        .bearer(Some(&token))
        .header("content-type", "application/json")
        .send(br#"{"interval_minutes":1}"#)
        .status_json();
    assert_eq!(status, 200, "{set}");
    assert_eq!(
        (set["interval_minutes"].as_u64(), &set["due"]),
        (Some(1), &json!(false))
    );
    assert_eq!(bet("b1").0, 200);
    // The check falls due a minute after the login; the screen gets it without asking.
    let mut socket = connect(&node, &format!("table={TABLE}"), Some(&token));
    let deadline = Instant::now() + Duration::from_secs(120);
    let pushed = loop {
        assert!(Instant::now() < deadline, "no reality check was pushed");
        let message = next(&mut socket);
        if message["type"] == "reality_check" {
            break message;
        }
    };
    assert_eq!(pushed["due"], true);
    assert!(pushed["session_minutes"].as_u64().unwrap() >= 1, "{pushed}");
    assert_eq!(
        pushed["net_position"],
        json!([{"currency": "EUR", "wagered": 100, "returned": 0, "net": -100}])
    );
    let (status, refused) = bet("b2");
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("reality_check_due"))
    );
    let (status, acknowledged) = node
        .request("POST", &format!("{path}/acknowledgement"))
        .bearer(Some(&token))
        .send(b"")
        .status_json();
    assert_eq!(status, 200, "{acknowledged}");
    assert_eq!(acknowledged["due"], false);
    assert!(acknowledged["acknowledged_at"].is_string());
    assert_eq!(bet("b3").0, 200);
}

type BetSocket = Socket;

/// A betting socket on `table`, as the player whose session `token` names (header, as a
/// program would send it).
fn bet_socket(node: &TestServer, table: u32, token: &str) -> BetSocket {
    let url = format!("ws://{}/v1/tables/{table}/bet-socket", node.addr());
    let mut request = url.into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    headers.insert(
        "sec-websocket-protocol",
        "croupier.bets.v1".parse().unwrap(),
    );
    let (socket, response) = tungstenite::connect(request).expect("handshake");
    let selected = response.headers().get("sec-websocket-protocol").unwrap();
    assert_eq!(selected, "croupier.bets.v1");
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
    }
    socket
}

/// Sends `frame` and reads the answer to it.
fn bet_over(socket: &mut BetSocket, frame: Message) -> Value {
    socket.send(frame).unwrap();
    next(socket)
}

fn bet_frame(bet_id: &str, round: u64, spots: Value) -> Message {
    let bet = json!({"bet_id": bet_id, "round_id": round, "spots": spots});
    Message::text(bet.to_string())
}

/// The round id of the table's current round once it is open.
fn open_round(node: &TestServer) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no round opened");
        let (status, tables) = node.get("/v1/tables");
        assert_eq!(status, 200, "{tables}");
        let table = tables
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == TABLE)
            .unwrap();
        if table["state"] == "open" {
            return table["round_id"].as_u64().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Places a 100 on red over `socket` until a round takes it (a round may close first on a
/// slow machine); the bet's id and its answer.
fn accepted_bet(node: &TestServer, socket: &mut BetSocket) -> (String, Value) {
    for attempt in 0..20 {
        let round = open_round(node);
        let bet_id = format!("{round}{attempt}");
        let answer = bet_over(
            socket,
            bet_frame(&bet_id, round, json!([{"bet": "red", "amount": 100}])),
        );
        if answer["type"] == "bet_accepted" {
            return (bet_id, answer);
        }
        assert_eq!(answer["error"], "round_closed", "{answer}");
    }
    panic!("no round took the bet");
}

#[test]
fn a_bet_over_the_bet_socket_is_answered_as_the_http_route_answers_it() {
    let node = server(LiveLimits::default());
    let (_alice, token) = player(&node, "alice", 10_000);
    let mut socket = bet_socket(&node, TABLE, &token);
    let (bet_id, accepted) = accepted_bet(&node, &mut socket);
    assert_eq!(
        (
            &accepted["bet_id"],
            accepted["stake"].as_u64(),
            accepted["balance"].as_u64()
        ),
        (&json!(bet_id), Some(100), Some(9_900)),
        "{accepted}"
    );
    let round = accepted["round_id"].as_u64().unwrap();
    // Retrying the bet_id answers the original result, with no second stake.
    let retried = bet_over(
        &mut socket,
        bet_frame(&bet_id, round, json!([{"bet": "red", "amount": 100}])),
    );
    assert_eq!(retried, accepted);
    // Refusals carry the HTTP status and error body, and name the bet.
    let refusals = [
        (
            json!([{"bet": "no-such-spot", "amount": 5}]),
            422,
            "unknown_spot",
        ),
        (
            json!([{"bet": "red", "amount": 5_000}]),
            422,
            "bet_above_max",
        ),
        (json!([]), 400, "invalid_request"),
    ];
    for (index, (spots, status, code)) in refusals.into_iter().enumerate() {
        let id = format!("77{index}");
        let answer = bet_over(&mut socket, bet_frame(&id, round, spots));
        assert_eq!(
            (
                answer["type"].as_str(),
                answer["bet_id"].as_str(),
                answer["status"].as_u64(),
                answer["error"].as_str()
            ),
            (
                Some("bet_refused"),
                Some(id.as_str()),
                Some(status),
                Some(code)
            ),
            "{answer}"
        );
    }
    // A frame that is no bet is refused without a bet_id, and the socket goes on.
    let malformed = bet_over(&mut socket, Message::text("{\"bet_id\":"));
    assert_eq!(
        (
            &malformed["bet_id"],
            malformed["status"].as_u64(),
            malformed["error"].as_str()
        ),
        (&Value::Null, Some(400), Some("malformed_json")),
        "{malformed}"
    );
    let binary = bet_over(&mut socket, Message::binary(vec![1, 2, 3]));
    assert_eq!(binary["status"].as_u64(), Some(400), "{binary}");
    let (_, again) = accepted_bet(&node, &mut socket);
    assert_eq!(again["balance"].as_u64().unwrap() % 100, 0, "{again}");
    // The HTTP route sees the same ledger: the bet socket's bets are the player's bets.
    let (status, recall) = node
        .request("GET", &format!("/v1/rounds/{round}"))
        .bearer(Some(&token))
        .send(b"")
        .status_json();
    assert_eq!(status, 200, "{recall}");
    assert!(recall.to_string().contains(&bet_id), "{recall}");
}

#[test]
fn a_bet_socket_needs_a_player_session_and_closes_once_the_session_ends() {
    let node = server(LiveLimits::default());
    let (_alice, token) = player(&node, "alice", 10_000);
    let refused = |path: &str, authorization: Option<&str>| {
        let url = format!("ws://{}{path}", node.addr());
        let mut request = url.into_client_request().unwrap();
        if let Some(value) = authorization {
            request
                .headers_mut()
                .insert("authorization", value.parse().unwrap());
        }
        match tungstenite::connect(request) {
            Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
            Ok((_, response)) => panic!("{path} was opened: {}", response.status()),
            Err(other) => panic!("{path}: {other}"),
        }
    };
    let path = format!("/v1/tables/{TABLE}/bet-socket");
    assert_eq!(refused(&path, None), 401);
    assert_eq!(refused(&path, Some("Bearer crs.not-a-session")), 401);
    let bearer = format!("Bearer {token}");
    assert_eq!(refused("/v1/tables/999/bet-socket", Some(&bearer)), 404);
    assert_eq!(refused("/v1/tables/x/bet-socket", Some(&bearer)), 400);
    let (status, body) = node
        .request("GET", &path)
        .bearer(Some(&token))
        .send(b"")
        .status_json();
    assert_eq!(
        (status, body["error"].as_str()),
        (426, Some("upgrade_required"))
    );

    let mut socket = bet_socket(&node, TABLE, &token);
    accepted_bet(&node, &mut socket);
    let (status, body) = node
        .request("POST", "/v1/players/logout")
        .bearer(Some(&token))
        .send(b"")
        .status_json();
    assert!(status == 200 || status == 204, "{status} {body}");
    let round = open_round(&node);
    let answer = bet_over(
        &mut socket,
        bet_frame("991", round, json!([{"bet": "red", "amount": 100}])),
    );
    assert_eq!(
        (answer["status"].as_u64(), answer["error"].as_str()),
        (Some(401), Some("unauthorized")),
        "{answer}"
    );
    match socket.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Policy),
        other => panic!("the socket stayed open: {other:?}"),
    }
}
