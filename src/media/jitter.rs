//! A jitter buffer for one audio track, with time passed in: packets go in as they arrive
//! (any order, duplicates, gaps); one frame comes out per packet time, in sequence order,
//! after a delay that follows the measured jitter between 20 and 200 ms. A missing packet
//! comes out as a loss to conceal (with the next packet, for codecs that carry forward error
//! correction); a packet later than its turn is dropped and counted. Storage is made once:
//! nothing is allocated per packet.

use std::time::Instant;

use serde::Serialize;

/// Packets held at most: 200 ms of 20 ms packets, and room for reordering past it.
pub const SLOTS: usize = 16;
/// The largest payload held (Opus' largest frame is 1,275 bytes).
pub const MAX_PAYLOAD: usize = 1_500;
/// The least and most delay the buffer aims for, ms.
pub const TARGET_MS: std::ops::RangeInclusive<u32> = 20..=200;

/// What the buffer did, for `call.stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct JitterStats {
    /// The delay it aims for now, ms.
    pub target_ms: u32,
    /// The delay of what it holds now, ms.
    pub delay_ms: u32,
    /// Packets that came after their turn to play, dropped.
    pub late: u64,
    /// Packets that never came in time (each a concealed or recovered frame).
    pub lost: u64,
    /// Frames made up while the buffer ran dry or for lost packets.
    pub concealed: u64,
    /// Lost frames rebuilt from the next packet's forward error correction.
    pub recovered: u64,
    /// Frames dropped to bring the delay back down to the target.
    pub skipped: u64,
}

/// One frame's worth of output.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout<'a> {
    /// Not started yet (nothing arrived, or the first packets wait out the target delay):
    /// nothing to play.
    Waiting,
    /// The next packet's payload.
    Packet(&'a [u8]),
    /// The next packet is lost: conceal it, or rebuild it from `next` (the packet after it)
    /// when the codec carries forward error correction.
    Lost {
        /// The packet after the lost one, if it is here.
        next: Option<&'a [u8]>,
    },
    /// Nothing more has arrived: conceal a frame (the peer may have paused).
    Dry,
}

#[derive(Clone, Copy)]
struct Slot {
    seq: u64,
    len: usize,
    used: bool,
}

/// The jitter buffer of one track.
pub struct JitterBuffer {
    slots: [Slot; SLOTS],
    bytes: Box<[u8]>,
    /// The packet time, ms, and in RTP clock units.
    ptime_ms: u32,
    clock_rate: u32,
    /// The extended sequence number of the next packet to play, once playing.
    next: Option<u64>,
    /// The highest extended sequence number seen.
    highest: Option<u64>,
    /// When the first packet arrived (playout starts a target delay later).
    first_arrival: Option<Instant>,
    /// RFC 3550 interarrival jitter, in RTP clock units (scaled by 16).
    jitter16: u64,
    last_transit: Option<i64>,
    epoch: Option<Instant>,
    stats: JitterStats,
}

impl JitterBuffer {
    /// A buffer for packets of `ptime_ms` on a clock of `clock_rate` Hz.
    pub fn new(ptime_ms: u32, clock_rate: u32) -> Self {
        JitterBuffer {
            slots: [Slot {
                seq: 0,
                len: 0,
                used: false,
            }; SLOTS],
            bytes: vec![0u8; SLOTS * MAX_PAYLOAD].into_boxed_slice(),
            ptime_ms: ptime_ms.max(10),
            clock_rate,
            next: None,
            highest: None,
            first_arrival: None,
            jitter16: 0,
            last_transit: None,
            epoch: None,
            stats: JitterStats {
                target_ms: *TARGET_MS.start(),
                ..JitterStats::default()
            },
        }
    }

    /// The figures so far.
    pub fn stats(&self) -> JitterStats {
        JitterStats {
            delay_ms: self.held() as u32 * self.ptime_ms,
            ..self.stats
        }
    }

    /// The measured interarrival jitter, ms.
    pub fn jitter_ms(&self) -> f64 {
        (self.jitter16 as f64 / 16.0) * 1000.0 / f64::from(self.clock_rate)
    }

