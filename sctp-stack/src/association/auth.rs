//! SCTP-AUTH (RFC 4895) for one association: the parameters it offers, the association
//! keys, and signing and verification of AUTH chunks.
//!
//! Call contract:
//! - The parameters this side offers ([`LocalAuth`]) are fixed when the association starts
//!   (its RANDOM comes from the endpoint's seeded RNG; the server side carries it in the
//!   state cookie so the association built from the COOKIE ECHO has it).
//! - When the peer's INIT or INIT ACK carried RANDOM and HMAC-ALGO (CHUNKS is optional) and
//!   both sides share an HMAC algorithm, [`Auth::negotiate`] gives the association's AUTH
//!   state; otherwise AUTH is not used and nothing here runs (the DATA/SACK path only tests
//!   an `Option`).
//! - Sending: before the first chunk of a packet whose type the peer requires authenticated
//!   (its CHUNKS list, plus ASCONF and ASCONF ACK always, RFC 5061 §4.1), the association
//!   pushes [`Auth::placeholder`] and, once the packet is complete, [`Auth::sign`] fills
//!   the HMAC over the AUTH chunk and everything after it (RFC 4895 §6.2).
//! - Receiving: [`Auth::verify`] checks an AUTH chunk against the rest of the packet
//!   (§6.3); chunks this side listed in its CHUNKS parameter are processed only after a
//!   verified AUTH in the same packet, others are discarded silently.

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::config::AssociationConfig;
use crate::wire::{ChunkType, FixedList, HmacId, Param, ParamType};

/// Bytes of the RANDOM this side sends (RFC 4895 §3.1: 32 bytes recommended).
pub(crate) const RANDOM_LEN: usize = 32;
/// Most shared keys one association holds.
pub(crate) const MAX_KEYS: usize = 64;
/// Longest shared key accepted.
pub(crate) const MAX_KEY_LEN: usize = 1024;
/// Largest RANDOM / CHUNKS value accepted from a peer (larger: AUTH not supported).
const MAX_PEER_RANDOM: usize = 256;
/// Most HMAC identifiers kept from a peer's HMAC-ALGO.
const MAX_PEER_HMACS: usize = 16;
/// The largest HMAC (SHA-256).
pub(crate) const MAX_HMAC_LEN: usize = 32;
const ZEROS: [u8; MAX_HMAC_LEN] = [0; MAX_HMAC_LEN];

/// A set of chunk types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChunkSet([u64; 4]);

impl ChunkSet {
    pub(crate) fn insert(&mut self, t: ChunkType) {
        let i = usize::from(t.0);
        if let Some(w) = self.0.get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }

