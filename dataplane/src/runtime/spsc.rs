//! A bounded, lock-free single-producer single-consumer ring.
//!
//! Workers hand packets to each other through one ring per ordered pair of workers, so every
//! ring has exactly one writer and one reader and needs no lock and no compare-and-swap: the
//! producer owns the tail index, the consumer owns the head index, and each publishes its
//! index with a release store that the other side reads with an acquire load. Both sides
//! cache the other's index and reload it only when the ring looks full (producer) or empty
//! (consumer), so a busy ring costs one shared-cache-line read per burst, not per item.
//!
//! Indices count items since creation and wrap with the machine word (`usize`, 32 bits on
//! MIPS and PowerPC): the capacity is a power of two, so it divides the wrap-around and
//! `tail - head` (wrapping) is always the fill level.

use std::cell::UnsafeCell;
use std::fmt;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Keeps the producer's and the consumer's index on separate cache lines.
#[repr(align(64))]
struct CachePadded<T>(T);

struct Ring<T> {
    /// The next item to read; written by the consumer only.
    head: CachePadded<AtomicUsize>,
    /// The next slot to write; written by the producer only.
    tail: CachePadded<AtomicUsize>,
    mask: usize,
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: a slot is accessed by one side at a time: the producer writes slots in
// [tail, head + capacity) and publishes them with a release store of `tail`; the consumer reads
// slots in [head, tail) after an acquire load of `tail` and gives them back with a release store
// of `head`. Items move between threads, hence `T: Send`.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: as above; the ring owns its items.
unsafe impl<T: Send> Send for Ring<T> {}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let head = *self.head.0.get_mut();
        let tail = *self.tail.0.get_mut();
        let mut i = head;
        while i != tail {
            // SAFETY: slots in [head, tail) hold initialised items that were never read; we
            // have exclusive access (`&mut self`) and drop each exactly once.
            unsafe { (*self.slots[i & self.mask].get()).assume_init_drop() };
            i = i.wrapping_add(1);
        }
    }
}

/// The writing end of a ring.
pub struct Producer<T> {
    ring: Arc<Ring<T>>,
    tail: usize,
    head_cache: usize,
}

/// The reading end of a ring.
pub struct Consumer<T> {
    ring: Arc<Ring<T>>,
    head: usize,
    tail_cache: usize,
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &(self.ring.mask + 1))
            .finish()
    }
}

/// A ring holding up to `capacity` items (rounded up to a power of two, at least 2).
pub fn ring<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cap = capacity
        .max(2)
        .checked_next_power_of_two()
        .unwrap_or(1 << 20);
    let slots = (0..cap)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect::<Vec<_>>()
        .into_boxed_slice();
    let ring = Arc::new(Ring {
        head: CachePadded(AtomicUsize::new(0)),
        tail: CachePadded(AtomicUsize::new(0)),
        mask: cap - 1,
        slots,
    });
    (
        Producer {
            ring: Arc::clone(&ring),
            tail: 0,
            head_cache: 0,
        },
        Consumer {
            ring,
            head: 0,
            tail_cache: 0,
        },
    )
}

impl<T> Producer<T> {
    /// The number of items the ring holds at most.
    pub fn capacity(&self) -> usize {
        self.ring.mask + 1
    }

    /// Appends `item`, or gives it back when the ring is full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        let cap = self.ring.mask + 1;
        if self.tail.wrapping_sub(self.head_cache) >= cap {
            self.head_cache = self.ring.head.0.load(Ordering::Acquire);
            if self.tail.wrapping_sub(self.head_cache) >= cap {
                return Err(item);
            }
        }
        // SAFETY: the slot at `tail` is free (fewer than `cap` items are unread, per the acquire
        // load of `head` above), and only this producer writes slots.
        unsafe { (*self.ring.slots[self.tail & self.ring.mask].get()).write(item) };
        self.tail = self.tail.wrapping_add(1);
        self.ring.tail.0.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Whether the consumer side has been dropped (nothing pushed will ever be read).
    pub fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.ring) == 1
    }
}

impl<T> Consumer<T> {
    /// Takes the oldest item, if any.
    pub fn pop(&mut self) -> Option<T> {
        if self.head == self.tail_cache {
            self.tail_cache = self.ring.tail.0.load(Ordering::Acquire);
            if self.head == self.tail_cache {
                return None;
            }
        }
        // SAFETY: `head != tail` (acquire-loaded), so the slot holds an item the producer
        // published; only this consumer reads slots, and it reads each once.
        let item =
            unsafe { (*self.ring.slots[self.head & self.ring.mask].get()).assume_init_read() };
        self.head = self.head.wrapping_add(1);
        self.ring.head.0.store(self.head, Ordering::Release);
        Some(item)
    }

    /// Whether no item is waiting (a fresh look at the producer's index).
    pub fn is_empty(&self) -> bool {
        self.head == self.ring.tail.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_come_out_in_order_and_a_full_ring_refuses_more() {
        let (mut p, mut c) = ring::<u32>(3);
        assert_eq!(p.capacity(), 4);
        for i in 0..4 {
            assert_eq!(p.push(i), Ok(()));
        }
        assert_eq!(p.push(9), Err(9));
        assert_eq!(c.pop(), Some(0));
        assert_eq!(p.push(4), Ok(()));
        let rest: Vec<u32> = std::iter::from_fn(|| c.pop()).collect();
        assert_eq!(rest, vec![1, 2, 3, 4]);
        assert!(c.is_empty());
    }

    #[test]
    fn unread_items_are_dropped_with_the_ring() {
        let marker = Arc::new(());
        let (mut p, mut c) = ring::<Arc<()>>(8);
        for _ in 0..5 {
            p.push(Arc::clone(&marker)).unwrap();
        }
        drop(c.pop());
        assert_eq!(Arc::strong_count(&marker), 5);
        drop(p);
        drop(c);
        assert_eq!(Arc::strong_count(&marker), 1);
    }

    #[test]
    fn a_million_items_cross_threads_exactly_once_in_order() {
        const N: u64 = 1_000_000;
        let (mut p, mut c) = ring::<u64>(64);
        let producer = std::thread::spawn(move || {
            let mut i = 0;
            while i < N {
                match p.push(i) {
                    Ok(()) => i += 1,
                    Err(_) => std::thread::yield_now(),
                }
            }
        });
        let mut expected = 0;
        let mut idle = 0u64;
        while expected < N {
            match c.pop() {
                Some(v) => {
                    assert_eq!(v, expected);
                    expected += 1;
                }
                None => {
                    idle += 1;
                    assert!(idle < 1_000_000_000, "producer stalled");
                    std::thread::yield_now();
                }
            }
        }
        producer.join().unwrap();
        assert!(c.pop().is_none());
    }

    #[test]
    fn indices_wrap_around_the_machine_word() {
        let (mut p, mut c) = ring::<usize>(4);
        // Start both ends just below the wrap-around point.
        let start = usize::MAX - 5;
        p.tail = start;
        p.head_cache = start;
        p.ring.tail.0.store(start, Ordering::Relaxed);
        p.ring.head.0.store(start, Ordering::Relaxed);
        c.head = start;
        c.tail_cache = start;
        for round in 0..5 {
            for i in 0..4 {
                p.push(round * 10 + i).unwrap();
            }
            assert!(p.push(99).is_err());
            for i in 0..4 {
                assert_eq!(c.pop(), Some(round * 10 + i));
            }
            assert!(c.pop().is_none());
        }
    }
}
