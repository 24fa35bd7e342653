//! JSON bodies for the answers hyper writes by itself.
//!
//! When a request head cannot be parsed (a malformed request line or header, a duplicate or
//! invalid Content-Length, a URI over 65,534 bytes, a head over hyper's buffer or 100 headers)
//! hyper answers 400, 414 or 431 with an empty body and closes the connection; our service
//! never sees the request, and hyper has no hook to shape that answer. docs/api.md promises
//! `{"error","message"}` for every error, so the connection's socket is wrapped: a write that
//! is exactly such an automatic answer (status 400/414/431, `content-length: 0`, nothing after
//! the head) is replaced by the same head with our JSON body. The application's own errors
//! always carry a JSON body, so they never match.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ErrorBody;

/// hyper's automatic answers by status line prefix: our code and message for each.
const AUTOMATIC_ANSWERS: [(&[u8], &str, &str); 3] = [
    (
        b"HTTP/1.1 400 ",
        "malformed_request",
        "the request line or a header could not be parsed, or Content-Length is missing a \
         value, invalid or given twice",
    ),
    (
        b"HTTP/1.1 414 ",
        "uri_too_long",
        "the request URI is longer than 65534 bytes",
    ),
    (
        b"HTTP/1.1 431 ",
        "headers_too_large",
        "the request head has more than 100 headers or does not fit the read buffer (~400 KiB)",
    ),
];

const EMPTY_BODY_HEADER: &[u8] = b"\r\ncontent-length: 0\r\n";

/// A socket whose automatic hyper error answers get our JSON body (see the module docs).
pub(crate) struct JsonProtocolErrors<T> {
    inner: T,
    /// A replacement answer and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> JsonProtocolErrors<T> {
    pub(crate) fn new(inner: T) -> Self {
        JsonProtocolErrors {
            inner,
            pending: None,
        }
    }
}

/// Our answer in place of `head` when `head` is one of hyper's automatic error answers.
fn replacement_for(head: &[u8]) -> Option<Vec<u8>> {
    // Every write of every answer passes here: the constant-time checks come first, and only
    // an error head with nothing after it is scanned.
    let (_, code, message) = AUTOMATIC_ANSWERS
        .iter()
        .find(|(status_line, _, _)| head.starts_with(status_line))?;
    if !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let at = head
        .windows(EMPTY_BODY_HEADER.len())
        .position(|window| window.eq_ignore_ascii_case(EMPTY_BODY_HEADER))?;
    let body = serde_json::to_vec(&ErrorBody {
        error: code,
        message: (*message).into(),
        balance: None,
        index: None,
        field: None,
    })
    .ok()?;
    let mut answer = Vec::with_capacity(head.len() + body.len() + 64);
    answer.extend_from_slice(&head[..at]);
    answer.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    answer.extend_from_slice(body.len().to_string().as_bytes());
    answer.extend_from_slice(&head[at + EMPTY_BODY_HEADER.len() - 2..]);
    answer.extend_from_slice(&body);
    Some(answer)
}

impl<T: AsyncWrite + Unpin> JsonProtocolErrors<T> {
    /// Writes what is left of a replacement answer before anything else.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, written)) = &mut self.pending {
            if *written == answer.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes `buf` in place of a replacement when it is an automatic answer.
    fn try_replace(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Option<Poll<io::Result<usize>>> {
        let answer = replacement_for(buf)?;
        self.pending = Some((answer, 0));
        // Pending is fine here: hyper flushes next, and the flush finishes the answer.
        Some(match self.poll_pending(cx) {
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            _ => Poll::Ready(Ok(buf.len())),
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonProtocolErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonProtocolErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(done) = self.try_replace(cx, buf) {
            return done;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        // hyper writes an automatic answer as its head alone: one slice.
        let mut non_empty = bufs.iter().filter(|buf| !buf.is_empty());
        if let (Some(only), None) = (non_empty.next(), non_empty.next()) {
            if let Some(done) = self.try_replace(cx, only) {
                return done;
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\
        content-length: 0\r\ndate: Tue, 01 Dec 2026 22:21:38 GMT\r\n\r\n";

    #[test]
    fn an_automatic_answer_gets_our_json_body_and_keeps_its_other_headers() {
        let answer = String::from_utf8(replacement_for(HYPER_400).unwrap()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\nconnection: close\r\n"));
        assert!(head.contains("\r\ncontent-type: application/json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(
            head.ends_with("\r\ndate: Tue, 01 Dec 2026 22:21:38 GMT"),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "malformed_request");
    }

    #[test]
    fn answers_with_a_body_or_another_status_pass_untouched() {
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(replacement_for(ours), None);
        let head_only = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 20\r\n\r\n";
        assert_eq!(replacement_for(head_only), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(replacement_for(ok), None);
    }
}
