//! STUN Binding messages (RFC 5389) for candidate checks, keepalives and answering peers.
//! Built and parsed with the `stun` crate; STUN is control traffic, so these allocate.

use std::net::SocketAddr;

use stun::agent::TransactionId;
use stun::fingerprint::FINGERPRINT;
use stun::message::{
    BINDING_REQUEST, BINDING_SUCCESS, CLASS_INDICATION, Getter, METHOD_BINDING, Message,
    MessageType, Setter,
};
use stun::xoraddr::XorMappedAddress;

/// A STUN transaction id.
pub type TxId = [u8; 12];

/// A Binding message srtpd cares about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// A peer asks for its reflexive address: answer it.
    Request(TxId),
    /// A success response to one of our requests, with the address the peer saw.
    Success(TxId, Option<SocketAddr>),
    /// A keepalive.
    Indication,
}

fn encode(setters: &[Box<dyn Setter>]) -> Vec<u8> {
    let mut m = Message::new();
    m.build(setters)
        .expect("building a Binding message cannot fail");
    m.raw
}

/// A Binding request with transaction id `txid`, ending in FINGERPRINT.
pub fn request(txid: TxId) -> Vec<u8> {
    encode(&[
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId(txid)),
        Box::new(FINGERPRINT),
    ])
}

/// A Binding indication (a keepalive that needs no answer).
pub fn indication() -> Vec<u8> {
    encode(&[
        Box::new(MessageType::new(METHOD_BINDING, CLASS_INDICATION)),
        Box::new(TransactionId::new()),
        Box::new(FINGERPRINT),
    ])
}

/// The success response to request `txid` from `mapped`.
pub fn success(txid: TxId, mapped: SocketAddr) -> Vec<u8> {
    encode(&[
        Box::new(BINDING_SUCCESS),
        Box::new(TransactionId(txid)),
        Box::new(XorMappedAddress {
            ip: mapped.ip(),
            port: mapped.port(),
        }),
        Box::new(FINGERPRINT),
    ])
}

/// The size of the largest Binding success response [`success`] makes (IPv6 mapped address
/// and fingerprint): what each answer is charged against the STUN reply budget.
pub const MAX_SUCCESS_LEN: usize = 52;

/// Whether a datagram is a Binding request (message type 0x0001), by its first two bytes.
pub fn is_request(datagram: &[u8]) -> bool {
    datagram.get(..2) == Some(&[0x00, 0x01][..])
}

/// Whether a datagram is a Binding success response (RFC 5389 §6: message type 0x0101), by its
/// first two bytes: what several calls checking one address all need to see.
pub fn is_success_response(datagram: &[u8]) -> bool {
    datagram.get(..2) == Some(&BINDING_SUCCESS.value().to_be_bytes()[..])
}

/// Parses a datagram as a Binding message; `None` for anything else or malformed input.
pub fn parse(datagram: &[u8]) -> Option<Binding> {
    let mut m = Message::new();
    m.raw = datagram.to_vec();
    m.decode().ok()?;
    if m.typ.method != METHOD_BINDING {
        return None;
    }
    let txid = m.transaction_id.0;
    if m.typ == BINDING_REQUEST {
        Some(Binding::Request(txid))
    } else if m.typ == BINDING_SUCCESS {
        let mut mapped = XorMappedAddress::default();
        let addr = mapped
            .get_from(&m)
            .ok()
            .map(|_| SocketAddr::new(mapped.ip, mapped.port));
        Some(Binding::Success(txid, addr))
    } else if m.typ.class == CLASS_INDICATION {
        Some(Binding::Indication)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = [7u8; 12];
        assert_eq!(parse(&request(id)), Some(Binding::Request(id)));
        let addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            parse(&success(id, addr)),
            Some(Binding::Success(id, Some(addr)))
        );
        let addr6: SocketAddr = "[::1]:4000".parse().unwrap();
        assert_eq!(
            parse(&success(id, addr6)),
            Some(Binding::Success(id, Some(addr6)))
        );
        assert_eq!(parse(&indication()), Some(Binding::Indication));
        assert!(is_success_response(&success(id, addr)));
        assert!(!is_success_response(&request(id)));
        assert!(is_request(&request(id)));
        assert!(!is_request(&success(id, addr)));
        assert!(success(id, addr6).len() <= MAX_SUCCESS_LEN);
        assert!(success(id, addr).len() <= MAX_SUCCESS_LEN);
        assert_eq!(parse(&[0, 1, 0, 0]), None);
        assert_eq!(
            crate::rtp::classify(&request(id)),
            crate::rtp::PacketKind::Stun
        );
    }
}
