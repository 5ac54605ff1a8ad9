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
//! Only whole 64 KiB blocks are dropped while a file grows: the block that
//! holds its end stays cached, so the next batch appends to a cached page
//! instead of reading it back from the disk (Linux drops a partial last page
//! when the range reaches the end of the file). When the file is rotated away
//! or the sink closes, [`Released::finish`] drops that block too. The advice
//! is a hint: where the platform has none, or refuses it, nothing changes but
//! the cache.

use std::fs::File;

/// The unit of what is dropped: a multiple of every common page size, so
/// that a range starting and ending on it covers whole pages.
const ALIGN: u64 = 64 * 1024;

/// How much of a file has been released from the page cache.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Released {
    /// A multiple of [`ALIGN`]: everything below has been dropped.
    to: u64,
}

impl Released {
    /// Releases the whole blocks of `file` below `durable_len`, whose bytes
    /// must all be written and synced.
    pub(crate) fn advance(&mut self, file: &File, durable_len: u64) {
        if let Some((offset, len)) = self.next_range(durable_len) {
            drop_pages(file, offset, std::num::NonZeroU64::new(len));
            self.to = offset + len;
        }
    }

    /// Releases everything of `file` not released yet, its last page too:
    /// for a file that is complete (rotated away or closed) and synced.
    pub(crate) fn finish(&mut self, file: &File) {
        drop_pages(file, self.to, None);
    }

    /// The range `(offset, len)` to drop when `durable_len` bytes are
    /// durable: the whole blocks not dropped yet, if any.
    fn next_range(&self, durable_len: u64) -> Option<(u64, u64)> {
        let end = durable_len - durable_len % ALIGN;
        (end > self.to).then(|| (self.to, end - self.to))
    }
}

/// Drops the cached pages of `len` bytes from `offset`, or up to the end of
/// the file when `len` is `None`.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn drop_pages(file: &File, offset: u64, len: Option<std::num::NonZeroU64>) {
    use rustix::fs::{Advice, fadvise};
    // A hint: a refusal changes nothing the trail depends on.
    let _ = fadvise(file, offset, len, Advice::DontNeed);
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn drop_pages(_file: &File, _offset: u64, _len: Option<std::num::NonZeroU64>) {}

#[cfg(test)]
mod tests {
    use super::*;

    const K: u64 = 1024;

    #[test]
    fn ranges_are_whole_blocks_below_the_durable_length() {
        // (released so far, durable length) -> range to drop
        for (to, durable, expected) in [
            (0, 0, None),
            (0, 4 * K, None),
            (0, 64 * K - 1, None),
            (0, 64 * K, Some((0, 64 * K))),
            (0, 200 * K, Some((0, 192 * K))),
            (64 * K, 100 * K, None),
            (64 * K, 128 * K + 1, Some((64 * K, 64 * K))),
            // A shorter file than released (after a failed write): nothing.
            (192 * K, 100 * K, None),
        ] {
            assert_eq!(
                Released { to }.next_range(durable),
                expected,
                "released to {to}, durable {durable}"
            );
        }
    }

    #[test]
    fn advancing_never_drops_a_block_twice_or_skips_one() {
        let mut released = Released::default();
        let mut dropped = Vec::new();
        for durable in [30 * K, 70 * K, 90 * K, 250 * K, 250 * K, 260 * K] {
            if let Some(range) = released.next_range(durable) {
                released.to = range.0 + range.1;
                dropped.push(range);
            }
        }
        assert_eq!(dropped, [(0, 64 * K), (64 * K, 128 * K), (192 * K, 64 * K)]);
    }
}
