//! Counting heap memory, to catch memory that is never given back.
//!
//! A check that wants to see a leak (`Box::leak`, `String::leak`, `mem::forget`, a cache that
//! only grows) installs [`Counting`] as the test binary's global allocator and compares
//! [`live_on_this_thread`] before and after the work. The count is kept per thread because the
//! checks of one binary run in parallel threads: a check that runs its client, server and
//! tasks on one current-thread runtime sees exactly its own allocations.
#![allow(unsafe_code)] // A global allocator is an `unsafe impl`; this module is the only one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting per thread the bytes allocated and not yet freed.
///
/// ```ignore
/// #[global_allocator]
/// static HEAP: harness::heap::Counting = harness::heap::Counting;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Counting;

thread_local! {
    // `const` and `Copy`: no lazy initialisation and no destructor, so reading it from inside
    // the allocator never allocates and never touches a destroyed value.
    static LIVE: Cell<i64> = const { Cell::new(0) };
}

fn add(bytes: i64) {
    // During thread teardown the slot may be gone; those frees are not a check's business.
    let _ = LIVE.try_with(|live| live.set(live.get() + bytes));
}

fn size(bytes: usize) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees hold; the counting touches only a thread-local integer and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            add(size(layout.size()));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            add(size(layout.size()));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is; `ptr` came from this allocator, that is from `System`.
        unsafe { System.dealloc(ptr, layout) };
        add(-size(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            add(size(new_size) - size(layout.size()));
        }
        new
    }
}

/// Bytes this thread allocated and has not freed, through [`Counting`] (zero if the binary
/// uses another allocator). Only differences mean anything: compare a value taken before the
/// work with one taken after it.
pub fn live_on_this_thread() -> i64 {
    LIVE.try_with(Cell::get).unwrap_or(0)
}
