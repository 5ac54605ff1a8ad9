//! Keeping written audit records out of the page cache.
//!
//! A trail is written once and read again only by a verifier, much later.
//! Left alone, the kernel keeps every page written in its cache until memory
//! runs short, so a busy trail slowly pushes the application's own cached
//! files out. Once a batch is durable (after `fsync`), its pages are clean
//! and [`Released::advance`] tells the kernel to drop them
//! (`posix_fadvise(POSIX_FADV_DONTNEED)`); the pages freed are reused for the
//! next batches, which is also cheaper than taking fresh ones (in a virtual
//! machine, first-touching a page can cost more than filling it).
//!
//! Only whole pages of the durable range are dropped; the page that holds
//! the file's last bytes stays, since the next batch continues it. The
//! advice is a hint: where the platform has none, or refuses it, nothing
//! changes but the cache.

use std::fs::File;

/// The kernel rounds the range inward to whole pages; starting each range at
/// a multiple of this (the largest common page size) leaves no page behind.
const ALIGN: u64 = 64 * 1024;

/// How much of a file has been released from the page cache.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Released {
    to: u64,
}

impl Released {
    /// Nothing released yet from `offset` on (the length of a file opened
    /// for appending).
    pub(crate) fn from(offset: u64) -> Self {
        Self { to: offset }
    }

    /// Releases the pages of `file` below `durable_len`, which must all be
    /// written and synced.
    pub(crate) fn advance(&mut self, file: &File, durable_len: u64) {
        if durable_len <= self.to {
            return;
        }
        let from = self.to - self.to % ALIGN;
        drop_pages(file, from, durable_len - from);
        self.to = durable_len;
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn drop_pages(file: &File, offset: u64, len: u64) {
    use rustix::fs::{Advice, fadvise};
    if let Some(len) = std::num::NonZeroU64::new(len) {
        // A hint: a refusal changes nothing the trail depends on.
        let _ = fadvise(file, offset, Some(len), Advice::DontNeed);
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn drop_pages(_file: &File, _offset: u64, _len: u64) {}
