//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod alloc;
pub mod bot;
pub mod contract;
pub mod daemon;
pub mod peer;
pub mod tone;

/// Bytes from hex, ignoring whitespace.
pub fn unhex(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).expect("valid hex in a test fixture")
}

/// A plain RTP packet: version 2, the given fields, then `payload`.
pub fn rtp_packet(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt & 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An RTP packet with two CSRCs and an RFC 8285 one-byte header extension.
pub fn rtp_packet_with_csrcs_and_extension(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x92, 0x6f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 960).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&0x1111_1111u32.to_be_bytes());
    p.extend_from_slice(&0x2222_2222u32.to_be_bytes());
    // 0xBEDE profile, 2 words: audio level (id 1, len 1) and abs-send-time (id 3, len 3).
    p.extend_from_slice(&[
        0xbe, 0xde, 0x00, 0x02, 0x10, 0x2a, 0x32, 0x01, 0x02, 0x03, 0, 0,
    ]);
    p.extend_from_slice(payload);
    p
}

/// A sender report with one reception report block, from `ssrc`.
pub fn rtcp_sender_report(ssrc: u32, n: u32) -> Vec<u8> {
    let mut p = vec![0x81, 200, 0, 12];
    p.extend_from_slice(&ssrc.to_be_bytes());
    for word in [0xe000_0000 + n, n, n * 960, n, n * 100] {
        p.extend_from_slice(&word.to_be_bytes());
    }
    for word in [0xdead_beef, 0, n, 7, 0, 0] {
        p.extend_from_slice(&word.to_be_bytes());
    }
    p
}

/// `packet` in a buffer with `room` spare bytes behind it.
pub fn with_room(packet: &[u8], room: usize) -> Vec<u8> {
    let mut buf = packet.to_vec();
    buf.resize(packet.len() + room, 0);
    buf
}

/// Waits up to `within` for `child` to exit (killing it then), and returns its output.
pub fn wait_for_child(
    mut child: std::process::Child,
    within: std::time::Duration,
) -> std::process::Output {
    let deadline = std::time::Instant::now() + within;
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

/// ffmpeg, quiet but for errors, never asking, overwriting its outputs.
pub fn ffmpeg() -> std::process::Command {
    let mut c = std::process::Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    c
}

/// ffmpeg as an SRTP peer that decodes what it receives on port `port` (payload type `pt`,
/// `rtpmap` as in SDP, AES_CM_128_HMAC_SHA1_80 with the base64 `key`) for `seconds` into the
/// 48 kHz mono WAV file `wav`. Returns once ffmpeg listens (give it the process to wait on).
pub fn ffmpeg_srtp_receiver(
    dir: &std::path::Path,
    port: u16,
    pt: u8,
    rtpmap: &str,
    key: &str,
    seconds: &str,
    wav: &std::path::Path,
) -> std::process::Child {
    let sdp = dir.join(format!("in-{port}.sdp"));
    std::fs::write(
        &sdp,
        format!(
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=srtpd\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/SAVP {pt}\r\na=rtpmap:{pt} {rtpmap}\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n"
        ),
    )
    .unwrap();
    let child = ffmpeg()
        .args(["-protocol_whitelist", "file,udp,rtp,srtp", "-i"])
        .arg(&sdp)
        .args([
            "-t",
            seconds,
            "-ac",
            "1",
            "-ar",
            "48000",
            "-c:a",
            "pcm_s16le",
        ])
        .arg(wav)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    std::thread::sleep(std::time::Duration::from_millis(500));
    child
}

/// ffmpeg as an SRTP peer that sends `seconds` of a 440 Hz tone in real time to `dest`,
/// encoded as `codec` says (its ffmpeg options, `-payload_type` among them), in RTP packets
/// of at most `pkt_size` bytes, protected with AES_CM_128_HMAC_SHA1_80 and the base64 `key`
/// (RTCP on the same port). Returns once it has sent everything, having asserted it succeeded.
pub fn ffmpeg_srtp_tone(
    seconds: u32,
    codec: &[&str],
    key: &str,
    dest: std::net::SocketAddr,
    pkt_size: u32,
) {
    let status = ffmpeg()
        .args(["-re", "-f", "lavfi", "-i"])
        .arg(format!(
            "sine=frequency=440:duration={seconds}:sample_rate=48000"
        ))
        .args(codec)
        .args([
            "-f",
            "rtp",
            "-srtp_out_suite",
            "AES_CM_128_HMAC_SHA1_80",
            "-srtp_out_params",
            key,
        ])
        .arg(format!(
            "srtp://{}:{}?rtcpport={}&pkt_size={pkt_size}",
            dest.ip(),
            dest.port(),
            dest.port()
        ))
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg sent the tone");
}
