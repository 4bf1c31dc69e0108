//! Loom model of the live configuration: a reload and a download request at the same moment,
//! under every interleaving of the two threads.
//!
//! Run optimised (the workspace's `loom` profile), with the crate's `loom` feature (which swaps
//! `src/sync.rs` to loom's types):
//! `cargo test -p s08-hot-reload --profile loom --features loom --test loom`.
//!
//! loom explores only the operations it can see: those on its own types. The last check makes
//! sure the configuration is still built from them, or the model would pass whatever
//! `signed_link` does.

use std::path::Path;
use std::process::Command;

use harness::loom_shim::{Forbid, sync_outside_the_shim};
use harness::watchdog::check;
use s08_hot_reload::config::{LiveConfig, MirrorConfig, sign};
use s08_hot_reload::sync::Arc;

const HANG: &str = "the loom model did not finish: does a reload or a request wait for a lock \
                    that its own thread already holds?";

const FILE: &str = "tool-4.2.tar.gz";

fn europe() -> MirrorConfig {
    MirrorConfig {
        mirror: "https://eu.mirror.example".to_owned(),
        signing_key: "eu-key-2025".to_owned(),
    }
}

fn america() -> MirrorConfig {
    MirrorConfig {
        mirror: "https://us.mirror.example".to_owned(),
        signing_key: "us-key-2026".to_owned(),
    }
}

/// The link a request must build under `config`, every part of it from that one version.
fn link_under(config: &MirrorConfig) -> String {
    format!(
        "{}/{FILE}?sig={}",
        config.mirror,
        sign(&config.signing_key, FILE)
    )
}

// ANCHOR: model
/// The operator moves downloads from the European mirror to the American one while a client
/// asks for a file: its link comes wholly from the old configuration or wholly from the new.
#[test]
fn a_link_comes_from_one_configuration() {
    // loom runs this closure once per possible interleaving of the two threads.
    model_in_child("a_link_comes_from_one_configuration", || {
        let live = Arc::new(LiveConfig::new(europe()));
        let operator = Arc::clone(&live);
        let reload = loom::thread::spawn(move || operator.reload(america()));
        let link = live.signed_link(FILE);
        reload.join().unwrap();
        assert!(
            link == link_under(&europe()) || link == link_under(&america()),
            "a request that ran during a reload built the link\n  {link}\nwhich is neither the \
             old configuration's\n  {}\nnor the new one's\n  {}\nIts parts were read at two \
             moments, and the reload came between them: one mirror, the other mirror's key. \
             That mirror refuses the link.",
            link_under(&europe()),
            link_under(&america()),
        );
        assert_eq!(
            live.signed_link(FILE),
            link_under(&america()),
            "once the reload has returned, every request must use the new configuration"
        );
    });
}
// ANCHOR_END: model

/// The operator moves downloads to the American mirror and, seeing errors, rolls straight back
/// while a client asks for a file. The configuration goes A, B, A again: a request that checks
/// "the mirror is the same before and after" can read A's mirror, B's key, then A's mirror, and
/// believe nothing changed. Its link must still come wholly from one configuration.
#[test]
fn a_link_survives_a_reload_and_a_rollback() {
    model_in_child("a_link_survives_a_reload_and_a_rollback", || {
        let live = Arc::new(LiveConfig::new(europe()));
        let operator = Arc::clone(&live);
        let reload = loom::thread::spawn(move || {
            operator.reload(america());
            operator.reload(europe());
        });
        let link = live.signed_link(FILE);
        reload.join().unwrap();
        assert!(
            link == link_under(&europe()) || link == link_under(&america()),
            "a request that ran during a reload and its rollback built the link\n  {link}\nwhich \
             is neither the European configuration's\n  {}\nnor the American one's\n  {}\nOne \
             mirror, the other mirror's key. \
             After the rollback the configuration looks as it did before the reload, so a \
             request that rechecks a field (\"the mirror has not changed, so the key I read is \
             its key\") cannot tell that the reload came between its reads. Read the \
             configuration once, as one value.",
            link_under(&europe()),
            link_under(&america()),
        );
        assert_eq!(
            live.signed_link(FILE),
            link_under(&europe()),
            "once the rollback has returned, every request must use the configuration rolled \
             back to"
        );
    });
}

