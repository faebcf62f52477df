//! A sliding replay window over packet indices (RFC 3711 section 3.3.2).

/// Remembers which of the last `size` packet indices were received.
///
/// The bitmap is a ring of 64-bit blocks (as in RFC 6479): advancing the window clears whole
/// blocks, so accepting a packet costs a few word operations whatever the window size, and the
/// storage is allocated once when the window is created.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    blocks: Box<[u64]>,
    size: u64,
    top: Option<u64>,
}

/// Why the window refuses an index.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplayVerdict {
    /// The index was already accepted.
    Replayed,
    /// The index is `size` or more behind the highest accepted one.
    TooOld,
}

impl ReplayWindow {
    /// Hints the cache lines of the window's newest end, which the next check reads.
    pub fn prefetch(&self) {
        crate::prefetch::prefetch_bytes(&self.blocks[..], 256);
    }

    /// The smallest window RFC 3711 allows.
    pub const MIN_SIZE: usize = 64;

    /// A window remembering the last `size` indices (at least [`Self::MIN_SIZE`]).
    pub fn new(size: usize) -> Self {
        let size = size.max(Self::MIN_SIZE);
        // One block more than the window spans, so the oldest index in the window never shares
        // a block with the newest one.
        let blocks = (size.div_ceil(64) + 1).next_power_of_two();
        ReplayWindow {
            blocks: vec![0; blocks].into_boxed_slice(),
            size: size as u64,
            top: None,
        }
    }

    /// The window size in packets.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The highest index accepted so far.
    pub fn top(&self) -> Option<u64> {
        self.top
    }

    /// Whether `index` may be accepted. Changes nothing.
    pub fn check(&self, index: u64) -> Result<(), ReplayVerdict> {
        let Some(top) = self.top else { return Ok(()) };
        if index > top {
            return Ok(());
        }
        if top - index >= self.size {
            return Err(ReplayVerdict::TooOld);
        }
        let (block, bit) = self.position(index);
        if self.blocks[block] & bit != 0 {
            Err(ReplayVerdict::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records `index` as received. Call only after the packet authenticated and `check` passed.
    pub fn accept(&mut self, index: u64) {
        match self.top {
            None => {
                self.blocks.fill(0);
                self.top = Some(index);
            }
            Some(top) if index > top => {
                let first_new = top / 64 + 1;
                let last_new = index / 64;
                if last_new >= first_new {
                    let count = (last_new - first_new + 1).min(self.blocks.len() as u64);
                    for b in first_new..first_new + count {
                        let mask = self.blocks.len() as u64 - 1;
                        self.blocks[(b & mask) as usize] = 0;
                    }
                }
                self.top = Some(index);
            }
            Some(_) => {}
        }
        let (block, bit) = self.position(index);
        self.blocks[block] |= bit;
    }

    fn position(&self, index: u64) -> (usize, u64) {
        let mask = self.blocks.len() as u64 - 1;
        (((index / 64) & mask) as usize, 1u64 << (index % 64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_once_and_ages_out() {
        let mut w = ReplayWindow::new(64);
        assert_eq!(w.check(10), Ok(()));
        w.accept(10);
        assert_eq!(w.check(10), Err(ReplayVerdict::Replayed));
        assert_eq!(w.check(9), Ok(()));
        w.accept(9);
        assert_eq!(w.check(9), Err(ReplayVerdict::Replayed));
        w.accept(100);
        assert_eq!(w.check(36), Err(ReplayVerdict::TooOld));
        assert_eq!(w.check(37), Ok(()));
        assert_eq!(w.check(100), Err(ReplayVerdict::Replayed));
        // A jump far beyond the window forgets everything before it.
        w.accept(1_000_000);
        assert_eq!(w.check(999_999), Ok(()));
        assert_eq!(w.check(1_000_000 - 64), Err(ReplayVerdict::TooOld));
    }

    #[test]
    fn matches_a_reference_set_model() {
        // A deterministic pseudo-random walk of indices against a plain set model.
        let size = 200;
        let mut w = ReplayWindow::new(size);
        let mut seen = std::collections::BTreeSet::new();
        let mut top: Option<u64> = None;
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut base = 1_000u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            base += x % 3;
            let index = base + (x >> 8) % 40 - (x >> 16) % 300;
            let expected = match top {
                Some(t) if index <= t && t - index >= size as u64 => Err(ReplayVerdict::TooOld),
                _ if seen.contains(&index) => Err(ReplayVerdict::Replayed),
                _ => Ok(()),
            };
            assert_eq!(w.check(index), expected, "index {index}, top {top:?}");
            if expected.is_ok() {
                w.accept(index);
                seen.insert(index);
                top = Some(top.map_or(index, |t| t.max(index)));
            }
        }
    }
}