    /// Packets held from the next to play on.
    fn held(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.used && self.next.is_none_or(|n| s.seq >= n))
            .count()
    }

    /// The sequence number `seq` extended against the highest seen.
    fn extend(&self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            return u64::from(seq) + (1 << 16);
        };
        let base = h & !0xffff;
        let candidates = [base.wrapping_sub(1 << 16), base, base + (1 << 16)];
        candidates
            .into_iter()
            .map(|b| b + u64::from(seq))
            .min_by_key(|&c| c.abs_diff(h))
            .expect("three candidates")
    }

    /// A packet arrived at `now`: sequence number, RTP timestamp, payload. Returns `false`
    /// when it was dropped (late, duplicate, too large, or too far ahead).
    pub fn push(&mut self, seq: u16, timestamp: u32, payload: &[u8], now: Instant) -> bool {
        if payload.len() > MAX_PAYLOAD {
            return false;
        }
        let ext = self.extend(seq);
        if self.next.is_some_and(|n| ext < n) {
            self.stats.late += 1;
            return false;
        }
        if let Some(n) = self
            .next
            .or(self.highest.map(|h| h.saturating_sub(SLOTS as u64 / 2)))
            && ext >= n + SLOTS as u64
        {
            // Far ahead of what plays: the stream jumped. Start over from it.
            self.restart();
        }
        let index = (ext % SLOTS as u64) as usize;
        let slot = &mut self.slots[index];
        if slot.used && slot.seq == ext {
            return false;
        }
        if slot.used && self.next.is_some_and(|n| slot.seq >= n) {
            // Its slot still holds a packet to play: too far ahead.
            return false;
        }
        *slot = Slot {
            seq: ext,
            len: payload.len(),
            used: true,
        };
        self.bytes[index * MAX_PAYLOAD..][..payload.len()].copy_from_slice(payload);
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.first_arrival.get_or_insert(now);
        self.measure(timestamp, now);
        true
    }

    /// Forgets the stream's position: the next packet starts it again.
    fn restart(&mut self) {
        for s in &mut self.slots {
            s.used = false;
        }
        self.next = None;
        self.highest = None;
        self.first_arrival = None;
        self.last_transit = None;
        self.epoch = None;
    }

    /// Updates the jitter estimate (RFC 3550 A.8) and the target delay from it.
    fn measure(&mut self, timestamp: u32, now: Instant) {
        let epoch = *self.epoch.get_or_insert(now);
        let arrival = (now.duration_since(epoch).as_secs_f64() * f64::from(self.clock_rate)) as i64;
        let transit = arrival - i64::from(timestamp);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16.
            self.jitter16 = self.jitter16 + d - (self.jitter16 + 8) / 16;
        }
        self.last_transit = Some(transit);
        // Three times the jitter covers nearly every packet, in whole packet times.
        let want = (3.0 * self.jitter_ms()).ceil() as u32;
        let frames = want.div_ceil(self.ptime_ms).max(1);
        self.stats.target_ms = (frames * self.ptime_ms).clamp(*TARGET_MS.start(), *TARGET_MS.end());
    }

    fn take(&mut self, seq: u64) -> Option<(usize, usize)> {
        let index = (seq % SLOTS as u64) as usize;
        let slot = self.slots[index];
        (slot.used && slot.seq == seq).then_some((index * MAX_PAYLOAD, slot.len))
    }

    /// The next frame, at `now` (call once per packet time).
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        let next = match self.next {
            Some(n) => n,
            None => {
                // Start once the first packet waited out the target delay.
                let Some(first) = self.first_arrival else {
                    return Playout::Waiting;
                };
                if now.duration_since(first).as_millis() < u128::from(self.stats.target_ms) {
                    return Playout::Waiting;
                }
                let lowest = self
                    .slots
                    .iter()
                    .filter(|s| s.used)
                    .map(|s| s.seq)
                    .min()
                    .expect("a packet arrived");
                self.next = Some(lowest);
                lowest
            }
        };
        // Held beyond the target (the jitter fell): skip a frame to catch up.
        let target_frames = (self.stats.target_ms / self.ptime_ms) as usize;
        let mut next = next;
        if self.held() > target_frames + 2 && self.take(next).is_some() {
            self.slots[(next % SLOTS as u64) as usize].used = false;
            self.stats.skipped += 1;
            next += 1;
        }
        if let Some((at, len)) = self.take(next) {
            self.slots[(next % SLOTS as u64) as usize].used = false;
            self.next = Some(next + 1);
            return Playout::Packet(&self.bytes[at..at + len]);
        }
        if self.highest.is_some_and(|h| h > next) {
            self.stats.lost += 1;
            self.next = Some(next + 1);
            let following = self.take(next + 1);
            if following.is_some() {
                self.stats.recovered += 1;
            } else {
                self.stats.concealed += 1;
            }
            return Playout::Lost {
                next: following.map(|(at, len)| &self.bytes[at..at + len]),
            };
        }
        self.stats.concealed += 1;
        self.next = Some(next);
        Playout::Dry
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn ms(t0: Instant, n: u64) -> Instant {
        t0 + Duration::from_millis(n)
    }

    fn name(p: Playout<'_>) -> String {
        match p {
            Playout::Waiting => "wait".to_owned(),
            Playout::Packet(p) => format!("{}", p[0]),
            Playout::Lost { next: Some(p) } => format!("lost+{}", p[0]),
            Playout::Lost { next: None } => "lost".to_owned(),
            Playout::Dry => "dry".to_owned(),
        }
    }

    /// Plays `arrivals` (ms, sequence number; timestamps 20 ms apart, payload the sequence
    /// number's low byte) into `jb`, popping every 20 ms from `from` for `n` frames, each pop
    /// after the arrivals up to its time.
    fn run(
        jb: &mut JitterBuffer,
        t0: Instant,
        arrivals: &[(u64, u16)],
        from: u64,
        n: u64,
    ) -> Vec<String> {
        let mut pending = arrivals.iter().peekable();
        (0..n)
            .map(|k| {
                let at = from + 20 * k;
                while let Some(&&(t, seq)) = pending.peek() {
                    if t > at {
                        break;
                    }
                    jb.push(seq, u32::from(seq) * 960, &[seq as u8], ms(t0, t));
                    pending.next();
                }
                name(jb.pop(ms(t0, at)))
            })
            .collect()
    }

    #[test]
    fn reordered_packets_play_in_order_after_the_target_delay() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(20, 48_000);
        // 2 and 3 arrive swapped.
        let arrivals = [(0, 0u16), (20, 1), (40, 3), (60, 2), (80, 4), (100, 5)];
        assert_eq!(run(&mut jb, t0, &arrivals[..1], 0, 1), ["wait"]);
        let out = run(&mut jb, t0, &arrivals[1..], 20, 7);
        assert_eq!(out, ["0", "1", "2", "3", "4", "5", "dry"]);
        let s = jb.stats();
        assert_eq!((s.lost, s.late, s.concealed, s.skipped), (0, 0, 1, 0));
    }

    #[test]
    fn a_lost_packet_is_concealed_or_recovered_and_a_late_one_dropped() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(20, 48_000);
        // 2, 5 and 7 never come in time.
        let arrivals: Vec<(u64, u16)> = [0u16, 1, 3, 4, 6]
            .iter()
            .map(|&s| (20 * u64::from(s), s))
            .collect();
        let out = run(&mut jb, t0, &arrivals, 20, 8);
        assert_eq!(out, ["0", "1", "lost+3", "3", "4", "lost+6", "6", "dry"]);
        // 2 arrives after its turn: late, dropped.
        assert!(!jb.push(2, 2 * 960, &[2], ms(t0, 170)));
        let s = jb.stats();
        assert_eq!((s.lost, s.recovered, s.concealed, s.late), (2, 2, 1, 1));
        // A duplicate of something held is dropped too.
        assert!(jb.push(8, 8 * 960, &[8], ms(t0, 175)));
        assert!(!jb.push(8, 8 * 960, &[8], ms(t0, 176)));
    }

    #[test]
    fn the_target_follows_the_jitter() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(20, 48_000);
        // Steady arrivals: the least target.
        for seq in 0..50u16 {
            jb.push(seq, u32::from(seq) * 960, &[0], ms(t0, 20 * u64::from(seq)));
            jb.pop(ms(t0, 20 * u64::from(seq) + 20));
        }
        assert_eq!(jb.stats().target_ms, 20);
        // Arrivals off by ±30 ms: a target of about three times the jitter, whole frames.
        for seq in 50..150u16 {
            let wobble = if seq % 2 == 0 { 30 } else { 0 };
            jb.push(
                seq,
                u32::from(seq) * 960,
                &[0],
                ms(t0, 20 * u64::from(seq) + wobble),
            );
            jb.pop(ms(t0, 20 * u64::from(seq) + 40));
        }
        let target = jb.stats().target_ms;
        assert!(
            (60..=100).contains(&target),
            "target {target} ms for {} ms jitter",
            jb.jitter_ms()
        );
        assert_eq!(target % 20, 0);
    }

    #[test]
    fn sequence_numbers_wrap_and_jumps_restart() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(20, 8_000);
        let mut out = Vec::new();
        for (k, seq) in [65_534u16, 65_535, 0, 1].into_iter().enumerate() {
            let k = k as u64;
            assert!(jb.push(seq, k as u32 * 160, &[k as u8], ms(t0, 20 * k)));
            if k > 0 {
                out.push(name(jb.pop(ms(t0, 20 * k))));
            }
        }
        out.push(name(jb.pop(ms(t0, 80))));
        assert_eq!(out, ["0", "1", "2", "3"]);
        // A jump far ahead (a new stream): it plays after the target delay, no storm of losses.
        assert!(jb.push(30_000, 99_999, &[9], ms(t0, 200)));
        let out: Vec<String> = [220, 240]
            .iter()
            .map(|&t| name(jb.pop(ms(t0, t))))
            .collect();
        assert_eq!(out, ["9", "dry"]);
        assert_eq!(jb.stats().lost, 0);
        assert!(!jb.push(1, 0, &[0; MAX_PAYLOAD + 1], ms(t0, 300)));
    }
}
