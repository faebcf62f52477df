//! A small table of per-SSRC state, bounded so that a peer cannot make it grow without limit.

use crate::rtp::Ssrc;

use super::SrtpError;

/// Per-SSRC state, looked up linearly: calls carry a handful of SSRCs, for which a scan of a
/// short vector beats hashing. Capacity is reserved up front, so steady-state lookups and
/// updates never allocate.
#[derive(Clone, Debug)]
pub(crate) struct StreamTable<S> {
    entries: Vec<(Ssrc, S)>,
    limit: usize,
}

impl<S> StreamTable<S> {
    pub(crate) fn new(limit: usize) -> Self {
        StreamTable {
            entries: Vec::with_capacity(limit.min(8)),
            limit,
        }
    }

    pub(crate) fn get(&self, ssrc: Ssrc) -> Option<&S> {
        self.entries
            .iter()
            .find(|(s, _)| *s == ssrc)
            .map(|(_, st)| st)
    }

    pub(crate) fn get_mut(&mut self, ssrc: Ssrc) -> Option<&mut S> {
        self.entries
            .iter_mut()
            .find(|(s, _)| *s == ssrc)
            .map(|(_, st)| st)
    }

    /// Fails if `ssrc` is new and the table is full. Changes nothing.
    pub(crate) fn ensure_room(&self, ssrc: Ssrc) -> Result<(), SrtpError> {
        if self.entries.len() >= self.limit && self.get(ssrc).is_none() {
            Err(SrtpError::TooManyStreams { limit: self.limit })
        } else {
            Ok(())
        }
    }

    /// The state for `ssrc`, created by `init` if absent. Call `ensure_room` first.
    pub(crate) fn get_or_insert_with(&mut self, ssrc: Ssrc, init: impl FnOnce() -> S) -> &mut S {
        let at = match self.entries.iter().position(|(s, _)| *s == ssrc) {
            Some(at) => at,
            None => {
                self.entries.push((ssrc, init()));
                self.entries.len() - 1
            }
        };
        &mut self.entries[at].1
    }

    /// Replaces (or creates) the state for `ssrc`.
    pub(crate) fn insert(&mut self, ssrc: Ssrc, state: S) -> Result<(), SrtpError> {
        self.ensure_room(ssrc)?;
        match self.get_mut(ssrc) {
            Some(existing) => *existing = state,
            None => self.entries.push((ssrc, state)),
        }
        Ok(())
    }

    /// Hints the cache lines of the first entries, and of what `deep` names in each.
    pub(crate) fn prefetch(&self, deep: impl Fn(&S)) {
        crate::prefetch::prefetch_bytes(&self.entries[..], 128);
        for (_, state) in self.entries.iter().take(2) {
            deep(state);
        }
    }

    pub(crate) fn ssrcs(&self) -> impl Iterator<Item = Ssrc> + '_ {
        self.entries.iter().map(|(s, _)| *s)
    }
}