/// loom switches threads only at operations on its own types. A configuration built from `std`
/// types (or from a crate loom does not know) runs unseen: every `signed_link` runs start to finish
/// without a switch inside it, and the model above passes whatever it does. So no file of `src/`
/// may name a `std` lock, atomic or spin hint (`src/sync.rs` only in its items gated
/// `#[cfg(not(feature = "loom"))]`, the normal build's side of the switch, read whole statements at
/// a time by `harness::loom_shim`); and since loom's types refuse to run on a thread loom does not
/// control (they panic there), each step of the configuration, tried on a plain thread, must fail.
#[test]
fn loom_can_see_the_configuration() {
    let unseen = sync_outside_the_shim(Path::new(env!("CARGO_MANIFEST_DIR")), Forbid::STD);
    assert!(
        unseen.is_empty(),
        "the configuration uses synchronisation that is not the shim's:\n  {}\nloom switches \
         threads only at operations on its own types, the ones `src/sync.rs` exports under the \
         `loom` feature. A `std` lock or atomic is invisible to it: a request's two reads run as \
         one step in every interleaving loom tries, so the model passes a race it never sees. \
         Import every lock and atomic from `crate::sync` (add what you need there, for both the \
         `loom` and the normal build: in \
         `src/sync.rs` a `std` type belongs only in an item marked \
         `#[cfg(not(feature = \"loom\"))]`, the normal build's side).",
        unseen.join("\n  ")
    );
    model_in_child("loom_can_see_the_configuration", || {
        let live = LiveConfig::new(europe());
        let unseen: Vec<&str> = [
            ("LiveConfig::new", runs_unseen(|| LiveConfig::new(europe()))),
            ("signed_link", runs_unseen(|| live.signed_link(FILE))),
            ("mirror", runs_unseen(|| live.mirror())),
            ("reload", runs_unseen(|| live.reload(america()))),
        ]
        .into_iter()
        .filter_map(|(step, unseen)| unseen.then_some(step))
        .collect();
        assert!(
            unseen.is_empty(),
            "{unseen:?} ran on a thread loom does not control: the configuration is not built \
             from the types of `crate::sync` (a `std` lock, or a crate such as `arc-swap` that \
             loom cannot model), so loom cannot see inside it and the model proves nothing. \
             Build it from the shim's types, or give the shim a loom stand-in for what you use"
        );
    });
}

/// Set in the child process that runs a model for its parent.
const IN_CHILD: &str = "S08_LOOM_MODEL_IN_CHILD";

/// Runs the loom `model` of the check `name` in a child process: this same test binary, asked
/// to run just that check. loom 0.7 reports a deadlock by panicking, and when a thread holding
/// one of its `RwLock` guards unwinds from that report, dropping the guard panics again and
/// aborts the whole process, report and all. The child may abort; the parent reads what it
/// printed and fails with a message that says what happened.
fn model_in_child(name: &str, model: impl Fn() + Sync + Send + 'static) {
    if std::env::var_os(IN_CHILD).is_some() {
        check(HANG).run(move || loom::model(model));
        return;
    }
    let child = Command::new(std::env::current_exe().expect("the test binary's path"))
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(IN_CHILD, "1")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running the model in a child process");
    if child.status.success() {
        return;
    }
    let printed = String::from_utf8_lossy(&child.stderr);
    if let Some(report) = printed
        .lines()
        .find(|line| line.contains("deadlock; threads"))
    {
        panic!(
            "loom found a deadlock: in some interleaving every thread was waiting for a lock \
             that would never be released ({report}). A thread that asks for a lock it already \
             holds (a second read guard while a writer waits, a write guard under its own read \
             guard) waits for itself; so do two threads that take two locks in opposite orders. \
             On a real server, requests would hang during a reload."
        );
    }
    // loom 0.7 keeps one read lock per thread: a second `read()` by a thread that already
    // holds one is not counted, and releasing the second guard trips loom's own assertion.
    if printed.contains("invalid internal loom state") {
        panic!(
            "a thread took a read lock it already held (loom stopped the model: \"invalid \
             internal loom state\", when it released the second read guard). Re-locking what \
             this thread already holds is a deadlock waiting to happen: a reload that asks for \
             the write lock between the two reads makes the second read wait behind it, and the \
             reload waits for the first guard, which this thread holds. On a real server, \
             requests would hang during a reload. Take the guard once, and read what you need \
             through it (not through getters that lock again)."
        );
    }
    // The model's own assertion failed: its message is what follows `panicked at`.
    let message: Vec<&str> = printed
        .lines()
        .skip_while(|line| !line.contains("panicked at"))
        .skip(1)
        .take_while(|line| !line.starts_with("note:") && !line.is_empty())
        .collect();
    if message.is_empty() {
        panic!("the model failed in its child process:\n{printed}");
    }
    panic!("{}", message.join("\n"));
}

/// Whether `step` runs to the end on a plain `std` thread, outside loom's control.
fn runs_unseen<T: Send>(step: impl FnOnce() -> T + Send) -> bool {
    std::thread::scope(|plain| plain.spawn(step).join().is_ok())
}
