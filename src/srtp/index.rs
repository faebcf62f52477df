//! The SRTP packet index (RFC 3711 section 3.3.1) and its estimation from sequence numbers.

use std::fmt;

use crate::rtp::SeqNo;

/// The 48-bit SRTP packet index: rollover counter · 2^16 + sequence number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PacketIndex(u64);

impl PacketIndex {
    /// The largest index a key may protect.
    pub const MAX: PacketIndex = PacketIndex((1 << 48) - 1);

    /// The index of sequence number `seq` in rollover period `roc`.
    pub const fn new(roc: u32, seq: u16) -> Self {
        PacketIndex(((roc as u64) << 16) | seq as u64)
    }

    /// The index from its 48-bit value, if it is one.
    pub const fn from_u64(v: u64) -> Option<Self> {
        if v <= Self::MAX.0 {
            Some(PacketIndex(v))
        } else {
            None
        }
    }

    /// The rollover counter.
    pub const fn roc(self) -> u32 {
        (self.0 >> 16) as u32
    }

    /// The sequence number.
    pub const fn seq(self) -> SeqNo {
        SeqNo(self.0 as u16)
    }

    /// The 48-bit value.
    pub const fn value(self) -> u64 {
        self.0
    }

    /// The index a packet with sequence number `seq` most likely has, given the highest index
    /// seen on its stream (RFC 3711 Appendix A). `None` when that guess falls before index 0
    /// or past [`Self::MAX`].
    pub fn estimate(highest: PacketIndex, seq: SeqNo) -> Option<PacketIndex> {
        let s_l = highest.seq().0;
        let roc = u64::from(highest.roc());
        let seq = seq.0;
        let v = if s_l < 0x8000 {
            if seq > s_l && seq - s_l > 0x8000 {
                roc.checked_sub(1)?
            } else {
                roc
            }
        } else if s_l - 0x8000 > seq {
            roc + 1
        } else {
            roc
        };
        PacketIndex::from_u64((v << 16) | u64::from(seq))
    }
}

impl fmt::Debug for PacketIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PacketIndex(roc {}, seq {})", self.roc(), self.seq().0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(roc: u32, s_l: u16, seq: u16) -> Option<(u32, u16)> {
        PacketIndex::estimate(PacketIndex::new(roc, s_l), SeqNo(seq)).map(|i| (i.roc(), i.seq().0))
    }

    #[test]
    fn follows_rfc3711_appendix_a() {
        assert_eq!(est(0, 100, 101), Some((0, 101)));
        assert_eq!(est(0, 65535, 0), Some((1, 0)), "wrap forward");
        assert_eq!(
            est(1, 2, 65534),
            Some((0, 65534)),
            "late packet from before the wrap"
        );
        assert_eq!(est(0, 2, 65534), None, "before the start of the stream");
        assert_eq!(est(3, 40000, 7000), Some((4, 7000)));
        assert_eq!(est(3, 40000, 8000), Some((3, 8000)));
        assert_eq!(est(u32::MAX, 65535, 0), None, "past 2^48");
    }
}
