//! Retry de-duplication of grpchat posts (DESIGN.md: a post is stored and relayed once).
//!
//! A client that got no answer to a post (its 200 OK was lost or late, or it got 503)
//! sends the same envelope again in a new INFO: same dialog, same envid. The first copy
//! that is *committed* wins; later copies are answered as the first was (200 OK) and
//! neither stored nor relayed again. A copy whose batch failed to commit is forgotten,
//! so its retry is stored normally.
//!
//! Memory is bounded: the last [`CAPACITY`] committed posts are remembered (oldest
//! forgotten first), which covers any retry within `MAX_RETRIES x Retry-After`.

use crate::channel::DialogId;
use std::collections::{BTreeSet, VecDeque};

/// Committed posts remembered for de-duplication.
pub const CAPACITY: usize = 16_384;

/// A post's identity: the dialog it came on, its envelope's envid, and a digest of its
/// room and text (an envid reused for different content is a different post).
pub type PostKey = (DialogId, u64, u64);

/// The [`PostKey`] of a grpchat (`chan_uri`, `text`) with `envid` on `dialog`.
pub fn post_key(dialog: DialogId, envid: u64, chan_uri: &str, text: &str) -> PostKey {
    use std::hash::{Hash, Hasher};
    // DefaultHasher::new() has fixed keys: the digest is the same in every run.
    let mut h = std::hash::DefaultHasher::new();
    chan_uri.hash(&mut h);
    text.hash(&mut h);
    (dialog, envid, h.finish())
}

/// The [`PostKey`] of a grpchat carrying client message id `msgid` by `author`: the
/// same for every copy, on any dialog (its dialog part is [`DialogId::MAX`], which no
/// dialog has). Committed copies are also found in the store, across restarts.
pub fn msgid_key(author: &str, msgid: &str) -> PostKey {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    author.hash(&mut h);
    msgid.hash(&mut h);
    (DialogId::MAX, h.finish(), 0)
}

/// What is known about a post key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Stored by an earlier, committed batch: answer 200 OK now.
    Committed,
    /// Stored earlier in the current batch: answer 200 OK if the batch commits.
    Pending,
}

/// The de-duplication table (see the module docs).
#[derive(Debug, Default)]
pub struct RetryDedup {
    committed: BTreeSet<PostKey>,
    order: VecDeque<PostKey>,
    pending: Vec<PostKey>,
}

impl RetryDedup {
    /// Whether `key` was stored already.
    pub fn seen(&self, key: PostKey) -> Option<Seen> {
        if self.committed.contains(&key) {
            Some(Seen::Committed)
        } else if self.pending.contains(&key) {
            Some(Seen::Pending)
        } else {
            None
        }
    }

    /// Records that `key` was written in the current batch.
    pub fn stored(&mut self, key: PostKey) {
        self.pending.push(key);
    }

    /// Ends the batch: keeps its keys if it `committed`, forgets them otherwise.
    pub fn end_batch(&mut self, committed: bool) {
        if !committed {
            self.pending.clear();
            return;
        }
        for key in self.pending.drain(..) {
            if self.committed.insert(key) {
                self.order.push_back(key);
            }
        }
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.committed.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_commits_or_is_forgotten() {
        let mut d = RetryDedup::default();
        d.stored((DialogId(1), 10, 7));
        assert_eq!(d.seen((DialogId(1), 10, 7)), Some(Seen::Pending));
        d.end_batch(false);
        assert_eq!(d.seen((DialogId(1), 10, 7)), None);
        d.stored((DialogId(1), 10, 7));
        d.end_batch(true);
        assert_eq!(d.seen((DialogId(1), 10, 7)), Some(Seen::Committed));
        assert_eq!(d.seen((DialogId(2), 10, 7)), None);
        assert_ne!(
            post_key(DialogId(1), 10, "r", "a"),
            post_key(DialogId(1), 10, "r", "b")
        );
        assert_eq!(
            post_key(DialogId(1), 10, "r", "a"),
            post_key(DialogId(1), 10, "r", "a")
        );
    }

    #[test]
    fn bounded() {
        let mut d = RetryDedup::default();
        for i in 0..(CAPACITY as u64 + 5) {
            d.stored((DialogId(1), i, 0));
            d.end_batch(true);
        }
        assert_eq!(d.seen((DialogId(1), 0, 0)), None);
        assert_eq!(
            d.seen((DialogId(1), CAPACITY as u64 + 4, 0)),
            Some(Seen::Committed)
        );
        assert_eq!(d.committed.len(), CAPACITY);
    }
}
