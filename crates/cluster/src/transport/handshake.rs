//! Mutual authentication of a node-to-node connection before any frame: both ends prove they
//! hold the cluster secret without sending it, by HMAC-SHA256 over two fresh nonces (one from
//! each side, so neither answer can be replayed on another connection).
//!
//! ```text
//! caller → listener:  "CRPPEER3" | nonce_c [32]
//! listener → caller:  nonce_s [32] | HMAC(secret, "listener" | nonce_c | nonce_s)
//! caller → listener:  HMAC(secret, "caller" | nonce_c | nonce_s)
//! ```
//!
//! A node without a configured secret uses the empty one: it still speaks the protocol, so it
//! reaches only nodes that have no secret either, and its peer listener must be on loopback
//! (checked where the options are built). Written by hand because it is twenty lines over the
//! `hmac` crate; TLS would also encrypt, and is the next step for links that leave the host.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Version 3: checkpoint chunks carry their position and the stream ends with the archive's
/// length and CRC32C (checkpoint_stream.rs); version 2 added a CRC32C to every frame. A peer of
/// another version is refused at the handshake instead of misreading frames.
const MAGIC: &[u8; 8] = b"CRPPEER3";

/// Bytes the caller writes before its first frame (hello, then its proof).
pub const HANDSHAKE_CALLER_BYTES: usize = MAGIC.len() + NONCE_BYTES + MAC_BYTES;
/// Bytes the listener writes before its first frame (its nonce and proof).
pub const HANDSHAKE_LISTENER_BYTES: usize = NONCE_BYTES + MAC_BYTES;
const NONCE_BYTES: usize = 32;
const MAC_BYTES: usize = 32;
/// A peer that does not finish the handshake within this is dropped.
pub(crate) const HANDSHAKE_TIMEOUT_MS: u64 = 2_000;
/// Shortest secret accepted: 128 bits.
pub const PEER_SECRET_BYTES_MIN: usize = 16;

/// The cluster's shared secret. Its `Debug` never shows it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PeerSecret(Vec<u8>);

impl PeerSecret {
    /// `None` when shorter than `PEER_SECRET_BYTES_MIN`.
    pub fn new(bytes: Vec<u8>) -> Option<PeerSecret> {
        (bytes.len() >= PEER_SECRET_BYTES_MIN).then_some(PeerSecret(bytes))
    }

    /// No secret: only for clusters whose peer listeners are all on loopback.
    pub fn none() -> PeerSecret {
        PeerSecret(Vec::new())
    }

    pub fn is_none(&self) -> bool {
        self.0.is_empty()
    }

    fn mac(&self, role: &[u8], nonce_c: &[u8], nonce_s: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(role);
        mac.update(nonce_c);
        mac.update(nonce_s);
        mac
    }
}

impl fmt::Debug for PeerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = if self.is_none() {
            "PeerSecret(none)"
        } else {
            "PeerSecret(<redacted>)"
        };
        f.write_str(shown)
    }
}

fn nonce() -> Result<[u8; NONCE_BYTES], String> {
    let mut nonce = [0u8; NONCE_BYTES];
    getrandom::fill(&mut nonce).map_err(|e| format!("no entropy for a handshake nonce: {e}"))?;
    Ok(nonce)
}

async fn within<T>(
    what: &str,
    step: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(Duration::from_millis(HANDSHAKE_TIMEOUT_MS), step).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("peer handshake ({what}): {error}")),
        Err(_) => Err(format!("peer handshake ({what}) timed out")),
    }
}

/// The calling side: proves the secret and checks that the listener holds it too.
pub(crate) async fn as_caller<S>(stream: &mut S, secret: &PeerSecret) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let nonce_c = nonce()?;
    let mut hello = MAGIC.to_vec();
    hello.extend_from_slice(&nonce_c);
    within("hello", stream.write_all(&hello)).await?;
    let mut answer = [0u8; NONCE_BYTES + MAC_BYTES];
    within("listener proof", stream.read_exact(&mut answer)).await?;
    let (nonce_s, listener_proof) = answer.split_at(NONCE_BYTES);
    secret
        .mac(b"listener", &nonce_c, nonce_s)
        .verify_slice(listener_proof)
        .map_err(|_| {
            "peer handshake: the listener does not hold this cluster's secret".to_string()
        })?;
    let proof = secret
        .mac(b"caller", &nonce_c, nonce_s)
        .finalize()
        .into_bytes();
    within("caller proof", stream.write_all(&proof)).await
}

/// The listening side: proves the secret and checks the caller's proof.
pub(crate) async fn as_listener<S>(stream: &mut S, secret: &PeerSecret) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The magic first, on its own: a stranger is refused at once, not after the timeout.
    let mut magic = [0u8; MAGIC.len()];
    within("hello", stream.read_exact(&mut magic)).await?;
    if &magic != MAGIC {
        return Err("peer handshake: not a croupier peer (or an older version)".into());
    }
    let mut nonce_c = [0u8; NONCE_BYTES];
    within("hello", stream.read_exact(&mut nonce_c)).await?;
    let nonce_c = &nonce_c[..];
    let nonce_s = nonce()?;
    let mut answer = nonce_s.to_vec();
    answer.extend_from_slice(
        &secret
            .mac(b"listener", nonce_c, &nonce_s)
            .finalize()
            .into_bytes(),
    );
    within("listener proof", stream.write_all(&answer)).await?;
    let mut proof = [0u8; MAC_BYTES];
    within("caller proof", stream.read_exact(&mut proof)).await?;
    secret
        .mac(b"caller", nonce_c, &nonce_s)
        .verify_slice(&proof)
        .map_err(|_| "peer handshake: the caller does not hold this cluster's secret".to_string())
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpStream;

    use super::*;

    async fn pair(
        caller: PeerSecret,
        listener: PeerSecret,
    ) -> (Result<(), String>, Result<(), String>) {
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let serve = tokio::spawn(async move {
            let (mut stream, _) = socket.accept().await.unwrap();
            as_listener(&mut stream, &listener).await
        });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let called = as_caller(&mut stream, &caller).await;
        drop(stream);
        (called, serve.await.unwrap())
    }

    fn secret(byte: u8) -> PeerSecret {
        PeerSecret::new(vec![byte; 32]).unwrap()
    }

    #[tokio::test]
    async fn peers_with_the_same_secret_connect_and_others_are_refused_both_ways() {
        assert_eq!(pair(secret(1), secret(1)).await, (Ok(()), Ok(())));
        assert_eq!(
            pair(PeerSecret::none(), PeerSecret::none()).await,
            (Ok(()), Ok(()))
        );
        let (caller, _) = pair(secret(1), secret(2)).await;
        assert!(caller.unwrap_err().contains("listener does not hold"));
        let (caller, _) = pair(PeerSecret::none(), secret(2)).await;
        assert!(caller.is_err());
    }

    #[tokio::test]
    async fn a_stranger_speaking_another_protocol_is_dropped() {
        let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let serve = tokio::spawn(async move {
            let (mut stream, _) = socket.accept().await.unwrap();
            as_listener(&mut stream, &secret(1)).await
        });
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let refused = serve.await.unwrap().unwrap_err();
        assert!(refused.contains("not a croupier peer"), "{refused}");
    }

    #[test]
    fn short_secrets_are_refused_and_debug_never_shows_one() {
        assert!(PeerSecret::new(vec![7; 15]).is_none());
        let shown = format!("{:?}", secret(0x41));
        assert!(!shown.contains("65") && !shown.contains('A'), "{shown}");
    }
}
