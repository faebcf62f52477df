//! A global allocator that counts the allocations made on each thread, and in the whole
//! process but for threads that opted out, for tests that prove a path allocates nothing. A test binary installs it with
//! `#[global_allocator] static GLOBAL: CountingAllocator = CountingAllocator;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Forwards to the system allocator and counts allocations per thread.
pub struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static IGNORED: Cell<bool> = const { Cell::new(false) };
}

/// Allocations on every thread that did not call [`ignore_this_thread`].
static PROCESS: AtomicU64 = AtomicU64::new(0);

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    if !IGNORED.try_with(Cell::get).unwrap_or(false) {
        PROCESS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// const-initialised thread-local cell, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations made on this thread so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Allocations made in the process so far, on threads that did not opt out: the daemon's
/// threads, whichever they are, and the test's own.
pub fn process_allocations() -> u64 {
    PROCESS.load(Ordering::SeqCst)
}

/// Leaves this thread's allocations out of [`process_allocations`]: for a test's helper
/// threads (peers, producers), whose allocations are not the code under test's.
pub fn ignore_this_thread() {
    IGNORED.with(|i| i.set(true));
}
