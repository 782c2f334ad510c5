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
//! Allocations from 1 MiB on are mapped on their own, aligned to 2 MiB and rounded up
//! to whole huge pages (so that all of them are huge pages; inside malloc's heaps only
//! the aligned middle could be; zeroing the rounding costs less than the 4 KiB faults
//! it saves: bench-DB apps_port CPU median 22.8 -> 18.5 ms with 1 MiB instead of 4), and
//! grown with `mremap`, which moves the pages instead of copying them: a growing
//! aggregation table takes only its new part as fresh memory. With worker threads,
//! malloc serves large blocks from per-thread heaps of 4 KiB pages, whose faults (one
//! per page, each allocated and charged on its own) cost more than the zeroing itself.
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
/// Allocations from this size on are mapped on their own as huge pages.
const MIN_ADVISED: usize = 1 << 20;
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

/// Whether an allocation of `size` bytes aligned to `align` is mapped on its own.
fn mapped(size: usize, align: usize) -> bool {
    cfg!(target_os = "linux") && size >= MIN_ADVISED && align <= HUGE_PAGE
}

/// The length of the mapping of an allocation of `size` bytes: whole huge pages.
fn mapped_len(size: usize) -> usize {
    size.saturating_add(HUGE_PAGE - 1) & !(HUGE_PAGE - 1)
}

/// Maps `size` bytes (rounded up to whole huge pages) at a 2 MiB boundary, advised
/// and populated; null on failure.
#[cfg(target_os = "linux")]
unsafe fn map_huge(size: usize) -> *mut u8 {
    let len = mapped_len(size);
    let Some(span) = len.checked_add(HUGE_PAGE) else {
        return std::ptr::null_mut();
    };
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let p = libc::mmap(
        std::ptr::null_mut(),
        span,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    );
    if p == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    // Keep the 2 MiB-aligned `len` bytes inside the span, unmap the rest.
    let addr = p as usize;
    let start = (addr + HUGE_PAGE - 1) & !(HUGE_PAGE - 1);
    if start > addr {
        libc::munmap(p, start - addr);
    }
    let end = start + len;
    if addr + span > end {
        libc::munmap(end as *mut libc::c_void, addr + span - end);
    }
    advise(start as *mut u8, len);
    start as *mut u8
}

#[cfg(not(target_os = "linux"))]
unsafe fn map_huge(_: usize) -> *mut u8 {
    std::ptr::null_mut()
}

// SAFETY: small allocations are forwarded to `System` with the same arguments (the
// advice on the returned memory does not change its validity, size or alignment).
// Large ones (`mapped`) are private anonymous mappings of whole huge pages, aligned to
// 2 MiB (at least the layout's alignment), zero-filled by the kernel, unmapped with the
// same length on dealloc and moved with `mremap` on realloc; `mapped` depends only on
// the layout, so alloc, realloc and dealloc agree on which kind a block is.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(layout.size(), layout.align()) {
            return map_huge(layout.size());
        }
        let p = System.alloc(layout);
        advise(p, layout.size());
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(layout.size(), layout.align()) {
            // Fresh anonymous pages are zero.
            return map_huge(layout.size());
        }
        let p = System.alloc_zeroed(layout);
        advise(p, layout.size());
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(layout.size(), layout.align()) {
            #[cfg(target_os = "linux")]
            libc::munmap(ptr.cast(), mapped_len(layout.size()));
            return;
        }
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (old_mapped, new_mapped) = (
            mapped(layout.size(), layout.align()),
            mapped(new_size, layout.align()),
        );
        if !old_mapped && !new_mapped {
            let p = System.realloc(ptr, layout, new_size);
            advise(p, new_size);
            return p;
        }
        #[cfg(target_os = "linux")]
        if old_mapped && new_mapped {
            let (old_len, new_len) = (mapped_len(layout.size()), mapped_len(new_size));
            if old_len == new_len {
                return ptr;
            }
            // SAFETY: `ptr` is a mapping of `old_len` bytes made by `map_huge`; the
            // kernel moves its pages (contents kept) and zero-fills any new part.
            let p = libc::mremap(ptr.cast(), old_len, new_len, libc::MREMAP_MAYMOVE);
            if p == libc::MAP_FAILED {
                return std::ptr::null_mut();
            }
            if new_len > old_len {
                let p = p.cast::<u8>();
                huge(p as usize, new_len);
                advise(p.add(old_len), new_len - old_len);
            }
            return p.cast();
        }
        // From one kind to the other: allocate, copy, free.
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        let p = self.alloc(new_layout);
        if !p.is_null() {
            std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reallocations_across_the_mapped_size_keep_contents() {
        let a = HugePageAlloc;
        // small -> mapped -> larger mapped -> same huge pages -> small
        let sizes = [
            1000,
            MIN_ADVISED + 5,
            MIN_ADVISED * 5 + 7,
            MIN_ADVISED * 5 + 9,
            MIN_ADVISED * 2,
            100,
        ];
        let layout = Layout::from_size_align(sizes[0], 16).unwrap();
        // SAFETY: every access is within the current size; each realloc is given the
        // layout of the block it reallocates; the last block is freed with its layout.
        unsafe {
            let mut p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            for i in 0..sizes[0] {
                assert_eq!(*p.add(i), 0);
                *p.add(i) = (i % 251) as u8;
            }
            let mut size = sizes[0];
            for &next in &sizes[1..] {
                let q = a.realloc(p, Layout::from_size_align(size, 16).unwrap(), next);
                assert!(!q.is_null());
                assert_eq!(q as usize % 16, 0);
                for i in 0..size.min(next).min(1000) {
                    assert_eq!(
                        *q.add(i),
                        (i % 251) as u8,
                        "byte {i} after {size} -> {next}"
                    );
                }
                if next > size {
                    // The grown part is writable.
                    *q.add(next - 1) = 1;
                }
                p = q;
                size = next;
            }
            a.dealloc(p, Layout::from_size_align(size, 16).unwrap());
        }
    }

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
