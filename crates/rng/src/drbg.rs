//! CTR_DRBG with AES-256 and the block cipher derivation function, exactly as NIST SP 800-90A
//! Rev. 1 §10.2.1 specifies it (ctr_len = blocklen = 128 bits), checked against CAVP vectors.
//!
//! Written by hand because the certified generator is the product's core and no maintained
//! crate implements CTR_DRBG on the current RustCrypto traits; the AES block function itself
//! comes from the `aes` crate (runtime AES-NI detection). This module is pure: entropy, nonce
//! and reseeding decisions belong to the caller (`crate::certified`).

use std::fmt;

use aes::cipher::consts::U16;
use aes::cipher::inout::InOutBuf;
use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes256, Block};
use zeroize::Zeroize;

pub const KEY_BYTES: usize = 32;
pub const BLOCK_BYTES: usize = 16;
/// seedlen = keylen + blocklen (SP 800-90A Table 3).
pub const SEED_BYTES: usize = KEY_BYTES + BLOCK_BYTES;
/// max_number_of_bits_per_request = 2^19 bits (SP 800-90A Table 3).
pub const REQUEST_BYTES_MAX: usize = (1 << 19) / 8;
/// reseed_interval ≤ 2^48 requests (SP 800-90A Table 3); callers set far smaller intervals.
pub const RESEED_INTERVAL_REQUESTS_MAX: u64 = 1 << 48;
/// Bound on entropy input, nonce, personalization and additional input (far under 2^35 bits).
pub const INPUT_BYTES_MAX: usize = 1 << 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DrbgError {
    #[error("the DRBG must be reseeded before it generates again (reseed counter exceeded)")]
    ReseedRequired,
    #[error("a request may ask for at most {REQUEST_BYTES_MAX} bytes")]
    RequestTooLarge,
    #[error("an input string is longer than {INPUT_BYTES_MAX} bytes")]
    InputTooLong,
}

/// The working state (Key, V, reseed_counter). Key lives only as the expanded AES key schedule,
/// which the `aes` crate zeroizes on drop.
pub struct CtrDrbg {
    cipher: Aes256,
    v: u128,
    reseed_counter: u64,
}

/// Never prints the key or V: they are the generator's secret.
impl fmt::Debug for CtrDrbg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CtrDrbg")
            .field("reseed_counter", &self.reseed_counter)
            .finish_non_exhaustive()
    }
}

impl Drop for CtrDrbg {
    fn drop(&mut self) {
        self.v.zeroize();
    }
}

impl CtrDrbg {
    /// CTR_DRBG_Instantiate_algorithm (§10.2.1.3.2).
    pub fn instantiate(
        entropy: &[u8],
        nonce: &[u8],
        personalization: &[u8],
    ) -> Result<Self, DrbgError> {
        check_inputs(&[entropy, nonce, personalization])?;
        let mut seed_material = derive(&[entropy, nonce, personalization]);
        let mut drbg = CtrDrbg {
            cipher: Aes256::new(&[0u8; KEY_BYTES].into()),
            v: 0,
            reseed_counter: 1,
        };
        drbg.update(&seed_material);
        seed_material.zeroize();
        Ok(drbg)
    }

    /// CTR_DRBG_Reseed_algorithm (§10.2.1.4.2).
    pub fn reseed(&mut self, entropy: &[u8], additional: &[u8]) -> Result<(), DrbgError> {
        check_inputs(&[entropy, additional])?;
        let mut seed_material = derive(&[entropy, additional]);
        self.update(&seed_material);
        seed_material.zeroize();
        self.reseed_counter = 1;
        Ok(())
    }

    /// CTR_DRBG_Generate_algorithm (§10.2.1.5.2): fills `out` (at most `REQUEST_BYTES_MAX`).
    pub fn generate(&mut self, out: &mut [u8], additional: &[u8]) -> Result<(), DrbgError> {
        if out.len() > REQUEST_BYTES_MAX {
            return Err(DrbgError::RequestTooLarge);
        }
        check_inputs(&[additional])?;
        if self.reseed_counter > RESEED_INTERVAL_REQUESTS_MAX {
            return Err(DrbgError::ReseedRequired);
        }
        let mut additional_seed = [0u8; SEED_BYTES];
        if !additional.is_empty() {
            additional_seed = derive(&[additional]);
            self.update(&additional_seed);
        }
        self.keystream(out);
        self.update(&additional_seed);
        self.reseed_counter += 1;
        Ok(())
    }