    pub(crate) fn contains(&self, t: ChunkType) -> bool {
        let i = usize::from(t.0);
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

/// The chunk types that can never be listed in CHUNKS (RFC 4895 §3.2).
fn listable(t: ChunkType) -> bool {
    !matches!(
        t,
        ChunkType::INIT | ChunkType::INIT_ACK | ChunkType::SHUTDOWN_COMPLETE | ChunkType::AUTH
    )
}

/// The length of the HMAC of an algorithm, if implemented.
pub(crate) fn hmac_len(id: HmacId) -> Option<usize> {
    match id {
        HmacId::SHA1 => Some(20),
        HmacId::SHA256 => Some(32),
        _ => None,
    }
}

/// HMAC of the concatenation of `parts` under `key` with algorithm `id`; the length of the
/// result is [`hmac_len`].
fn mac(id: HmacId, key: &[u8], parts: &[&[u8]]) -> [u8; MAX_HMAC_LEN] {
    let mut out = [0u8; MAX_HMAC_LEN];
    // HMAC takes keys of any length, so `new_from_slice` cannot fail.
    match id {
        HmacId::SHA1 => {
            if let Ok(mut m) = <Hmac<Sha1> as Mac>::new_from_slice(key) {
                for p in parts {
                    m.update(p);
                }
                out[..20].copy_from_slice(&m.finalize().into_bytes());
            }
        }
        _ => {
            if let Ok(mut m) = <Hmac<Sha256> as Mac>::new_from_slice(key) {
                for p in parts {
                    m.update(p);
                }
                out.copy_from_slice(&m.finalize().into_bytes());
            }
        }
    }
    out
}

/// Appends a parameter TLV without padding (the form key vectors use, RFC 4895 §6.1).
fn push_tlv(out: &mut Vec<u8>, ty: ParamType, value: &[u8]) {
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&ty.get().to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

/// What this side offers: RANDOM, CHUNKS and HMAC-ALGO (RFC 4895 §3).
#[derive(Debug, Clone)]
pub(crate) struct LocalAuth {
    pub(crate) random: [u8; RANDOM_LEN],
    chunks: Vec<ChunkType>,
    hmacs: Vec<HmacId>,
}

impl LocalAuth {
    /// The offer of `config` with `random`.
    pub(crate) fn new(config: &AssociationConfig, random: [u8; RANDOM_LEN]) -> LocalAuth {
        let mut chunks: Vec<ChunkType> = Vec::new();
        let mut set = ChunkSet::default();
        let forced: &[ChunkType] = if config.asconf {
            // RFC 5061 §4.1: ASCONF and ASCONF ACK MUST be authenticated.
            &[ChunkType::ASCONF, ChunkType::ASCONF_ACK]
        } else {
            &[]
        };
        for &t in config.auth_chunks.iter().chain(forced) {
            // RFC 4895 §3.2: INIT, INIT ACK, SHUTDOWN COMPLETE and AUTH MUST NOT be listed.
            if listable(t) && !set.contains(t) {
                set.insert(t);
                chunks.push(t);
            }
        }
        let mut hmacs: Vec<HmacId> = Vec::new();
        for &h in &config.auth_hmacs {
            if hmac_len(h).is_some() && !hmacs.contains(&h) {
                hmacs.push(h);
            }
        }
        if !hmacs.contains(&HmacId::SHA1) {
            // RFC 4895 §3.3: SHA-1 MUST be supported and listed.
            hmacs.push(HmacId::SHA1);
        }
        LocalAuth {
            random,
            chunks,
            hmacs,
        }
    }

    /// Appends RANDOM, CHUNKS and HMAC-ALGO for an INIT or INIT ACK (RFC 4895 §3).
    pub(crate) fn push_params<'a>(&'a self, params: &mut Vec<Param<'a>>) {
        params.push(Param::Random(&self.random));
        params.push(Param::ChunkList(FixedList::from_items(&self.chunks)));
        params.push(Param::RequestedHmacAlgorithms(FixedList::from_items(
            &self.hmacs,
        )));
    }

    /// The key vector: the three parameters as sent, headers included, unpadded (§6.1).
    fn key_vector(&self) -> Vec<u8> {
        let mut v = Vec::new();
        push_tlv(&mut v, ParamType::RANDOM, &self.random);
        let chunks: Vec<u8> = self.chunks.iter().map(|c| c.0).collect();
        push_tlv(&mut v, ParamType::CHUNK_LIST, &chunks);
        let hmacs: Vec<u8> = self.hmacs.iter().flat_map(|h| h.0.to_be_bytes()).collect();
        push_tlv(&mut v, ParamType::REQUESTED_HMAC_ALGORITHM, &hmacs);
        v
    }
}

/// What the peer offered in its INIT or INIT ACK.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerAuth {
    random: Option<Vec<u8>>,
    chunks: Option<Vec<u8>>,
    hmacs: Option<Vec<HmacId>>,
    /// A parameter was over this implementation's bounds: treat AUTH as unsupported.
    oversized: bool,
}

impl PeerAuth {
    /// Takes one INIT/INIT ACK parameter into account.
    pub(crate) fn take_param(&mut self, p: &Param<'_>) {
        match p {
            Param::Random(r) => {
                if r.is_empty() || r.len() > MAX_PEER_RANDOM {
                    self.oversized = true;
                } else {
                    self.random = Some(r.to_vec());
                }
            }
            Param::ChunkList(l) => {
                if l.byte_len() > MAX_PEER_RANDOM {
                    self.oversized = true;
                } else {
                    self.chunks = Some(l.iter().map(|c| c.0).collect());
                }
            }
            Param::RequestedHmacAlgorithms(l) => {
                let v: Vec<HmacId> = l.iter().take(MAX_PEER_HMACS + 1).collect();
                if v.len() > MAX_PEER_HMACS {
                    self.oversized = true;
                } else {
                    self.hmacs = Some(v);
                }
            }
            _ => {}
        }
    }

    /// Whether the peer offered AUTH: RANDOM and HMAC-ALGO present (RFC 4895 §3).
    pub(crate) fn offered(&self) -> bool {
        !self.oversized && self.random.is_some() && self.hmacs.is_some()
    }

