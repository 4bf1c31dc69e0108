//! The drain: the count of requests in flight is the strong count of a shared token.

use std::future::poll_fn;
use std::sync::Arc as Token;
use std::task::{Poll, Waker};

use crate::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct Drain {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    token: Token<()>,
    waiters: Mutex<Vec<Waker>>,
}

#[derive(Debug)]
pub struct InFlight {
    token: Token<()>,
    inner: Arc<Inner>,
}

impl Drain {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn enter(&self) -> InFlight {
        InFlight {
            token: Token::clone(&self.inner.token),
            inner: Arc::clone(&self.inner),
        }
    }

    pub fn in_flight(&self) -> usize {
        let _seen = self.inner.waiters.lock().unwrap();
        Token::strong_count(&self.inner.token) - 1
    }

    pub async fn idle(&self) {
        poll_fn(|cx| {
            let mut waiters = self.inner.waiters.lock().unwrap();
            if Token::strong_count(&self.inner.token) == 1 {
                return Poll::Ready(());
            }
            waiters.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // The last one out (the drain's own token and ours) wakes the waiters; our token is
        // released right after this, when the fields drop.
        if Token::strong_count(&self.token) == 2 {
            for waiter in self.inner.waiters.lock().unwrap().drain(..) {
                waiter.wake();
            }
        }
    }
}
