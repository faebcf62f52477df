//! Any datagrams, from any of a few addresses, on any of the endpoint's sockets (a call's
//! own media socket, a shared media port, producer ports): the demultiplexing, the claim
//! policy, STUN, SRTP and RTCP handling and the timers never panic, and every transmit the
//! endpoint asks for lies within its buffers.
#![no_main]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use srtpd::call::{
    CallNo, CallSetup, CallSpec, CallTimers, Candidate, Endpoint, EndpointLimits, MAX_DATAGRAM,
    MediaKind, MuteMode, Outcome, RtpSource, SharedSocket, SocketId, TrackParams, TrackPorts,
    TrackSetup,
};
use srtpd::keying::CallKeys;
use srtpd::rtp::Ssrc;
use srtpd::srtp::{MasterKey, SrtpOptions, SrtpProfile};

const PROFILE: SrtpProfile = SrtpProfile::AesCm128HmacSha1_80;
const SHARED: SocketId = SocketId(100);
const SHARED_LOCAL: SocketId = SocketId(101);
const SOCKETS: [SocketId; 6] = [
    SocketId(1),
    SHARED,
    SHARED_LOCAL,
    SocketId(10),
    SocketId(11),
    SocketId(12),
];

fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, last], port))
}

fn call(i: u8, media: SocketId, candidates: &[SocketAddr]) -> CallSpec {
    let key = |seed: u8| MasterKey::from_concatenated(PROFILE, &[seed; 30]).expect("a key");
    let local = SocketId(10 + u32::from(i));
    let mut own = vec![local];
    if media != SHARED {
        own.push(media);
    }
    CallSpec {
        no: CallNo(u64::from(i)),
        setup: CallSetup {
            call_id: format!("fuzz-{i}"),
            keys: CallKeys {
                profile: PROFILE,
                rtp_tag_len: None,
                tx: key(2 * i),
                rx: key(2 * i + 1),
            },
            srtp: SrtpOptions::default(),
            candidates: candidates
                .iter()
                .map(|&addr| Candidate { addr, priority: 1 })
                .collect(),
            audio: Some(TrackSetup {
                params: TrackParams {
                    payload_type: 111,
                    clock_rate: 48000,
                    ptime_ms: 20,
                    dtmf_payload_type: Some(101),
                    codec: Some(srtpd::media::codec::CodecKind::Opus),
                },
                ssrc: Ssrc(0x100 + u32::from(i)),
            }),
            video: None,
            timers: CallTimers {
                check_timeout: Duration::from_secs(3),
                keepalive: Duration::from_secs(1),
                rtcp_interval: Duration::from_secs(1),
                media_timeout: Duration::from_secs(5),
                media_timeout_held: Duration::from_secs(10),
            },
            ringing: false,
            mute_mode: MuteMode::Silence,
        },
        media,
        own_sockets: own,
        audio: TrackPorts {
            rtp_source: Some(if i == 2 {
                RtpSource::Shared {
                    socket: SHARED_LOCAL,
                    ssrc: Ssrc(0x77),
                }
            } else {
                RtpSource::Own(local)
            }),
            sink: Some((local, addr(1, 6000 + u16::from(i)))),
            ..TrackPorts::default()
        },
        video: TrackPorts::default(),
    }
}

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut ep = Endpoint::new(Arc::default(), EndpointLimits::default());
    ep.add_shared_socket(SHARED, SharedSocket::Media);
    ep.add_shared_socket(SHARED_LOCAL, SharedSocket::Local);
    let now = SystemTime::now();
    ep.add_call(call(0, SocketId(1), &[addr(1, 5000)]), t0, now)
        .expect("call 0");
    ep.add_call(call(1, SHARED, &[addr(1, 5001)]), t0, now)
        .expect("call 1");
    ep.add_call(call(2, SHARED, &[]), t0, now).expect("call 2");

    // Each record: socket (1 byte), source (1 byte), elapsed ms (1 byte), length (2 bytes),
    // then the datagram.
    let mut rest = data;
    let mut at = t0;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut trailer = [0u8; 32];
    while rest.len() >= 5 {
        let socket = SOCKETS[usize::from(rest[0]) % SOCKETS.len()];
        let from = addr(1 + rest[1] % 3, 5000 + u16::from(rest[1] % 4));
        at += Duration::from_millis(u64::from(rest[2]));
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]])) % (MAX_DATAGRAM - 64);
        rest = &rest[5..];
        let len = len.min(rest.len());
        let (datagram, tail) = rest.split_at(len);
        rest = tail;
        buf[..len].copy_from_slice(datagram);
        let route = ep.route(socket, from, &buf[..len]);
        if let Outcome::Send(t) = ep.handle(at, route, from, &mut buf[..len], &mut trailer) {
            assert!(t.start + t.len <= len, "a transmit within the datagram");
            assert!(t.trailer <= trailer.len());
        }
        if ep.poll_timeout().is_some_and(|due| due <= at) {
            ep.handle_timeout(at);
        }
        let (bytes, transmits) = ep.outgoing();
        for t in transmits {
            assert!(
                t.start + t.len <= bytes.len(),
                "a transmit within the out queue"
            );
        }
        ep.clear_outgoing();
        while ep.poll_event().is_some() {}
        while ep.poll_file_write().is_some() {}
    }
    for kind in [MediaKind::Audio] {
        let _ = ep.gate(CallNo(1), kind, true, at);
    }
    for i in 0..3 {
        let _ = ep.remove_call(CallNo(i), "fuzz".to_owned());
    }
});
