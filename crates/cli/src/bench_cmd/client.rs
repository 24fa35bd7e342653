//! The benchmark's HTTP client: keep-alive HTTP/1.1 connections written by hand, request bodies
//! in both encodings, and reading back which items did not answer `ok`.
//!
//! Written over a TCP stream (httparse reads the answer's head) rather than with a general
//! client: a load generator on the same 2 cores must cost far less per request than the
//! server it measures, and hyper's client costs about as much as the server does.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use croupier_core::{NewAccount, NewTransfer};
use croupier_server::binary;

/// Largest answer head or body the benchmark accepts.
const ANSWER_SIZE_MAX_BYTES: usize = 64 << 20;
const ANSWER_HEADERS_MAX: usize = 32;
/// Read buffer growth per read: a JSON answer to 8189 transfers is ~400 KB.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// Longest piece of an unexpected answer quoted in a failure.
const QUOTED_ANSWER_BYTES_MAX: usize = 300;
const READY_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How batch bodies are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// 128-byte records (application/octet-stream), one result byte per record back.
    Binary,
    /// JSON arrays (application/json), `[{"id","result"}]` back.
    Json,
}

impl Encoding {
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Binary => binary::CONTENT_TYPE,
            Encoding::Json => "application/json",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Binary => "binary",
            Encoding::Json => "json",
        }
    }
}

/// `host:port` or `http://host:port` (a trailing `/` allowed) → the address to connect to.
pub fn parse_server_address(text: &str) -> anyhow::Result<SocketAddr> {
    let authority = match text.split_once("://") {
        Some(("http", rest)) => rest.strip_suffix('/').unwrap_or(rest),
        Some(_) => bail!("{text:?}: only http:// is supported"),
        None => text,
    };
    if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
        bail!("{text:?}: expected host:port or http://host:port");
    }
    authority
        .to_socket_addrs()
        .with_context(|| format!("{text:?}: cannot resolve {authority}"))?
        .next()
        .with_context(|| format!("{text:?}: {authority} resolves to no address"))
}

/// `http://host:port` (a trailing `/` allowed) → the address to connect to.
pub fn parse_server_url(url: &str) -> anyhow::Result<SocketAddr> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("--server {url:?}: expected http://host:port (https is not supported)");
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains('/') || !authority.contains(':') {
        bail!("--server {url:?}: expected http://host:port with no path");
    }
    authority
        .to_socket_addrs()
        .with_context(|| format!("--server {url:?}: cannot resolve {authority}"))?
        .next()
        .with_context(|| format!("--server {url:?}: {authority} resolves to no address"))
}

