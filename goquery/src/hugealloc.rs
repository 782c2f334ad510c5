//! A global allocator for the goquery binary: the system allocator, with large
//! allocations (the query's hash tables and decode buffers, several MiB each) advised
//! to the kernel as transparent huge page candidates (`madvise(MADV_HUGEPAGE)`).
//!
//! Why: a query's run time on a fresh process is dominated by first-touch page faults
//! of that memory (one fault per 4 KiB page, tens of thousands per query). With huge
//! pages one fault maps 2 MiB. Linux's default THP mode (`madvise`) only uses them
//! where asked, so the advice is needed; where THP is off or unsupported the call
//! fails harmlessly and nothing changes. Only whole 2 MiB-aligned ranges inside an
//! allocation are advised, so no memory outside it is affected.
//!
//! Allocations from 256 KiB on (decoded columns, tables) are also populated at once
//! (`MADV_POPULATE_WRITE`, Linux 5.14+): one system call maps all their pages instead
//! of one page fault per 4 KiB page as they are first written. They are written
//! through anyway (a decoded column fills its vector, a hash table spreads its
//! entries over all its pages). Older kernels refuse the call; nothing changes then.

#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use std::alloc::{GlobalAlloc, Layout, System};

/// Size of a huge page on x86-64 and most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;
/// Allocations from this size on are advised.
const MIN_ADVISED: usize = 4 << 20;
/// Allocations from this size on are populated.
const MIN_POPULATED: usize = 256 << 10;
/// Page size (populating whole pages inside the allocation only).
const PAGE: usize = 4096;

/// Tells glibc's malloc to serve large blocks from its heaps instead of a fresh
/// mapping each (and to keep freed memory): the query's buffers and the tables that a
/// growing hash table leaves behind are then reused by later allocations instead of
/// being returned to the kernel and faulted in anew. Call once, early.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc parameters; called before the threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// The system allocator, advising large allocations as huge page candidates.
#[derive(Debug, Default, Clone, Copy)]
pub struct HugePageAlloc;

/// Elsewhere than on Linux: nothing to advise.
#[cfg(not(target_os = "linux"))]
fn advise(_: *mut u8, _: usize) {}

#[cfg(target_os = "linux")]
fn advise(p: *mut u8, size: usize) {
    if p.is_null() || size < MIN_POPULATED {
        return;
    }
    let addr = p as usize;
    if size >= MIN_ADVISED {
        huge(addr, size);
    }
    let start = addr.saturating_add(PAGE - 1) & !(PAGE - 1);
    let end = addr.saturating_add(size) & !(PAGE - 1);
    if end > start {
        // SAFETY: [start, end) lies inside the allocation just made (whole pages);
        // populating maps its pages writable without changing any content (pages
        // already present are left as they are). An error is ignored.
        unsafe {
            libc::madvise(
                start as *mut libc::c_void,
                end - start,
                libc::MADV_POPULATE_WRITE,
            );
        }
    }
}

#[cfg(target_os = "linux")]
fn huge(addr: usize, size: usize) {
    let start = addr.saturating_add(HUGE_PAGE - 1) & !(HUGE_PAGE - 1);
    let end = addr.saturating_add(size) & !(HUGE_PAGE - 1);
    if end > start {
        // SAFETY: [start, end) lies inside the allocation just made (rounded inwards
        // to huge page boundaries); MADV_HUGEPAGE changes no contents and no mapping,
        // only how later page faults in the range are served. An error is ignored.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

// SAFETY: every call is forwarded to `System` with the same arguments; the advice on
// the returned memory does not change its validity, size or alignment.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        advise(p, new_size);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_allocations_work() {
        let a = HugePageAlloc;
        for size in [16, 4096, MIN_ADVISED, MIN_ADVISED * 3 + 123] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            // SAFETY: a non-zero size layout; the memory is written within bounds
            // and freed with the same layout.
            unsafe {
                let p = a.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(*p.add(size - 1), 0);
                *p.add(size - 1) = 7;
                let q = a.realloc(p, layout, size * 2);
                assert!(!q.is_null());
                assert_eq!(*q.add(size - 1), 7);
                a.dealloc(q, Layout::from_size_align(size * 2, 8).unwrap());
            }
        }
    }
}