    /// The key vector of the peer, rebuilt from its parameters (§6.1).
    fn key_vector(&self) -> Vec<u8> {
        let mut v = Vec::new();
        if let Some(r) = &self.random {
            push_tlv(&mut v, ParamType::RANDOM, r);
        }
        if let Some(c) = &self.chunks {
            push_tlv(&mut v, ParamType::CHUNK_LIST, c);
        }
        if let Some(h) = &self.hmacs {
            let b: Vec<u8> = h.iter().flat_map(|h| h.0.to_be_bytes()).collect();
            push_tlv(&mut v, ParamType::REQUESTED_HMAC_ALGORITHM, &b);
        }
        v
    }
}

/// Compares two key vectors as unsigned big-endian numbers (RFC 4895 §6.1); leading zero
/// bytes do not count. Numerically equal vectors compare by length.
fn compare_vectors(a: &[u8], b: &[u8]) -> core::cmp::Ordering {
    let strip = |v: &[u8]| -> usize { v.iter().take_while(|x| **x == 0).count() };
    let (sa, sb) = (&a[strip(a)..], &b[strip(b)..]);
    sa.len()
        .cmp(&sb.len())
        .then_with(|| sa.cmp(sb))
        .then_with(|| a.len().cmp(&b.len()))
}

/// One endpoint-pair shared key and the association key derived from it.
#[derive(Clone)]
struct Key {
    id: u16,
    association_key: Vec<u8>,
}

/// Why a shared key operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthKeyError {
    /// AUTH is not in use on this association.
    NotNegotiated,
    /// No key has this identifier.
    UnknownKey,
    /// The active key cannot be deleted; activate another one first.
    KeyActive,
    /// The key table is full or the key too long.
    TooMany,
}

impl core::fmt::Display for AuthKeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            AuthKeyError::NotNegotiated => "AUTH is not in use on this association",
            AuthKeyError::UnknownKey => "no shared key with this identifier",
            AuthKeyError::KeyActive => "the active key cannot be deleted",
            AuthKeyError::TooMany => "key table full or key too long",
        })
    }
}

impl std::error::Error for AuthKeyError {}

/// Outcome of verifying an AUTH chunk (RFC 4895 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The HMAC matches: the chunks after the AUTH chunk are authenticated.
    Valid,
    /// The HMAC identifier is not one this side listed: discard, report Unsupported HMAC
    /// Identifier.
    UnsupportedHmac,
    /// Unknown key identifier, wrong HMAC length or wrong HMAC: discard silently.
    Invalid,
}

/// The AUTH state of an association that negotiated it.
#[derive(Clone)]
pub(crate) struct Auth {
    /// The two key vectors in the order of concatenation (§6.1).
    vectors: (Vec<u8>, Vec<u8>),
    /// Chunk types this side requires authenticated (its CHUNKS).
    pub(crate) recv_required: ChunkSet,
    /// Chunk types the peer requires authenticated, plus ASCONF and ASCONF ACK.
    pub(crate) send_required: ChunkSet,
    /// The HMAC algorithms this side listed (the ones it verifies).
    local_hmacs: Vec<HmacId>,
    /// The algorithm for outgoing AUTH chunks.
    send_hmac: HmacId,
    keys: Vec<Key>,
    active: u16,
}