/// One keep-alive HTTP/1.1 connection, one request at a time.
pub struct HttpConnection {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl HttpConnection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(HttpConnection {
            stream,
            buffer: Vec::with_capacity(READ_CHUNK_BYTES),
        })
    }

    /// A complete POST request (head and body), ready to write in one go.
    pub fn post_request(path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
        Self::request_with_body("POST", path, content_type, body)
    }

    /// A request of `post_request` with an `Authorization: Bearer` header when `key` is given.
    pub fn post_request_as(
        key: Option<&str>,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Vec<u8> {
        with_authorization(Self::post_request(path, content_type, body), key)
    }

    fn request_with_body(method: &str, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: croupier\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let mut request = Vec::with_capacity(head.len() + body.len());
        request.extend_from_slice(head.as_bytes());
        request.extend_from_slice(body);
        request
    }

    /// Sends a request made by `post_request`; returns the status and the answer's body.
    pub async fn send(&mut self, request: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        let answer = self.exchange(request).await?;
        Ok((answer.status, answer.body))
    }

    /// Sends one complete request and reads its answer, headers included.
    pub async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<Answer> {
        use tokio::io::AsyncWriteExt;
        self.stream
            .write_all(request)
            .await
            .context("sending a request")?;
        self.buffer.clear();
        self.read_answer().await
    }

    /// Sends several GETs at once (HTTP/1.1 pipelining) and reads their answers in order: the
    /// answers come back within about one round trip instead of one round trip each, which
    /// keeps a multi-account read short. Each carries `key` (`Authorization: Bearer`) if given.
    pub async fn get_pipelined(
        &mut self,
        paths: &[String],
        key: Option<&str>,
    ) -> anyhow::Result<Vec<Answer>> {
        use tokio::io::AsyncWriteExt;
        let requests: Vec<u8> = paths
            .iter()
            .flat_map(|path| with_authorization(get_request(path).into_bytes(), key))
            .collect();
        self.stream
            .write_all(&requests)
            .await
            .context("sending requests")?;
        self.buffer.clear();
        let mut answers = Vec::with_capacity(paths.len());
        for _ in paths {
            answers.push(self.read_answer().await?);
        }
        Ok(answers)
    }

    /// Reads the next answer, leaving whatever follows it in the buffer.
    async fn read_answer(&mut self) -> anyhow::Result<Answer> {
        loop {
            if let Some((status, head_len, body_len)) = parse_answer_head(&self.buffer)? {
                let total = head_len + body_len;
                while self.buffer.len() < total {
                    self.read_more().await?;
                }
                let answer = Answer {
                    status,
                    next_cursor: header_value(&self.buffer[..head_len], NEXT_CURSOR_HEADER),
                    body: self.buffer[head_len..total].to_vec(),
                };
                self.buffer.drain(..total);
                return Ok(answer);
            }
            self.read_more().await?;
        }
    }

    async fn read_more(&mut self) -> anyhow::Result<()> {
        use tokio::io::AsyncReadExt;
        if self.buffer.len() >= ANSWER_SIZE_MAX_BYTES {
            bail!("answer larger than {ANSWER_SIZE_MAX_BYTES} bytes");
        }
        self.buffer.reserve(READ_CHUNK_BYTES);
        let read = self
            .stream
            .read_buf(&mut self.buffer)
            .await
            .context("reading an answer")?;
        if read == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }

    pub async fn post(
        &mut self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, Vec<u8>)> {
        self.send(&Self::post_request(path, content_type, body))
            .await
    }

    pub async fn get(&mut self, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        self.send(get_request(path).as_bytes()).await
    }

    /// Any request with an optional JSON body and an operator key (`Authorization: Bearer`),
    /// if one is given; the answer with the headers we look at.
    pub async fn request_json_as(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        key: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let request = match body {
            Some(body) => Self::request_with_body(method, path, "application/json", body),
            None => format!("{method} {path} HTTP/1.1\r\nhost: croupier\r\n\r\n").into_bytes(),
        };
        self.exchange(&with_authorization(request, key)).await
    }
}

/// Adds `Authorization: Bearer KEY` after the request line.
fn with_authorization(request: Vec<u8>, key: Option<&str>) -> Vec<u8> {
    let Some(key) = key else {
        return request;
    };
    let line_end = request
        .windows(2)
        .position(|w| w == b"\r\n")
        .expect("a request line")
        + 2;
    let mut with = Vec::with_capacity(request.len() + key.len() + 32);
    with.extend_from_slice(&request[..line_end]);
    with.extend_from_slice(format!("authorization: Bearer {key}\r\n").as_bytes());
    with.extend_from_slice(&request[line_end..]);
    with
}

/// An answer: its status, the `X-Next-Cursor` header of a paged list, and its body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub next_cursor: Option<String>,
    pub body: Vec<u8>,
}

const NEXT_CURSOR_HEADER: &str = "x-next-cursor";

fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: croupier\r\n\r\n")
}

/// The value of header `name` in a complete answer head.
fn header_value(head: &[u8], name: &str) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; ANSWER_HEADERS_MAX];
    let mut answer = httparse::Response::new(&mut headers);
    answer.parse(head).ok()?;
    let header = answer
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case(name))?;
    std::str::from_utf8(header.value).ok().map(str::to_owned)
}

/// (status, head length, body length) once the whole head is in `buffer`.
pub fn parse_answer_head(buffer: &[u8]) -> anyhow::Result<Option<(u16, usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; ANSWER_HEADERS_MAX];
    let mut answer = httparse::Response::new(&mut headers);
    let head_len = match answer.parse(buffer).context("malformed answer head")? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = answer.code.context("answer without status")?;
    let content_length = answer
        .headers
        .iter()
        .find(|header| header.name.eq_ignore_ascii_case("content-length"));
    let Some(content_length) = content_length else {
        // These answers never have a body, so servers leave the length out.
        if status == 204 || status == 304 || status < 200 {
            return Ok(Some((status, head_len, 0)));
        }
        bail!("answer without content-length (the benchmark client needs one)");
    };
    let body_len: usize = std::str::from_utf8(content_length.value)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .filter(|&len| len <= ANSWER_SIZE_MAX_BYTES)
        .context("bad content-length")?;
    Ok(Some((status, head_len, body_len)))
}

/// Runs `request` for at most `timeout`; running out of time is an error like a failed request.
pub async fn within<T>(
    timeout: Duration,
    request: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(timeout, request).await {
        Ok(result) => result,
        Err(_) => bail!("no answer within {timeout:?}"),
    }
}

