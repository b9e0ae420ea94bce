//! The proof that a public URL reaches this listener: a probe carrying a
//! random token goes out through the tunnel and must arrive here. The
//! listener answers it as it answers any `GET` (never recorded as a
//! delivery) and wakes whoever waits for that token. A stranger cannot
//! guess a token, and a token nobody waits for proves nothing: it gets the
//! page every other `GET` gets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// Where a probe asks: this prefix and its token.
pub(crate) const PATH_PREFIX: &str = "/.danube-hooks/reach/";
/// Characters of a token: 190 bits, never guessed.
const TOKEN_LEN: usize = 32;

/// The tokens waited for. Cheap to clone; every clone is the same set.
#[derive(Clone, Default)]
pub(crate) struct ReachProbes {
    /// A std mutex is enough: held for one map operation, never across `.await`.
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>,
}

/// One token waited for, until it arrives or this is dropped.
pub(crate) struct Probe {
    token: String,
    arrived: oneshot::Receiver<()>,
    probes: ReachProbes,
}

impl ReachProbes {
    /// A new token to send out and wait for.
    pub(crate) fn expect(&self) -> Probe {
        let token = crate::random::random_alnum(TOKEN_LEN);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(token.clone(), tx);
        Probe {
            token,
            arrived: rx,
            probes: self.clone(),
        }
    }

    /// Whether `path` is a probe waited for; if so, its waiter is woken
    /// (and the token is spent).
    pub(crate) fn arrived(&self, path: &str) -> bool {
        let Some(token) = path.strip_prefix(PATH_PREFIX) else {
            return false;
        };
        match self.lock().remove(token) {
            Some(waiter) => {
                let _ = waiter.send(());
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<()>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Probe {
    /// The path to ask for on the public URL.
    pub(crate) fn path(&self) -> String {
        format!("{PATH_PREFIX}{}", self.token)
    }

    /// Returns once the probe has reached the listener.
    pub(crate) async fn arrived(&mut self) {
        if (&mut self.arrived).await.is_err() {
            // Its sender is gone only with the probe itself.
            std::future::pending::<()>().await;
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.probes.lock().remove(&self.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_token_waited_for_counts_and_only_once() {
        let probes = ReachProbes::default();
        let mut probe = probes.expect();
        let path = probe.path();
        assert!(path.starts_with(PATH_PREFIX));
        assert_eq!(path.len(), PATH_PREFIX.len() + TOKEN_LEN);
        for stranger in [
            "/",
            PATH_PREFIX,
            &format!("{PATH_PREFIX}nottheone"),
            &format!("{path}x"),
            &format!("/x{path}"),
        ] {
            assert!(!probes.arrived(stranger), "{stranger}");
        }
        assert!(probes.arrived(&path));
        tokio::time::timeout(std::time::Duration::from_secs(1), probe.arrived())
            .await
            .expect("the waiter is woken");
        assert!(!probes.arrived(&path), "a token is spent once it arrived");
    }

    #[test]
    fn a_dropped_probe_forgets_its_token() {
        let probes = ReachProbes::default();
        let probe = probes.expect();
        let path = probe.path();
        drop(probe);
        assert!(!probes.arrived(&path));
        assert!(probes.lock().is_empty());
    }

    #[test]
    fn tokens_differ() {
        let probes = ReachProbes::default();
        let (a, b) = (probes.expect(), probes.expect());
        assert_ne!(a.path(), b.path());
    }
}
