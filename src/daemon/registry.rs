//! The registry of running calls: call id → where the call runs. Admission is checked and
//! recorded under one lock, so concurrent `call.start`s can neither share an id nor pass
//! `max_calls` together.

use std::collections::HashMap;
use std::sync::Mutex;

use super::error::DaemonError;
use super::setup::Started;
use crate::call::CallNo;
use crate::keying::wa_e2e::CallKey;

/// What the daemon keeps of a running call.
#[derive(Clone)]
pub struct CallRecord {
    /// The endpoint's name for it.
    pub no: CallNo,
    /// The worker that runs it.
    pub worker: usize,
    /// The wa-e2e call key and tag length, kept to re-derive receive keys when another
    /// device answers.
    pub call_key: Option<(CallKey, Option<usize>)>,
    /// What `call.start` answered, repeated when an accept starts a ringing call.
    pub started: Started,
    /// Whether an idle audio track sends silence (its mute mode).
    pub silence_when_idle: bool,
}

enum Entry {
    /// Being set up: counts toward the limit, not yet found by id.
    Reserved,
    Running(CallRecord),
}

/// The running calls.
pub struct Registry {
    calls: Mutex<HashMap<String, Entry>>,
    max: usize,
}

/// A call id held while its call is set up; released unless committed.
pub struct Reservation<'a> {
    registry: &'a Registry,
    call_id: Option<String>,
}

impl Reservation<'_> {
    /// The call is set up: it runs under its id from now on.
    pub fn commit(mut self, record: CallRecord) {
        let id = self.call_id.take().expect("not yet committed");
        self.registry.lock().insert(id, Entry::Running(record));
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.call_id.take() {
            self.registry.lock().remove(&id);
        }
    }
}

impl Registry {
    /// An empty registry admitting at most `max` calls.
    pub fn new(max: usize) -> Self {
        Registry {
            calls: Mutex::new(HashMap::new()),
            max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds `call_id` for a call being set up, or says why it cannot run.
    pub fn reserve(&self, call_id: &str) -> Result<Reservation<'_>, DaemonError> {
        let mut calls = self.lock();
        if calls.contains_key(call_id) {
            return Err(DaemonError::CallExists(call_id.to_owned()));
        }
        if calls.len() >= self.max {
            return Err(DaemonError::TooManyCalls(self.max));
        }
        calls.insert(call_id.to_owned(), Entry::Reserved);
        Ok(Reservation {
            registry: self,
            call_id: Some(call_id.to_owned()),
        })
    }

    /// The running call `call_id`.
    pub fn get(&self, call_id: &str) -> Result<CallRecord, DaemonError> {
        match self.lock().get(call_id) {
            Some(Entry::Running(r)) => Ok(r.clone()),
            _ => Err(DaemonError::NoSuchCall(call_id.to_owned())),
        }
    }

    /// Takes the running call `call_id` out (it is ending).
    pub fn remove(&self, call_id: &str) -> Result<CallRecord, DaemonError> {
        let mut calls = self.lock();
        match calls.remove(call_id) {
            Some(Entry::Running(r)) => Ok(r),
            Some(reserved) => {
                calls.insert(call_id.to_owned(), reserved);
                Err(DaemonError::NoSuchCall(call_id.to_owned()))
            }
            None => Err(DaemonError::NoSuchCall(call_id.to_owned())),
        }
    }

    /// The ids of the running calls.
    pub fn ids(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Running(_)))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// How many calls run or are being set up.
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CallRecord {
        CallRecord {
            no: CallNo(1),
            worker: 0,
            call_key: None,
            started: Started {
                call_id: "b".into(),
                local: None,
                audio: None,
                video: None,
            },
            silence_when_idle: true,
        }
    }

    #[test]
    fn admission_is_one_step_and_a_dropped_reservation_frees_the_id() {
        let r = Registry::new(1);
        let held = r.reserve("a").unwrap();
        assert_eq!(
            r.reserve("a").err(),
            Some(DaemonError::CallExists("a".into()))
        );
        assert_eq!(r.reserve("b").err(), Some(DaemonError::TooManyCalls(1)));
        assert!(r.get("a").is_err(), "not running yet");
        drop(held);
        assert_eq!(r.len(), 0);
        r.reserve("b").unwrap().commit(record());
        assert_eq!(r.get("b").unwrap().no, CallNo(1));
        assert_eq!(r.ids(), vec!["b".to_owned()]);
        assert!(r.remove("b").is_ok());
        assert!(r.remove("b").is_err());
    }

    #[test]
    fn concurrent_starts_never_pass_the_limit() {
        for _ in 0..50 {
            let r = std::sync::Arc::new(Registry::new(1));
            let admitted = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|s| {
                for i in 0..4 {
                    let (r, admitted) = (&r, &admitted);
                    s.spawn(move || {
                        if let Ok(res) = r.reserve(&format!("c{i}")) {
                            admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            res.commit(record());
                        }
                    });
                }
            });
            assert_eq!(admitted.into_inner(), 1);
        }
    }
}