/// Waits until `GET /healthz` answers 200 (the server may still be replaying its log).
pub async fn wait_until_ready(addr: SocketAddr, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let answer = match HttpConnection::open(addr).await {
            Ok(mut connection) => connection.get("/healthz").await,
            Err(error) => Err(error),
        };
        let problem = match answer {
            Ok((200, _)) => return Ok(()),
            Ok((status, body)) => format!("GET /healthz answered {status}: {}", quote(&body)),
            Err(error) => format!("{error:#}"),
        };
        if Instant::now() >= deadline {
            bail!("the server at {addr} is not ready after {timeout:?}: {problem}");
        }
        tokio::time::sleep(READY_POLL_INTERVAL).await;
    }
}

fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(QUOTED_ANSWER_BYTES_MAX)]);
    text.into_owned()
}

/// A JSON array of transfers, as `POST /v1/transfers` takes it.
pub fn transfers_json(transfers: &[NewTransfer]) -> Vec<u8> {
    let mut body = String::with_capacity(transfers.len() * 160 + 2);
    body.push('[');
    for (index, t) in transfers.iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        // Writing to a String cannot fail.
        let _ = write!(
            body,
            r#"{{"id":"{}","debit_account_id":"{}","credit_account_id":"{}","amount":{},"ledger":"{}"}}"#,
            t.id, t.debit_account_id, t.credit_account_id, t.amount, t.ledger
        );
    }
    body.push(']');
    body.into_bytes()
}

/// A JSON array of accounts, as `POST /v1/accounts` takes it.
pub fn accounts_json(accounts: &[NewAccount]) -> Vec<u8> {
    let items: Vec<String> = accounts
        .iter()
        .map(|a| {
            format!(
                r#"{{"id":"{}","ledger":"{}","kind":"{}","flags":[]}}"#,
                a.id,
                a.ledger,
                a.kind.name()
            )
        })
        .collect();
    format!("[{}]", items.join(",")).into_bytes()
}

pub fn transfers_body(transfers: &[NewTransfer], encoding: Encoding) -> anyhow::Result<Vec<u8>> {
    Ok(match encoding {
        Encoding::Json => transfers_json(transfers),
        Encoding::Binary => {
            let mut body = Vec::with_capacity(transfers.len() * binary::RECORD_SIZE_BYTES);
            for transfer in transfers {
                binary::encode_transfer(transfer, &mut body)?;
            }
            body
        }
    })
}

pub fn accounts_body(accounts: &[NewAccount], encoding: Encoding) -> anyhow::Result<Vec<u8>> {
    Ok(match encoding {
        Encoding::Json => accounts_json(accounts),
        Encoding::Binary => {
            let mut body = Vec::with_capacity(accounts.len() * binary::RECORD_SIZE_BYTES);
            for account in accounts {
                binary::encode_account(account, &mut body)?;
            }
            body
        }
    })
}

/// Which kind of item an answer is about (for naming binary result bytes).
#[derive(Clone, Copy)]
pub enum Items {
    Accounts,
    Transfers,
}

/// Counts, by result code, the items of an answer to `expected` items that are not `ok` (or
/// also not `exists`, when `exists_is_ok`). A non-200 answer or a wrong count fails every item.
pub fn count_failures(
    status: u16,
    body: &[u8],
    expected: usize,
    encoding: Encoding,
    items: Items,
    failures: &mut BTreeMap<String, u64>,
) {
    let mut fail_all = |reason: String| *failures.entry(reason).or_default() += expected as u64;
    if status != 200 {
        return fail_all(format!("http {status}: {}", quote(body)));
    }
    let codes: Vec<&str> = match encoding {
        Encoding::Binary => body
            .iter()
            .map(|&byte| {
                let code = match items {
                    Items::Accounts => binary::account_result_code(byte),
                    Items::Transfers => binary::transfer_result_code(byte),
                };
                code.unwrap_or("unknown result byte")
            })
            .collect(),
        Encoding::Json => json_result_codes(body),
    };
    if codes.len() != expected {
        return fail_all(format!("{} results for {expected} items", codes.len()));
    }
    for code in codes.into_iter().filter(|&code| code != "ok") {
        *failures.entry(code.to_string()).or_default() += 1;
    }
}