    /// Requests served since the last (re)seed.
    pub fn requests_since_reseed(&self) -> u64 {
        self.reseed_counter - 1
    }

    /// Enc(Key, V+1) || Enc(Key, V+2) || ... truncated to `out.len()`; V ends at the last counter.
    /// The counters are written into `out` and encrypted in place, so AES-NI pipelines
    /// eight blocks at a time with no copy.
    fn keystream(&mut self, out: &mut [u8]) {
        let whole_blocks = out.len() / BLOCK_BYTES * BLOCK_BYTES;
        let (body, tail) = out.split_at_mut(whole_blocks);
        for block in body.chunks_exact_mut(BLOCK_BYTES) {
            self.v = self.v.wrapping_add(1);
            block.copy_from_slice(&self.v.to_be_bytes());
        }
        let (blocks, _) = InOutBuf::from(body).into_chunks::<U16>();
        self.cipher.encrypt_blocks_inout(blocks);
        if !tail.is_empty() {
            self.v = self.v.wrapping_add(1);
            let mut block = Block::from(self.v.to_be_bytes());
            self.cipher.encrypt_block(&mut block);
            tail.copy_from_slice(&block[..tail.len()]);
            block.as_mut_slice().zeroize();
        }
    }

    /// CTR_DRBG_Update (§10.2.1.2).
    fn update(&mut self, provided: &[u8; SEED_BYTES]) {
        let mut temp = [0u8; SEED_BYTES];
        self.keystream(&mut temp);
        for (t, p) in temp.iter_mut().zip(provided) {
            *t ^= p;
        }
        self.cipher = Aes256::new(Block2::from_slice(&temp[..KEY_BYTES]));
        self.v = u128::from_be_bytes(temp[KEY_BYTES..].try_into().expect("16 bytes"));
        temp.zeroize();
    }
}

type Block2 = aes::cipher::Key<Aes256>;

fn check_inputs(inputs: &[&[u8]]) -> Result<(), DrbgError> {
    if inputs.iter().any(|input| input.len() > INPUT_BYTES_MAX) {
        return Err(DrbgError::InputTooLong);
    }
    Ok(())
}

/// Block_Cipher_df (§10.3.2) of the concatenation of `parts`, returning seedlen bits.
fn derive(parts: &[&[u8]]) -> [u8; SEED_BYTES] {
    let input_bytes: usize = parts.iter().map(|p| p.len()).sum();
    let mut s = Vec::with_capacity(8 + input_bytes + BLOCK_BYTES);
    s.extend_from_slice(&(input_bytes as u32).to_be_bytes());
    s.extend_from_slice(&(SEED_BYTES as u32).to_be_bytes());
    for part in parts {
        s.extend_from_slice(part);
    }
    s.push(0x80);
    s.resize(s.len().div_ceil(BLOCK_BYTES) * BLOCK_BYTES, 0);

    let df_key: [u8; KEY_BYTES] = std::array::from_fn(|i| i as u8);
    let df_cipher = Aes256::new(&df_key.into());
    let mut temp = [0u8; SEED_BYTES];
    for (i, out) in temp.chunks_exact_mut(BLOCK_BYTES).enumerate() {
        let mut iv = [0u8; BLOCK_BYTES];
        iv[..4].copy_from_slice(&(i as u32).to_be_bytes());
        out.copy_from_slice(&bcc(&df_cipher, &iv, &s));
    }
    s.zeroize();

    let cipher = Aes256::new(Block2::from_slice(&temp[..KEY_BYTES]));
    let mut x = Block::clone_from_slice(&temp[KEY_BYTES..]);
    let mut derived = [0u8; SEED_BYTES];
    for out in derived.chunks_exact_mut(BLOCK_BYTES) {
        cipher.encrypt_block(&mut x);
        out.copy_from_slice(&x);
    }
    temp.zeroize();
    derived
}

