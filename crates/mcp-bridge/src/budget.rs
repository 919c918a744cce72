//! The byte budget of the messages the bridge holds: lines read from stdin whose exchange is not
//! over, and messages read from the server that are not written to stdout yet. Bytes are counted
//! as they arrive (each chunk of an answer is charged before the SSE parser sees it), so a reader
//! that finds the budget spent waits — the server's stream then waits in TCP — instead of
//! buffering. A [`Held`] carries the charge with the message and gives it back when dropped (after
//! the message is written, or when it is dropped unsent).
//!
//! One reader at a time may go over the budget (the *overdraft*) with the message it is reading:
//! without it, readers each holding part of a message could spend the whole budget and wait on
//! one another forever. So the messages the bridge holds come to at most [`BUDGET_BYTES`], plus
//! one message of up to [`MAX_MESSAGE_BYTES`](super::jsonrpc::MAX_MESSAGE_BYTES) beyond it, plus
//! the bridge's own lines ([`OWN_BYTES`](super::output::OWN_BYTES)), plus the one or two lines of
//! stdin read and not admitted yet ([`stdio`](super::stdio)).

use std::sync::{Arc, LazyLock};

use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// The bytes of messages the bridge holds at once (beyond the overdraft), in bytes: 16 MiB.
pub(crate) const BUDGET_BYTES: usize = 16 * 1024 * 1024;

/// A byte budget (see the module documentation).
#[derive(Debug)]
pub(crate) struct Budget {
    bytes: Arc<Semaphore>,
    overdraft: Arc<tokio::sync::Mutex<()>>,
    total: usize,
}

/// Bytes charged to a [`Budget`] (and perhaps its overdraft), given back on drop.
#[derive(Debug, Default)]
pub(crate) struct Held {
    permit: Option<OwnedSemaphorePermit>,
    overdraft: Option<OwnedMutexGuard<()>>,
}

impl Held {
    /// The bytes charged to the budget (the overdraft not counted).
    pub(crate) fn bytes(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }

    /// Whether this holds the overdraft.
    pub(crate) fn overdrawn(&self) -> bool {
        self.overdraft.is_some()
    }

    /// Adds `other`'s charge to this one.
    pub(crate) fn merge(&mut self, other: Self) {
        if let Some(permit) = other.permit {
            self.absorb(permit);
        }
        if other.overdraft.is_some() {
            self.overdraft = other.overdraft;
        }
    }

    fn absorb(&mut self, permit: OwnedSemaphorePermit) {
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
    }
}

static GLOBAL: LazyLock<Budget> = LazyLock::new(|| Budget::new(BUDGET_BYTES));

impl Budget {
    /// A budget of `total` bytes (at least 1).
    pub(crate) fn new(total: usize) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            overdraft: Arc::new(tokio::sync::Mutex::new(())),
            total,
        }
    }

    /// The bridge's budget: [`BUDGET_BYTES`], one per process.
    pub(crate) fn global() -> &'static Self {
        &GLOBAL
    }

    /// `n` as a number of permits: at most the whole budget (a larger charge waits for all of it).
    fn permits(&self, n: usize) -> u32 {
        u32::try_from(n.min(self.total)).unwrap_or(u32::MAX)
    }

    /// Charges `n` more bytes of a message being read to `held`, waiting while the budget is
    /// spent — or, when the overdraft is free first, taking it: then the rest of that message is
    /// free of charge. Cancel-safe (nothing is charged when dropped while waiting).
    pub(crate) async fn charge(&self, held: &mut Held, n: usize) {
        if n == 0 || held.overdrawn() {
            return;
        }
        let permits = self.permits(n);
        if let Ok(permit) = Arc::clone(&self.bytes).try_acquire_many_owned(permits) {
            held.absorb(permit);
            return;
        }
        tokio::select! {
            biased;
            permit = Arc::clone(&self.bytes).acquire_many_owned(permits) => {
                if let Ok(permit) = permit {
                    held.absorb(permit);
                }
            }
            guard = Arc::clone(&self.overdraft).lock_owned() => held.overdraft = Some(guard),
        }
    }

    /// Charges `n` bytes, waiting while the budget is spent (never the overdraft: for a line from
    /// stdin, and for the bridge's own messages). Cancel-safe.
    pub(crate) async fn reserve(&self, n: usize) -> Held {
        let mut held = Held::default();
        if n > 0
            && let Ok(permit) = Arc::clone(&self.bytes)
                .acquire_many_owned(self.permits(n))
                .await
        {
            held.absorb(permit);
        }
        held
    }

    /// The bytes not charged now.
    #[cfg(test)]
    fn free(&self) -> usize {
        self.bytes.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready<F: Future>(f: F) -> Option<F::Output> {
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        match f.as_mut().poll(&mut std::task::Context::from_waker(waker)) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn charges_are_given_back_on_drop() {
        let budget = Budget::new(100);
        let mut held = Held::default();
        assert!(ready(budget.charge(&mut held, 60)).is_some());
        assert!(ready(budget.charge(&mut held, 30)).is_some());
        assert_eq!((held.bytes(), budget.free()), (90, 10));
        let other = ready(budget.reserve(10)).unwrap_or_default();
        assert_eq!(budget.free(), 0);
        // Spent: a reservation waits.
        assert!(ready(budget.reserve(1)).is_none());
        held.merge(other);
        assert_eq!(held.bytes(), 100);
        drop(held);
        assert_eq!(budget.free(), 100);
    }

    #[test]
    fn one_reader_at_a_time_may_overdraw() {
        let budget = Budget::new(10);
        let (mut a, mut b) = (Held::default(), Held::default());
        assert!(ready(budget.charge(&mut a, 10)).is_some());
        // Spent: the first reader that needs more takes the overdraft and reads on for free.
        assert!(ready(budget.charge(&mut b, 5)).is_some());
        assert!(b.overdrawn() && b.bytes() == 0);
        assert!(ready(budget.charge(&mut b, 1_000)).is_some());
        // A second one waits, for the budget or the overdraft.
        let mut c = Held::default();
        assert!(ready(budget.charge(&mut c, 1)).is_none());
        drop(b);
        assert!(ready(budget.charge(&mut c, 1)).is_some());
        assert!(c.overdrawn());
        // A charge larger than the budget waits for all of it.
        drop((a, c));
        let mut d = Held::default();
        assert!(ready(budget.charge(&mut d, 1_000)).is_some());
        assert_eq!((d.bytes(), budget.free()), (10, 0));
    }
}