/// The `result` of each item of our JSON answer, `[{"id":"…","result":"…"},…]`, found by
/// scanning rather than parsing: ids are digit strings and codes snake_case, so nothing in the
/// answer is escaped, and a full parse of 8189 items would load the client for no gain.
pub fn json_result_codes(body: &[u8]) -> Vec<&str> {
    const KEY: &str = r#""result":""#;
    let Ok(text) = std::str::from_utf8(body) else {
        return vec!["malformed answer"];
    };
    let mut codes = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(KEY) {
        rest = &rest[start + KEY.len()..];
        let Some(end) = rest.find('"') else {
            codes.push("malformed answer");
            break;
        };
        codes.push(&rest[..end]);
        rest = &rest[end..];
    }
    codes
}

/// User plus system CPU seconds process `pid` has used so far (0 where /proc is missing), for
/// a bench to say how much of the machine each side of it took.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
    let Ok(stat) = stat else { return 0.0 };
    // Fields after the command's closing parenthesis; utime and stime are 14th and 15th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks: u64 = fields
        .get(11..13)
        .map_or(0, |f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum());
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use croupier_core::{CreateTransferResult, TransferFlags};

    fn transfer() -> NewTransfer {
        NewTransfer {
            id: 7,
            debit_account_id: 1,
            credit_account_id: 2,
            amount: 30,
            ledger: super::super::workload::ledger_code(),
            flags: TransferFlags::empty(),
            pending_id: 0,
            timeout_s: 0,
        }
    }

    #[test]
    fn server_urls_need_scheme_host_and_port() {
        assert_eq!(
            parse_server_url("http://127.0.0.1:8080/").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert!(parse_server_url("127.0.0.1:8080").is_err());
        assert!(parse_server_url("https://127.0.0.1:8080").is_err());
        assert!(parse_server_url("http://127.0.0.1").is_err());
        assert!(parse_server_url("http://127.0.0.1:8080/v1").is_err());
    }

    #[test]
    fn server_addresses_may_leave_out_the_scheme() {
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(parse_server_address("127.0.0.1:8080").unwrap(), addr);
        assert_eq!(
            parse_server_address("http://127.0.0.1:8080/").unwrap(),
            addr
        );
        assert!(parse_server_address("https://127.0.0.1:8080").is_err());
        assert!(parse_server_address("127.0.0.1").is_err());
        assert!(parse_server_address("127.0.0.1:8080/v1").is_err());
        let error = parse_server_address("foo").unwrap_err().to_string();
        assert_eq!(error, r#""foo": expected host:port or http://host:port"#);
    }

    #[test]
    fn answer_heads_give_status_and_body_length_once_complete() {
        let answer =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 27\r\n\r\n[{";
        let (status, head_len, body_len) = parse_answer_head(answer).unwrap().unwrap();
        assert_eq!((status, body_len), (200, 27));
        assert_eq!(&answer[head_len..], b"[{");
        assert!(parse_answer_head(b"HTTP/1.1 200 OK\r\ncontent-le")
            .unwrap()
            .is_none());
        assert!(
            parse_answer_head(b"HTTP/1.1 200 OK\r\n\r\n").is_err(),
            "no content-length"
        );
        let (status, _, body_len) = parse_answer_head(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (status, body_len),
            (204, 0),
            "204 has no body, hence no length"
        );
    }

    #[test]
    fn json_bodies_are_arrays_the_server_accepts() {
        let body: serde_json::Value =
            serde_json::from_slice(&transfers_json(&[transfer(), transfer()])).unwrap();
        assert_eq!(body[1]["id"], "7");
        assert_eq!(body[0]["amount"], 30);
        assert_eq!(body[0]["ledger"], "EUR");
    }

    #[test]
    fn failures_are_counted_by_result_code_in_both_encodings() {
        let mut failures = BTreeMap::new();
        let json = br#"[{"id":"1","result":"ok"},{"id":"2","result":"exceeds_credits"}]"#;
        count_failures(
            200,
            json,
            2,
            Encoding::Json,
            Items::Transfers,
            &mut failures,
        );
        let bytes = [0, CreateTransferResult::ExceedsCredits.to_u8(), 0];
        count_failures(
            200,
            &bytes,
            3,
            Encoding::Binary,
            Items::Transfers,
            &mut failures,
        );
        assert_eq!(failures, BTreeMap::from([("exceeds_credits".into(), 2)]));
        count_failures(
            200,
            &bytes,
            4,
            Encoding::Binary,
            Items::Transfers,
            &mut failures,
        );
        count_failures(
            503,
            b"{}",
            5,
            Encoding::Binary,
            Items::Transfers,
            &mut failures,
        );
        assert_eq!(failures["3 results for 4 items"], 4);
        assert_eq!(failures["http 503: {}"], 5);
    }
}