/// BCC (§10.3.3): CBC-MAC of `first || data` with a zero IV.
fn bcc(cipher: &Aes256, first: &[u8; BLOCK_BYTES], data: &[u8]) -> [u8; BLOCK_BYTES] {
    let mut chain = Block::clone_from_slice(first);
    cipher.encrypt_block(&mut chain);
    for block in data.chunks_exact(BLOCK_BYTES) {
        for (c, d) in chain.iter_mut().zip(block) {
            *c ^= d;
        }
        cipher.encrypt_block(&mut chain);
    }
    chain.into()
}

/// A CTR_DRBG instantiated from a caller's seed and never reseeded: a reproducible stream for
/// tests and for re-running a statistical report. Never for live play (use
/// `crate::CertifiedRng`, which draws entropy and reseeds).
pub struct SeededDrbg {
    drbg: CtrDrbg,
    buffer: [u8; SEEDED_BUFFER_BYTES],
    position: usize,
}

const SEEDED_BUFFER_BYTES: usize = 1024;
const SEEDED_PERSONALIZATION: &[u8] = b"croupier-rng/seeded/v1";

impl fmt::Debug for SeededDrbg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeededDrbg").finish_non_exhaustive()
    }
}

impl SeededDrbg {
    /// The stream for `seed` (at most `INPUT_BYTES_MAX` bytes; longer seeds are a caller bug).
    pub fn from_seed(seed: &[u8]) -> Self {
        let drbg = CtrDrbg::instantiate(seed, &[], SEEDED_PERSONALIZATION)
            .expect("seed within INPUT_BYTES_MAX");
        SeededDrbg {
            drbg,
            buffer: [0; SEEDED_BUFFER_BYTES],
            position: SEEDED_BUFFER_BYTES,
        }
    }

    fn request(&mut self, out: &mut [u8]) {
        // 2^48 requests would take centuries at any speed this stream runs at.
        self.drbg
            .generate(out, &[])
            .expect("request within bounds and far below 2^48 requests");
    }

    fn take<const N: usize>(&mut self) -> [u8; N] {
        if self.position + N > SEEDED_BUFFER_BYTES {
            let mut buffer = [0u8; SEEDED_BUFFER_BYTES];
            self.request(&mut buffer);
            self.buffer = buffer;
            self.position = 0;
        }
        let bytes = self.buffer[self.position..self.position + N]
            .try_into()
            .expect("N bytes");
        self.position += N;
        bytes
    }
}

impl rand_core::RngCore for SeededDrbg {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }

    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for request in dst.chunks_mut(REQUEST_BYTES_MAX) {
            self.request(request);
        }
    }
}

