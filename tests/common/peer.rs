//! An independent SRTP peer for tests: webrtc-srtp contexts on a loopback UDP socket, which
//! answers STUN Binding requests (with the `stun` crate) when asked to.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use stun::agent::TransactionId;
use stun::message::{BINDING_REQUEST, BINDING_SUCCESS, Message};
use stun::xoraddr::XorMappedAddress;
use webrtc_srtp::context::Context;
use webrtc_srtp::protection_profile::ProtectionProfile;

/// What the peer saw.
#[derive(Default, Debug)]
pub struct Seen {
    /// Decrypted RTP packets (plain bytes).
    pub rtp: Vec<Vec<u8>>,
    /// When each of them arrived.
    pub arrivals: Vec<Instant>,
    /// Decrypted RTCP packets.
    pub rtcp: usize,
    /// STUN Binding requests received (and answered if `answer_stun`).
    pub stun_requests: usize,
    /// Other STUN (indications).
    pub stun_other: usize,
    /// Datagrams that did not decrypt.
    pub undecryptable: usize,
}

pub struct Peer {
    pub socket: UdpSocket,
    tx: Context,
    rx: Context,
    pub answer_stun: bool,
    pub seen: Seen,
}

impl Peer {
    /// A peer on `ip` protecting with `tx` key‖salt and unprotecting with `rx`.
    pub fn new(ip: &str, profile: ProtectionProfile, tx: &[u8], rx: &[u8], key_len: usize) -> Self {
        let socket = UdpSocket::bind((ip, 0)).unwrap();
        let ctx = |k: &[u8]| {
            Context::new(
                &k[..key_len],
                &k[key_len..],
                profile,
                Some(webrtc_srtp::option::srtp_replay_protection(1024)),
                None,
            )
            .unwrap()
        };
        Peer {
            socket,
            tx: ctx(tx),
            rx: ctx(rx),
            answer_stun: true,
            seen: Seen::default(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    /// Protects `plain` and sends it to `to`.
    pub fn send_rtp(&mut self, plain: &[u8], to: SocketAddr) {
        let wire = self.tx.encrypt_rtp(plain).unwrap();
        self.socket.send_to(&wire, to).unwrap();
    }

    /// Protects `plain` RTCP and sends it to `to`.
    pub fn send_rtcp(&mut self, plain: &[u8], to: SocketAddr) {
        let wire = self.tx.encrypt_rtcp(plain).unwrap();
        self.socket.send_to(&wire, to).unwrap();
    }

    /// Receives and classifies datagrams for `duration`, or until `rtp_count` RTP packets
    /// have arrived.
    pub fn pump(&mut self, duration: Duration, rtp_count: usize) {
        let deadline = Instant::now() + duration;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline && self.seen.rtp.len() < rtp_count {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            self.socket.set_read_timeout(Some(left)).unwrap();
            let Ok((n, from)) = self.socket.recv_from(&mut buf) else {
                break;
            };
            self.handle(&buf[..n], from);
        }
    }

    fn handle(&mut self, d: &[u8], from: SocketAddr) {
        match d.first() {
            Some(0..=3) => {
                let mut m = Message::new();
                m.raw = d.to_vec();
                if m.decode().is_err() {
                    return;
                }
                if m.typ == BINDING_REQUEST {
                    self.seen.stun_requests += 1;
                    if self.answer_stun {
                        let mut r = Message::new();
                        r.build(&[
                            Box::new(BINDING_SUCCESS),
                            Box::new(TransactionId(m.transaction_id.0)),
                            Box::new(XorMappedAddress {
                                ip: from.ip(),
                                port: from.port(),
                            }),
                        ])
                        .unwrap();
                        self.socket.send_to(&r.raw, from).unwrap();
                    }
                } else {
                    self.seen.stun_other += 1;
                }
            }
            Some(128..=191) if matches!(d.get(1), Some(192..=223)) => match self.rx.decrypt_rtcp(d)
            {
                Ok(_) => self.seen.rtcp += 1,
                Err(_) => self.seen.undecryptable += 1,
            },
            Some(128..=191) => match self.rx.decrypt_rtp(d) {
                Ok(p) => {
                    self.seen.rtp.push(p.to_vec());
                    self.seen.arrivals.push(Instant::now());
                }
                Err(_) => self.seen.undecryptable += 1,
            },
            _ => self.seen.undecryptable += 1,
        }
    }
}

/// An RTP packet built by the `rtp` crate (webrtc-rs), not by srtpd's code.
pub fn independent_rtp_packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    use webrtc_util::marshal::Marshal;
    let packet = rtp::packet::Packet {
        header: rtp::header::Header {
            version: 2,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc,
            ..Default::default()
        },
        payload: bytes::Bytes::copy_from_slice(payload),
    };
    packet
        .marshal()
        .expect("the rtp crate marshals its packet")
        .to_vec()
}
