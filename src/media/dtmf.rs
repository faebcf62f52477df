//! DTMF as RTP telephone-events (RFC 4733): reading a peer's events once per digit, and the
//! packets that send digits, with time passed in.

/// The payload type telephone-events use unless `audio.dtmf_payload_type` says otherwise.
pub const DEFAULT_PAYLOAD_TYPE: u8 = 101;
/// The most digits one `call.dtmf` sends.
pub const MAX_DIGITS: usize = 64;
/// The shortest and longest tone `call.dtmf` sends, ms.
pub const DURATION_MS: std::ops::RangeInclusive<u32> = 40..=5_000;
/// How many times the final packet of an event is sent (RFC 4733 section 2.5.1.4: three).
const END_PACKETS: u32 = 3;
/// The volume of the tones sent, in -dBm0 (RFC 4733 section 2.3.4; 10 is a usual level).
const VOLUME: u8 = 10;
/// The pause between two digits sent, ms.
const GAP_MS: u32 = 60;

/// The event code of a DTMF digit (RFC 4733 section 3.2): 0–9, `*`, `#`, A–D.
pub fn event_of(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        'a'..='d' => Some(digit as u8 - b'a' + 12),
        _ => None,
    }
}

/// The digit of a DTMF event code.
pub fn digit_of(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// Checks a `call.dtmf` request's digits: the events to send, or what is wrong.
pub fn parse_digits(digits: &str) -> Result<Vec<u8>, String> {
    if digits.is_empty() {
        return Err("no digits".to_owned());
    }
    if digits.chars().count() > MAX_DIGITS {
        return Err(format!("more than {MAX_DIGITS} digits"));
    }
    digits
        .chars()
        .map(|c| event_of(c).ok_or_else(|| format!("{:?} is no DTMF digit (0-9, *, #, A-D)", c)))
        .collect()
}

/// A telephone-event payload (RFC 4733 section 2.3): event, end bit, volume, duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code.
    pub event: u8,
    /// Whether the event has ended.
    pub end: bool,
    /// Its power level, -dBm0 (0–63).
    pub volume: u8,
    /// Its duration so far, in clock units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// The payload's first event (a packet may carry more, redundantly: RFC 4733 section
    /// 2.5.1.5), or `None` for a payload too short.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let p: &[u8; 4] = payload.get(..4)?.try_into().ok()?;
        Some(TelephoneEvent {
            event: p[0],
            end: p[1] & 0x80 != 0,
            volume: p[1] & 0x3f,
            duration: u16::from_be_bytes([p[2], p[3]]),
        })
    }

    /// The four bytes of the payload.
    pub fn emit(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (u8::from(self.end) << 7) | (self.volume & 0x3f),
            d[0],
            d[1],
        ]
    }
}

/// Reads a peer's telephone-events and tells each digit once: the packets of one event
/// share an RTP timestamp (its start), are retransmitted, and end with three end packets;
/// only the first packet of an event not seen before counts.
#[derive(Debug, Default)]
pub struct DtmfReceiver {
    /// The start timestamps of the last events seen, newest last.
    recent: [Option<u32>; 4],
}

impl DtmfReceiver {
    /// A packet of telephone-events with RTP timestamp `timestamp`: the digit, if it starts
    /// an event not seen before.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let event = TelephoneEvent::parse(payload)?;
        let digit = digit_of(event.event)?;
        if self.recent.contains(&Some(timestamp)) {
            return None;
        }
        self.recent.rotate_left(1);
        self.recent[3] = Some(timestamp);
        Some(digit)
    }
}

/// One telephone-event packet to send: its payload, whether it carries the marker bit (the
/// first of an event), and how many clock units after the first event's start its RTP
/// timestamp lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DtmfPacket {
    /// The payload.
    pub payload: [u8; 4],
    /// The marker bit.
    pub marker: bool,
    /// The event's start, in clock units from the first event's.
    pub timestamp_offset: u32,
}

/// Digits being sent: a packet every packet time while a tone lasts (its timestamp the tone's
/// start, its duration growing), three end packets, a pause, the next digit. Timestamps and
/// durations count in the audio track's clock, as they share its SSRC (8 kHz for G.711; 48 kHz
/// for Opus, as WebRTC's telephone-event/48000).
#[derive(Debug)]
pub struct DtmfSender {
    events: Vec<u8>,
    /// The tone's length in clock units.
    tone: u32,
    /// Clock units a packet covers.
    step: u32,
    /// The digit being sent, and the packets of it sent so far.
    index: usize,
    sent: u32,
    /// The current digit's start, in clock units from the first's.
    start: u32,
    /// Packet times of pause after each digit.
    gap: u32,
}