impl core::fmt::Debug for Auth {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print key material.
        f.debug_struct("Auth")
            .field("send_hmac", &self.send_hmac)
            .field("active", &self.active)
            .field("keys", &self.keys.iter().map(|k| k.id).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// The AUTH state when both sides offered AUTH and share an HMAC algorithm; `None`
    /// otherwise (RFC 4895 §6: AUTH is then not used).
    pub(crate) fn negotiate(
        config: &AssociationConfig,
        local: &LocalAuth,
        peer: &PeerAuth,
    ) -> Option<Auth> {
        if !config.auth || !peer.offered() {
            return None;
        }
        let peer_hmacs = peer.hmacs.as_deref()?;
        // The first algorithm of the peer's list (its preference) that this side supports.
        let send_hmac = peer_hmacs
            .iter()
            .copied()
            .find(|h| local.hmacs.contains(h))?;
        let mut recv_required = ChunkSet::default();
        for &t in &local.chunks {
            recv_required.insert(t);
        }
        let mut send_required = ChunkSet::default();
        for &t in peer.chunks.iter().flatten() {
            let t = ChunkType(t);
            if listable(t) {
                send_required.insert(t);
            }
        }
        // RFC 5061 §4.1: ASCONF and ASCONF ACK are always sent authenticated.
        send_required.insert(ChunkType::ASCONF);
        send_required.insert(ChunkType::ASCONF_ACK);
        let lv = local.key_vector();
        let pv = peer.key_vector();
        // RFC 4895 §6.1: the smaller key vector is concatenated first.
        let vectors = if compare_vectors(&lv, &pv) == core::cmp::Ordering::Less {
            (lv, pv)
        } else {
            (pv, lv)
        };
        let mut a = Auth {
            vectors,
            recv_required,
            send_required,
            local_hmacs: local.hmacs.clone(),
            send_hmac,
            keys: Vec::new(),
            active: config.auth_active_key,
        };
        // Key 0 is the empty key unless configured otherwise (§6.1).
        if !config.auth_keys.iter().any(|(id, _)| *id == 0) {
            let _ = a.add_key(0, &[]);
        }
        for (id, k) in config.auth_keys.iter().take(MAX_KEYS) {
            let _ = a.add_key(*id, k);
        }
        if !a.keys.iter().any(|k| k.id == a.active) {
            a.active = 0;
        }
        Some(a)
    }

    /// Adds (or replaces) the endpoint-pair shared key `id` and derives its association key:
    /// shared key || smaller key vector || larger key vector (RFC 4895 §6.1).
    pub(crate) fn add_key(&mut self, id: u16, key: &[u8]) -> Result<(), AuthKeyError> {
        if key.len() > MAX_KEY_LEN {
            return Err(AuthKeyError::TooMany);
        }
        let mut k = Vec::with_capacity(key.len() + self.vectors.0.len() + self.vectors.1.len());
        k.extend_from_slice(key);
        k.extend_from_slice(&self.vectors.0);
        k.extend_from_slice(&self.vectors.1);
        if let Some(e) = self.keys.iter_mut().find(|e| e.id == id) {
            e.association_key = k;
            return Ok(());
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(AuthKeyError::TooMany);
        }
        self.keys.push(Key {
            id,
            association_key: k,
        });
        Ok(())
    }

    /// Makes `id` the key of outgoing AUTH chunks.
    pub(crate) fn activate_key(&mut self, id: u16) -> Result<(), AuthKeyError> {
        if !self.keys.iter().any(|k| k.id == id) {
            return Err(AuthKeyError::UnknownKey);
        }
        self.active = id;
        Ok(())
    }

    /// Deletes key `id` (never the active one).
    pub(crate) fn delete_key(&mut self, id: u16) -> Result<(), AuthKeyError> {
        if id == self.active {
            return Err(AuthKeyError::KeyActive);
        }
        let before = self.keys.len();
        self.keys.retain(|k| k.id != id);
        if self.keys.len() == before {
            return Err(AuthKeyError::UnknownKey);
        }
        Ok(())
    }

    /// The active key identifier.
    pub(crate) fn active_key(&self) -> u16 {
        self.active
    }

    /// The algorithm of outgoing AUTH chunks.
    pub(crate) fn send_hmac(&self) -> HmacId {
        self.send_hmac
    }

    /// The AUTH chunk to push (HMAC zero, filled by [`Auth::sign`]).
    pub(crate) fn placeholder(&self) -> crate::wire::Auth<'static> {
        let len = hmac_len(self.send_hmac).unwrap_or(20);
        crate::wire::Auth {
            shared_key_id: self.active,
            hmac_id: self.send_hmac,
            hmac: &ZEROS[..len],
        }
    }

    /// Fills the HMAC of the AUTH chunk at `at` in `packet` (the complete packet, its
    /// checksum not yet written): HMAC over the AUTH chunk with a zero HMAC field and every
    /// byte after it (RFC 4895 §6.2).
    pub(crate) fn sign(&self, packet: &mut [u8], at: usize) {
        let Some(len) = hmac_len(self.send_hmac) else {
            return;
        };
        let Some(key) = self.keys.iter().find(|k| k.id == self.active) else {
            return;
        };
        let Some(covered) = packet.get(at..) else {
            return;
        };
        let m = mac(self.send_hmac, &key.association_key, &[covered]);
        let field = at + crate::wire::Auth::HMAC_OFFSET;
        if let Some(dst) = packet.get_mut(field..field + len) {
            dst.copy_from_slice(&m[..len]);
        }
    }