impl rand_core::CryptoRng for SeededDrbg {}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).expect("vector is hex")
    }

    /// NIST CAVP DRBG test vectors (drbgtestvectors.zip, SP 800-90A), file
    /// drbgvectors_no_reseed/CTR_DRBG.rsp, [AES-256 use df], PredictionResistance = False,
    /// PersonalizationStringLen = 0, AdditionalInputLen = 0, ReturnedBitsLen = 512, COUNT = 0:
    /// instantiate, generate 512 bits twice, compare the second output.
    #[test]
    fn cavp_aes256_use_df_no_reseed_count0_matches() {
        let mut drbg = CtrDrbg::instantiate(
            &unhex("36401940fa8b1fba91a1661f211d78a0b9389a74e5bccfece8d766af1a6d3b14"),
            &unhex("496f25b0f1301b4f501be30380a137eb"),
            &[],
        )
        .unwrap();
        let mut out = [0u8; 64];
        drbg.generate(&mut out, &[]).unwrap();
        drbg.generate(&mut out, &[]).unwrap();
        assert_eq!(
            hex::encode(out),
            "5862eb38bd558dd978a696e6df164782ddd887e7e9a6c9f3f1fbafb78941b535\
             a64912dfd224c6dc7454e5250b3d97165e16260c2faf1cc7735cb75fb4f07e1d"
        );
    }

    /// Same file, AdditionalInputLen = 256, COUNT = 0: additional input on both generates.
    #[test]
    fn cavp_aes256_use_df_with_additional_input_matches() {
        let mut drbg = CtrDrbg::instantiate(
            &unhex("8148d65d86513ce7d38923ec2f26b9e7c677dcc8997e325b7372619e753ed944"),
            &unhex("41c71a24d17d974190982bb7515ce7f5"),
            &[],
        )
        .unwrap();
        let mut out = [0u8; 64];
        drbg.generate(
            &mut out,
            &unhex("55b446046c2d14bdd0cdba4b71873fd4762650695a11507949462da8d964ab6a"),
        )
        .unwrap();
        drbg.generate(
            &mut out,
            &unhex("91468f1a097d99ee339462ca916cb4a10f63d53850a4f17f598eac490299b02e"),
        )
        .unwrap();
        assert_eq!(
            hex::encode(out),
            "54603d1a506132bbfa05b153a04f22a1d516cc46323cef15111af221f030f38d\
             6841d4670518b4914a4631af682e7421dffaac986a38e94d92bfa758e2eb101f"
        );
    }

    /// drbgvectors_pr_false/CTR_DRBG.rsp, [AES-256 use df], PersonalizationStringLen = 256,
    /// AdditionalInputLen = 0, COUNT = 0: instantiate, reseed, generate twice.
    #[test]
    fn cavp_aes256_use_df_personalized_with_reseed_matches() {
        let mut drbg = CtrDrbg::instantiate(
            &unhex("4cfb218673346d9d50c922e49b0dfcd090adf04f5c3ba47327dfcd6fa63a785c"),
            &unhex("016962a7fd2787a24bf6be47ef3783f1"),
            &unhex("88eeb8e0e83bf3294bdacd6099ebe4bf55ecd9113f71e5ebcb4575f3d6a68a6b"),
        )
        .unwrap();
        drbg.reseed(
            &unhex("b7ec46072363834a1b0133f2c23891db4f11a68651f23e3a8b1fdc03b192c7e7"),
            &[],
        )
        .unwrap();
        let mut out = [0u8; 64];
        drbg.generate(&mut out, &[]).unwrap();
        drbg.generate(&mut out, &[]).unwrap();
        assert_eq!(
            hex::encode(out),
            "a55180a190bef3adaf28f6b795e9f1f3d6dfa1b27dd0467b0c75f5fa931e9714\
             75b27cae03a29654e2f40966ea33643040d1400fe677873af8097c1fe9f00298"
        );
    }

    #[test]
    fn output_does_not_depend_on_how_a_request_is_cut_into_batches() {
        let mut one = CtrDrbg::instantiate(&[7; 32], &[1; 16], b"batches").unwrap();
        let mut other = CtrDrbg::instantiate(&[7; 32], &[1; 16], b"batches").unwrap();
        let mut long = vec![0u8; REQUEST_BYTES_MAX];
        let mut same = vec![0u8; REQUEST_BYTES_MAX];
        one.generate(&mut long, &[]).unwrap();
        other.generate(&mut same, &[]).unwrap();
        assert_eq!(long, same);
        one.generate(&mut long[..1000], &[]).unwrap();
        other.generate(&mut same[..1000], &[]).unwrap();
        assert_eq!(long[..1000], same[..1000]);
        assert_eq!(one.requests_since_reseed(), 2);
    }

    #[test]
    fn oversized_request_is_refused() {
        let mut drbg = CtrDrbg::instantiate(&[7; 32], &[1; 16], &[]).unwrap();
        let mut out = vec![0u8; REQUEST_BYTES_MAX + 1];
        assert_eq!(
            drbg.generate(&mut out, &[]),
            Err(DrbgError::RequestTooLarge)
        );
    }

    #[test]
    fn debug_output_hides_the_secret_state() {
        let drbg = CtrDrbg::instantiate(&[7; 32], &[1; 16], &[]).unwrap();
        let text = format!("{drbg:?}");
        assert!(
            text.contains("reseed_counter") && !text.contains("v:") && !text.contains("cipher")
        );
    }
}
