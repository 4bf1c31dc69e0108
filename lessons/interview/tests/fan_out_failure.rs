//! A fan-out where one branch fails: who stops the others?
//!
//! Backs R25 of the bank: `try_join_all` over spawned `JoinHandle`s returns at the first error
//! and drops the other handles, which detaches their tasks: they run to the end for nobody. A
//! `JoinSet` dropped at the first error aborts them; `try_join_all` over plain futures (no
//! spawn) drops them.

use futures::future::try_join_all;
use harness::watchdog::check;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

const HANG: &str = "a branch of the fan-out never finished";

/// What a branch reports: that it finished its work, or that it was dropped before.
#[derive(Debug, PartialEq)]
enum Fate {
    Finished(&'static str),
    Dropped(&'static str),
}

/// Reports `Dropped` unless disarmed: it runs when the branch's future is dropped early.
struct Reporter {
    name: &'static str,
    fates: mpsc::UnboundedSender<Fate>,
    done: bool,
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.fates.send(Fate::Dropped(self.name));
        }
    }
}

/// One replica's lookup: it waits for `release`, then finishes.
async fn lookup(
    name: &'static str,
    mut release: watch::Receiver<bool>,
    fates: mpsc::UnboundedSender<Fate>,
) -> Result<&'static str, String> {
    let mut reporter = Reporter {
        name,
        fates: fates.clone(),
        done: false,
    };
    release.wait_for(|go| *go).await.unwrap();
    reporter.done = true;
    fates.send(Fate::Finished(name)).unwrap();
    Ok(name)
}

/// The branch that fails at once.
async fn failing() -> Result<&'static str, String> {
    Err("replica c is down".to_owned())
}

async fn collect(fates: &mut mpsc::UnboundedReceiver<Fate>, n: usize) -> Vec<Fate> {
    let mut seen = Vec::new();
    for _ in 0..n {
        seen.push(fates.recv().await.unwrap());
    }
    seen.sort_by_key(|fate| format!("{fate:?}"));
    seen
}

#[test]
fn try_join_all_over_spawned_handles_leaves_the_siblings_running() {
    check(HANG).paused(|| async {
        let (release_tx, release) = watch::channel(false);
        let (fates_tx, mut fates) = mpsc::unbounded_channel();
        let handles = vec![
            tokio::spawn(lookup("a", release.clone(), fates_tx.clone())),
            tokio::spawn(lookup("b", release.clone(), fates_tx.clone())),
            tokio::spawn(failing()),
        ];
        // The usual flattening: a panic and an error both count as the fan-out's failure.
        let flattened = handles
            .into_iter()
            .map(|handle| async move { handle.await.map_err(|e| e.to_string())? });
        let result = try_join_all(flattened).await;
        assert_eq!(result, Err("replica c is down".to_owned()));

        // The caller has its error and has moved on; its siblings have not stopped.
        release_tx.send(true).unwrap();
        assert_eq!(
            collect(&mut fates, 2).await,
            [Fate::Finished("a"), Fate::Finished("b")]
        );
    });
}

#[test]
fn a_join_set_dropped_at_the_first_error_aborts_the_siblings() {
    check(HANG).paused(|| async {
        let (_release_tx, release) = watch::channel(false);
        let (fates_tx, mut fates) = mpsc::unbounded_channel();
        let first_error = async {
            let mut set = JoinSet::new();
            set.spawn(lookup("a", release.clone(), fates_tx.clone()));
            set.spawn(lookup("b", release.clone(), fates_tx.clone()));
            set.spawn(failing());
            while let Some(joined) = set.join_next().await {
                joined.map_err(|e| e.to_string())??;
            }
            Ok::<_, String>(())
        };
        assert_eq!(first_error.await, Err("replica c is down".to_owned()));
        // Returning dropped the set, which aborted the two lookups still waiting.
        assert_eq!(
            collect(&mut fates, 2).await,
            [Fate::Dropped("a"), Fate::Dropped("b")]
        );
    });
}

#[test]
fn try_join_all_over_plain_futures_drops_the_siblings() {
    check(HANG).paused(|| async {
        let (_release_tx, release) = watch::channel(false);
        let (fates_tx, mut fates) = mpsc::unbounded_channel();
        let branches: Vec<std::pin::Pin<Box<dyn Future<Output = _>>>> = vec![
            Box::pin(lookup("a", release.clone(), fates_tx.clone())),
            Box::pin(lookup("b", release.clone(), fates_tx.clone())),
            Box::pin(failing()),
        ];
        assert_eq!(
            try_join_all(branches).await,
            Err("replica c is down".to_owned())
        );
        assert_eq!(
            collect(&mut fates, 2).await,
            [Fate::Dropped("a"), Fate::Dropped("b")]
        );
    });
}