impl DtmfSender {
    /// Sends `events` (see [`parse_digits`]), each a tone of `duration_ms`, in packets of
    /// `ptime_ms`, on a clock of `clock_rate` Hz.
    pub fn new(events: Vec<u8>, duration_ms: u32, ptime_ms: u32, clock_rate: u32) -> Self {
        let ptime_ms = ptime_ms.max(10);
        let step = ptime_ms * clock_rate / 1000;
        // A whole number of packets (the last carries the whole duration), within the
        // 16-bit duration field.
        let most = u32::from(u16::MAX) / step;
        let tone = duration_ms.div_ceil(ptime_ms).clamp(1, most) * step;
        DtmfSender {
            events,
            tone,
            gap: (GAP_MS / ptime_ms).max(1),
            step,
            index: 0,
            sent: 0,
            start: 0,
        }
    }

    /// The packets of one digit: the tone's, then the end packets.
    fn packets_per_digit(&self) -> u32 {
        self.tone.div_ceil(self.step) + END_PACKETS - 1
    }

    /// The next packet, one per packet time (the pause between digits is packets with none:
    /// `Some(None)`), or `None` once every digit was sent.
    pub fn next_packet(&mut self) -> Option<Option<DtmfPacket>> {
        let event = *self.events.get(self.index)?;
        let per_digit = self.packets_per_digit();
        if self.sent >= per_digit {
            // The pause after the digit.
            self.sent += 1;
            if self.sent >= per_digit + self.gap {
                self.index += 1;
                self.start += (per_digit + self.gap) * self.step;
                self.sent = 0;
            }
            return Some(None);
        }
        let k = self.sent;
        self.sent += 1;
        let duration = ((k + 1) * self.step).min(self.tone);
        let payload = TelephoneEvent {
            event,
            end: duration == self.tone,
            volume: VOLUME,
            duration: duration as u16,
        }
        .emit();
        Some(Some(DtmfPacket {
            payload,
            marker: k == 0,
            timestamp_offset: self.start,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_events() {
        assert_eq!(parse_digits("19*#AD").unwrap(), vec![1, 9, 10, 11, 12, 15]);
        for d in "0123456789*#ABCD".chars() {
            assert_eq!(digit_of(event_of(d).unwrap()), Some(d));
        }
        assert!(parse_digits("12x").unwrap_err().contains("'x'"));
        assert!(parse_digits("").is_err());
        assert!(parse_digits(&"1".repeat(65)).is_err());
        assert_eq!(digit_of(16), None);
    }

    #[test]
    fn the_rfc_payload_layout() {
        // RFC 4733 section 2.3: event 5, end, volume 10, duration 800.
        let e = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(e.emit(), [5, 0x8a, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&e.emit()), Some(e));
        assert_eq!(TelephoneEvent::parse(&[1, 2, 3]), None);
    }

    #[test]
    fn a_sent_digit_is_read_once() {
        let mut sender = DtmfSender::new(parse_digits("1#").unwrap(), 100, 20, 8_000);
        let mut receiver = DtmfReceiver::default();
        let mut heard = String::new();
        let mut packets = Vec::new();
        while let Some(p) = sender.next_packet() {
            packets.push(p);
            if let Some(p) = p {
                if let Some(d) = receiver.on_packet(1000 + p.timestamp_offset, &p.payload) {
                    heard.push(d);
                }
            }
        }
        assert_eq!(heard, "1#");
        let digit: Vec<DtmfPacket> = packets.iter().flatten().copied().collect();
        // 100 ms in 20 ms packets: five growing durations, the last sent three times.
        let first: Vec<TelephoneEvent> = digit[..7]
            .iter()
            .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
            .collect();
        let durations: Vec<u16> = first.iter().map(|e| e.duration).collect();
        assert_eq!(durations, vec![160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = first.iter().map(|e| e.end).collect();
        assert_eq!(ends, vec![false, false, false, false, true, true, true]);
        assert!(digit[0].marker && !digit[1].marker);
        assert!(digit[..7].iter().all(|p| p.timestamp_offset == 0));
        // The second digit starts after the first's packets and the pause, marker set.
        assert!(digit[7].marker);
        assert_eq!(digit[7].timestamp_offset, (7 + 3) * 160);
        assert_eq!(packets.len(), 2 * (7 + 3));
        // Retransmissions and reordered repeats of a seen event are not new digits.
        let again = receiver.on_packet(1000, &digit[2].payload);
        assert_eq!(again, None);
    }
}