    /// Verifies the AUTH chunk `chunk` that starts at `at` in `packet` (RFC 4895 §6.3).
    pub(crate) fn verify(
        &self,
        packet: &[u8],
        at: usize,
        chunk: &crate::wire::Auth<'_>,
    ) -> Verdict {
        // §6.3: an HMAC identifier this side did not list is reported.
        if !self.local_hmacs.contains(&chunk.hmac_id) {
            return Verdict::UnsupportedHmac;
        }
        let Some(len) = hmac_len(chunk.hmac_id) else {
            return Verdict::UnsupportedHmac;
        };
        // §6.3: no key with this identifier: discard silently.
        let Some(key) = self.keys.iter().find(|k| k.id == chunk.shared_key_id) else {
            return Verdict::Invalid;
        };
        if chunk.hmac.len() != len {
            return Verdict::Invalid;
        }
        let field = at + crate::wire::Auth::HMAC_OFFSET;
        let (Some(head), Some(tail)) = (packet.get(at..field), packet.get(field + len..)) else {
            return Verdict::Invalid;
        };
        let m = mac(
            chunk.hmac_id,
            &key.association_key,
            &[head, &ZEROS[..len], tail],
        );
        // Under `cfg(fuzzing)` the HMAC is not checked, so a fuzzer can reach what follows.
        if cfg!(fuzzing) || constant_time_eq(&m[..len], chunk.hmac) {
            Verdict::Valid
        } else {
            Verdict::Invalid
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_vectors_compare_as_numbers_with_leading_zeros_ignored() {
        use core::cmp::Ordering::*;
        assert_eq!(compare_vectors(&[0, 0, 5], &[4]), Greater);
        assert_eq!(compare_vectors(&[1, 0], &[0xff]), Greater);
        assert_eq!(compare_vectors(&[0, 7], &[7]), Greater);
        assert_eq!(compare_vectors(&[7], &[0, 7]), Less);
        assert_eq!(compare_vectors(&[3, 4], &[3, 5]), Less);
    }

    #[test]
    fn hmac_sha1_and_sha256_match_rfc_4231_and_rfc_2202_vectors() {
        // RFC 2202 test case 2 and RFC 4231 test case 2: key "Jefe".
        let data = b"what do ya want for nothing?";
        let s1 = mac(HmacId::SHA1, b"Jefe", &[&data[..10], &data[10..]]);
        assert_eq!(
            s1[..20],
            [
                0xef, 0xfc, 0xdf, 0x6a, 0xe5, 0xeb, 0x2f, 0xa2, 0xd2, 0x74, 0x16, 0xd5, 0xf1, 0x84,
                0xdf, 0x9c, 0x25, 0x9a, 0x7c, 0x79
            ]
        );
        let s256 = mac(HmacId::SHA256, b"Jefe", &[data]);
        assert_eq!(s256[..4], [0x5b, 0xdc, 0xc1, 0x46]);
        assert_eq!(s256[28..], [0x64, 0xec, 0x38, 0x43]);
    }

    fn pair(ca: &AssociationConfig, cb: &AssociationConfig) -> (Auth, Auth) {
        let la = LocalAuth::new(ca, [1; RANDOM_LEN]);
        let lb = LocalAuth::new(cb, [2; RANDOM_LEN]);
        let offer = |l: &LocalAuth| {
            let mut params = Vec::new();
            l.push_params(&mut params);
            let mut p = PeerAuth::default();
            for x in &params {
                p.take_param(x);
            }
            p
        };
        let a = Auth::negotiate(ca, &la, &offer(&lb)).unwrap();
        let b = Auth::negotiate(cb, &lb, &offer(&la)).unwrap();
        (a, b)
    }

    #[test]
    fn both_sides_derive_the_same_association_key_and_verify_each_other() {
        let c = AssociationConfig {
            auth: true,
            ..AssociationConfig::default()
        };
        let mut cb = c.clone();
        cb.auth_hmacs = vec![HmacId::SHA1];
        let (a, b) = pair(&c, &cb);
        assert_eq!(a.vectors, b.vectors);
        // B supports only SHA-1, so both send with it.
        assert_eq!(a.send_hmac(), HmacId::SHA1);
        assert_eq!(b.send_hmac(), HmacId::SHA1);
        let (a256, _) = pair(&c, &c);
        assert_eq!(a256.send_hmac(), HmacId::SHA256);
        let mut pkt = vec![0u8; 12];
        let at = pkt.len();
        let ph = a.placeholder();
        let mut chunk = vec![0u8; crate::wire::Encode::encoded_len(&ph)];
        crate::wire::Encode::encode(&ph, &mut chunk).unwrap();
        pkt.extend_from_slice(&chunk);
        pkt.extend_from_slice(&[0, 0, 0, 8, 1, 2, 3, 4]);
        a.sign(&mut pkt, at);
        let raw = crate::wire::RawChunk::new_checked(&pkt[at..]).unwrap();
        let parsed = crate::wire::Auth::parse(&raw).unwrap();
        assert_eq!(b.verify(&pkt, at, &parsed), Verdict::Valid);
        // One flipped bit after the AUTH chunk breaks it.
        let mut bad = pkt.clone();
        *bad.last_mut().unwrap() ^= 1;
        let raw = crate::wire::RawChunk::new_checked(&bad[at..]).unwrap();
        let parsed = crate::wire::Auth::parse(&raw).unwrap();
        assert_eq!(b.verify(&bad, at, &parsed), Verdict::Invalid);
    }
}
