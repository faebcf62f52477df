//! Cache prefetch hints for the packet path.
//!
//! A worker carrying thousands of calls touches each call's state once per packet time, long
//! after the caches let go of it, so every lookup on the way to a packet's keys would stall
//! on memory in turn. Hinting the lines of the next few packets' state while the current one
//! is processed overlaps those waits. A hint never faults and changes no state; where the
//! target has no prefetch instruction it does nothing.

/// Bytes in a cache line.
const LINE: usize = 64;

/// Hints the cache line holding the start of `value`.
#[inline(always)]
pub fn prefetch<T: ?Sized>(value: &T) {
    line((value as *const T).cast());
}

/// Hints the cache lines of the first `limit` bytes of `value` (at most its size).
#[inline(always)]
pub fn prefetch_bytes<T: ?Sized>(value: &T, limit: usize) {
    let start: *const u8 = (value as *const T).cast();
    let len = std::mem::size_of_val(value).min(limit);
    for offset in (0..len).step_by(LINE) {
        line(start.wrapping_add(offset));
    }
}

#[inline(always)]
fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch hint neither reads nor writes memory and cannot fault, whatever the
    // address; SSE, which provides it, is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
