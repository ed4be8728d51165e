//! Packet batches and buffer pools.
//!
//! Every backend moves packets in batches whose memory is allocated once, when the batch is
//! created, and reused for every burst afterwards:
//!
//! - [`RxBatch`] is filled by [`Link::recv`](crate::Link::recv): one contiguous arena cut into
//!   equal *slots*, plus a descriptor per received packet. A slot normally holds one packet; with
//!   UDP GRO one slot holds a run of coalesced datagrams and yields several descriptors, which
//!   is why the descriptor list is sized independently of the slot count.
//! - [`TxBatch`] is filled by the caller (typically through `Endpoint::poll_transmit` writing
//!   straight into [`TxBatch::free_slot`]) and drained by [`Link::send`](crate::Link::send),
//!   which removes the packets it sent from the front and leaves the rest for a later call.
//! - [`BufferPool`] hands out owned fixed-size buffers ([`PacketBuf`]) for packets that must
//!   outlive a burst: in-flight packets of the in-memory fabric, packets handed to another
//!   worker. A pool allocates only while it has never been that large before and never grows
//!   beyond its configured limit, so a steady state allocates nothing.

use std::fmt;
use std::net::IpAddr;

/// The addresses of a received packet, in the vocabulary of `sctp_stack`'s datagram input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RxMeta {
    /// The peer's address (IP source of the packet).
    pub src: IpAddr,
    /// Our address the packet was sent to (IP destination). Needed for multi-homing: an
    /// association is identified by the address pair, and replies leave from this address.
    pub dst: IpAddr,
    /// The peer's UDP source port for UDP-encapsulated SCTP (RFC 6951), or 0 for raw IP.
    pub encaps_port: u16,
    /// The index of the interface the packet arrived on, or 0 when unknown.
    pub ifindex: u32,
}

/// The addresses of a packet to send, in the vocabulary of `sctp_stack`'s transmit output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxMeta {
    /// The local address to send from, or `None` to let the operating system choose.
    pub src: Option<IpAddr>,
    /// The peer's address.
    pub dst: IpAddr,
    /// The peer's UDP port for UDP encapsulation; 0 means "the link's default remote port"
    /// (9899 unless configured otherwise). Raw-IP links ignore it.
    pub encaps_port: u16,
}

/// One received packet, borrowed from an [`RxBatch`].
#[derive(Clone, Copy, Debug)]
pub struct RxPacket<'a> {
    /// Where the packet came from and went to.
    pub meta: RxMeta,
    /// The SCTP packet: common header followed by chunks (IP and UDP headers removed).
    pub data: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
struct RxDesc {
    meta: RxMeta,
    offset: usize,
    len: usize,
}

/// A reusable batch of received packets.
///
/// The batch owns `slots * slot_size` bytes of packet memory and room for `max_packets`
/// descriptors; [`Link::recv`](crate::Link::recv) clears it and fills it. The slot size bounds
/// the largest datagram a backend can receive without truncation (links report their need
/// through [`Link::rx_slot_size`](crate::Link::rx_slot_size)).
pub struct RxBatch {
    arena: Box<[u8]>,
    slot_size: usize,
    slots: usize,
    descs: Vec<RxDesc>,
    max_packets: usize,
    drained: bool,
}

impl fmt::Debug for RxBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RxBatch")
            .field("slots", &self.slots)
            .field("slot_size", &self.slot_size)
            .field("packets", &self.descs.len())
            .finish()
    }
}

/// The most datagrams the Linux kernel coalesces into one GRO receive (`UDP_GRO_CNT_MAX`).
pub(crate) const GRO_MAX_SEGMENTS: usize = 64;

impl RxBatch {
    /// A batch of `slots` receive slots of `slot_size` bytes each (both at least 1), with room
    /// for up to 64 packets per slot (the kernel's GRO limit).
    pub fn new(slots: usize, slot_size: usize) -> Self {
        let slots = slots.max(1);
        let slot_size = slot_size.max(1);
        let max_packets = slots.saturating_mul(GRO_MAX_SEGMENTS);
        RxBatch {
            arena: vec![0u8; slots.saturating_mul(slot_size)].into_boxed_slice(),
            slot_size,
            slots,
            descs: Vec::with_capacity(max_packets),
            max_packets,
            drained: false,
        }
    }

    /// Whether the last [`Link::recv`](crate::Link::recv) is known to have emptied the
    /// link's receive queue (it filled fewer slots than it had). A run-to-completion loop may
    /// then wait for readiness instead of calling `recv` once more only to learn that nothing
    /// is left. False unless the backend reports it ([`set_drained`](Self::set_drained)).
    pub fn drained(&self) -> bool {
        self.drained
    }

    /// Records that the receive that filled this batch emptied the receive queue (for
    /// backends; [`clear`](Self::clear) resets it).
    pub fn set_drained(&mut self, drained: bool) {
        self.drained = drained;
    }

    /// The number of receive slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The size of each slot in bytes.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// The number of packets received by the last [`Link::recv`](crate::Link::recv).
    pub fn len(&self) -> usize {
        self.descs.len()
    }

    /// Whether the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.descs.is_empty()
    }

    /// Forgets all packets; the memory is kept for the next burst.
    pub fn clear(&mut self) {
        self.descs.clear();
        self.drained = false;
    }

    /// The `index`-th packet, if there is one.
    pub fn get(&self, index: usize) -> Option<RxPacket<'_>> {
        let d = self.descs.get(index)?;
        let data = self.arena.get(d.offset..d.offset.checked_add(d.len)?)?;
        Some(RxPacket { meta: d.meta, data })
    }

    /// The received packets in arrival order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = RxPacket<'_>> + '_ {
        self.descs.iter().map(move |d| RxPacket {
            meta: d.meta,
            // Descriptors are only created by `push`, which checks the range.
            data: self.arena.get(d.offset..d.offset + d.len).unwrap_or(&[]),
        })
    }

    /// Whether another descriptor fits.
    pub(crate) fn has_room(&self) -> bool {
        self.descs.len() < self.max_packets
    }

    /// Slot `slot` as writable memory.
    pub(crate) fn slot_mut(&mut self, slot: usize) -> &mut [u8] {
        let start = slot.min(self.slots) * self.slot_size;
        let end = (start + self.slot_size).min(self.arena.len());
        &mut self.arena[start..end]
    }

    /// Slot `slot` as read-only memory (empty for an out-of-range slot).
    pub(crate) fn slot(&self, slot: usize) -> &[u8] {
        let start = slot.saturating_mul(self.slot_size);
        self.arena
            .get(start..start.saturating_add(self.slot_size))
            .unwrap_or(&[])
    }

    /// The whole arena as a raw pointer for building scatter lists (`iovec`s) that the kernel
    /// writes into.
    #[cfg(unix)]
    pub(crate) fn arena_ptr(&mut self) -> *mut u8 {
        self.arena.as_mut_ptr()
    }

    /// Records a packet of `len` bytes at `offset` bytes into slot `slot`. Returns false (and
    /// records nothing) when the range lies outside the slot or the descriptor list is full.
    pub(crate) fn push(&mut self, meta: RxMeta, slot: usize, offset: usize, len: usize) -> bool {
        if slot >= self.slots || !self.has_room() {
            return false;
        }
        let Some(end) = offset.checked_add(len) else {
            return false;
        };
        if end > self.slot_size {
            return false;
        }
        self.descs.push(RxDesc {
            meta,
            offset: slot * self.slot_size + offset,
            len,
        });
        true
    }

    /// Copies `data` into slot `slot` and records it; false when it does not fit.
    pub(crate) fn push_copy(&mut self, meta: RxMeta, slot: usize, data: &[u8]) -> bool {
        if data.len() > self.slot_size || slot >= self.slots || !self.has_room() {
            return false;
        }
        self.slot_mut(slot)[..data.len()].copy_from_slice(data);
        self.push(meta, slot, 0, data.len())
    }
}

#[derive(Clone, Copy, Debug)]
struct TxDesc {
    meta: TxMeta,
    len: usize,
}

/// A reusable batch of packets to send.
///
/// Packets occupy slots in order. Fill it with [`free_slot`](Self::free_slot) +
/// [`commit`](Self::commit) (zero-copy: the stack encodes straight into the slot) or with
/// [`push`](Self::push) (copies). [`Link::send`](crate::Link::send) sends from the front and
/// removes what it sent; what remains (the socket buffer was full) stays queued in order.
pub struct TxBatch {
    arena: Box<[u8]>,
    slot_size: usize,
    slots: usize,
    descs: Vec<TxDesc>,
    /// Index of the first packet not yet sent.
    head: usize,
}

impl fmt::Debug for TxBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TxBatch")
            .field("slots", &self.slots)
            .field("slot_size", &self.slot_size)
            .field("pending", &self.len())
            .finish()
    }
}

impl TxBatch {
    /// A batch of `slots` packets of at most `slot_size` bytes each (both at least 1).
    pub fn new(slots: usize, slot_size: usize) -> Self {
        let slots = slots.max(1);
        let slot_size = slot_size.max(1);
        TxBatch {
            arena: vec![0u8; slots.saturating_mul(slot_size)].into_boxed_slice(),
            slot_size,
            slots,
            descs: Vec::with_capacity(slots),
            head: 0,
        }
    }

    /// The number of slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The largest packet a slot holds.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// The number of packets waiting to be sent.
    pub fn len(&self) -> usize {
        self.descs.len() - self.head
    }

    /// Whether no packet waits to be sent.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether no further packet can be queued until the batch is sent or cleared.
    pub fn is_full(&self) -> bool {
        self.descs.len() >= self.slots
    }

    /// Drops every queued packet.
    pub fn clear(&mut self) {
        self.descs.clear();
        self.head = 0;
    }

    /// The memory of the next packet, to be followed by [`commit`](Self::commit); `None` when
    /// the batch is full.
    pub fn free_slot(&mut self) -> Option<&mut [u8]> {
        if self.is_full() {
            return None;
        }
        let start = self.descs.len() * self.slot_size;
        self.arena.get_mut(start..start + self.slot_size)
    }

    /// Queues the packet written into [`free_slot`](Self::free_slot): its first `len` bytes.
    /// Returns false (and queues nothing) when the batch is full or `len` exceeds the slot.
    pub fn commit(&mut self, meta: TxMeta, len: usize) -> bool {
        if self.is_full() || len > self.slot_size {
            return false;
        }
        self.descs.push(TxDesc { meta, len });
        true
    }

    /// Copies `data` into the next slot and queues it; false when full or too large.
    pub fn push(&mut self, meta: TxMeta, data: &[u8]) -> bool {
        let Some(slot) = self.free_slot() else {
            return false;
        };
        let Some(dst) = slot.get_mut(..data.len()) else {
            return false;
        };
        dst.copy_from_slice(data);
        self.commit(meta, data.len())
    }

    /// The pending packets in send order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (TxMeta, &[u8])> + '_ {
        (self.head..self.descs.len()).map(move |i| {
            let d = self.descs[i];
            let start = i * self.slot_size;
            (d.meta, &self.arena[start..start + d.len])
        })
    }

    /// The `i`-th pending packet (0 = the next one to send).
    pub(crate) fn pending(&self, i: usize) -> Option<(TxMeta, &[u8])> {
        let idx = self.head.checked_add(i)?;
        let d = self.descs.get(idx)?;
        let start = idx * self.slot_size;
        Some((d.meta, self.arena.get(start..start + d.len)?))
    }

    /// Marks the first `n` pending packets as sent (or dropped).
    pub(crate) fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.descs.len());
        if self.head == self.descs.len() {
            self.clear();
        }
    }
}

/// An owned packet buffer of fixed capacity, taken from a [`BufferPool`].
///
/// It holds `len` valid bytes; the rest of the capacity is scratch space. Give it back with
/// [`BufferPool::put`] (from any pool with the same buffer size) when done; a buffer that is
/// dropped instead is simply freed.
pub struct PacketBuf {
    data: Box<[u8]>,
    len: usize,
}

impl fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketBuf")
            .field("len", &self.len)
            .field("capacity", &self.data.len())
            .finish()
    }
}

impl PacketBuf {
    /// The valid bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// The number of valid bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no byte is valid.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The capacity of the buffer.
    pub fn capacity(&self) -> usize {
        self.data.len()
    }

    /// The whole buffer for writing; follow with [`set_len`](Self::set_len).
    pub fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Sets the number of valid bytes (clamped to the capacity).
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.data.len());
    }

    /// Replaces the contents with a copy of `src`; false (contents unchanged) when it does
    /// not fit.
    pub fn fill_from(&mut self, src: &[u8]) -> bool {
        match self.data.get_mut(..src.len()) {
            Some(dst) => {
                dst.copy_from_slice(src);
                self.len = src.len();
                true
            }
            None => false,
        }
    }
}

/// A bounded free list of equally sized [`PacketBuf`]s.
///
/// Single-threaded by design (each worker owns its pools); buffers themselves can move between
/// threads and be returned to another pool of the same buffer size.
pub struct BufferPool {
    free: Vec<Box<[u8]>>,
    buf_size: usize,
    limit: usize,
    outstanding: usize,
    allocated: usize,
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("buf_size", &self.buf_size)
            .field("free", &self.free.len())
            .field("outstanding", &self.outstanding)
            .field("limit", &self.limit)
            .finish()
    }
}

impl BufferPool {
    /// A pool of buffers of `buf_size` bytes that never has more than `limit` buffers out at
    /// once. `prealloc` buffers (at most `limit`) are allocated now.
    pub fn new(buf_size: usize, limit: usize, prealloc: usize) -> Self {
        let mut free = Vec::with_capacity(limit);
        for _ in 0..prealloc.min(limit) {
            free.push(vec![0u8; buf_size].into_boxed_slice());
        }
        BufferPool {
            allocated: free.len(),
            free,
            buf_size,
            limit,
            outstanding: 0,
        }
    }

    /// The size of every buffer.
    pub fn buf_size(&self) -> usize {
        self.buf_size
    }

    /// The number of buffers currently handed out.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// The number of buffers ever allocated by this pool.
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    /// An empty buffer, or `None` when `limit` buffers are already out.
    pub fn take(&mut self) -> Option<PacketBuf> {
        if self.outstanding >= self.limit {
            return None;
        }
        let data = match self.free.pop() {
            Some(b) => b,
            None => {
                self.allocated += 1;
                vec![0u8; self.buf_size].into_boxed_slice()
            }
        };
        self.outstanding += 1;
        Some(PacketBuf { data, len: 0 })
    }

    /// A buffer holding a copy of `src`, or `None` when the pool is exhausted or `src` is
    /// larger than a buffer.
    pub fn take_copy(&mut self, src: &[u8]) -> Option<PacketBuf> {
        if src.len() > self.buf_size {
            return None;
        }
        let mut b = self.take()?;
        b.fill_from(src);
        Some(b)
    }

    /// Returns a buffer. Buffers of another size are freed instead of kept.
    pub fn put(&mut self, buf: PacketBuf) {
        self.outstanding = self.outstanding.saturating_sub(1);
        if buf.data.len() == self.buf_size && self.free.len() < self.limit {
            self.free.push(buf.data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn tx_meta(last: u8) -> TxMeta {
        TxMeta {
            src: None,
            dst: IpAddr::V4(Ipv4Addr::new(198, 18, 0, last)),
            encaps_port: 0,
        }
    }

    #[test]
    fn pool_reuses_returned_buffers_without_allocating() {
        let mut pool = BufferPool::new(2048, 8, 2);
        assert_eq!(pool.allocated(), 2);
        for _ in 0..1000 {
            let a = pool.take().unwrap();
            let b = pool.take_copy(b"hello").unwrap();
            assert_eq!(b.as_slice(), b"hello");
            pool.put(a);
            pool.put(b);
        }
        assert_eq!(pool.allocated(), 2, "steady state must not allocate");
        assert_eq!(pool.outstanding(), 0);
    }

    #[test]
    fn pool_refuses_beyond_its_limit_and_recovers() {
        let mut pool = BufferPool::new(64, 3, 0);
        let bufs: Vec<_> = (0..3).map(|_| pool.take().unwrap()).collect();
        assert!(pool.take().is_none());
        assert!(pool.take_copy(&[0u8; 65]).is_none());
        for b in bufs {
            pool.put(b);
        }
        assert!(pool.take().is_some());
        assert_eq!(pool.allocated(), 3);
    }

    #[test]
    fn pool_rejects_oversized_copies_and_foreign_buffers() {
        let mut pool = BufferPool::new(16, 4, 0);
        assert!(pool.take_copy(&[1u8; 17]).is_none());
        let mut other = BufferPool::new(32, 4, 0);
        let foreign = other.take().unwrap();
        pool.put(foreign);
        let b = pool.take().unwrap();
        assert_eq!(b.capacity(), 16);
    }

    #[test]
    fn tx_batch_keeps_unsent_packets_in_order() {
        let mut tx = TxBatch::new(4, 100);
        for i in 0..4u8 {
            assert!(tx.push(tx_meta(i), &[i; 10]));
        }
        assert!(tx.is_full());
        assert!(!tx.push(tx_meta(9), &[9; 10]));
        tx.consume(1);
        assert_eq!(tx.len(), 3);
        let firsts: Vec<u8> = tx.iter().map(|(_, d)| d[0]).collect();
        assert_eq!(firsts, vec![1, 2, 3]);
        assert_eq!(tx.pending(0).unwrap().0, tx_meta(1));
        tx.consume(3);
        assert!(tx.is_empty());
        assert!(!tx.is_full(), "a drained batch is reusable");
    }

    #[test]
    fn tx_batch_commit_rejects_lengths_beyond_the_slot() {
        let mut tx = TxBatch::new(2, 8);
        let slot = tx.free_slot().unwrap();
        assert_eq!(slot.len(), 8);
        slot[..3].copy_from_slice(b"abc");
        assert!(!tx.commit(tx_meta(1), 9));
        assert!(tx.commit(tx_meta(1), 3));
        assert!(!tx.push(tx_meta(2), &[0; 9]));
        assert_eq!(tx.iter().next().unwrap().1, b"abc");
    }

    #[test]
    fn rx_batch_rejects_descriptors_outside_their_slot() {
        let mut rx = RxBatch::new(2, 100);
        let meta = RxMeta {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            encaps_port: 9899,
            ifindex: 0,
        };
        assert!(rx.push_copy(meta, 1, b"abcd"));
        assert!(!rx.push(meta, 0, 90, 11));
        assert!(!rx.push(meta, 2, 0, 1));
        assert!(!rx.push(meta, 0, usize::MAX, 2));
        assert!(!rx.push_copy(meta, 0, &[0; 101]));
        assert_eq!(rx.len(), 1);
        assert_eq!(rx.get(0).unwrap().data, b"abcd");
        assert_eq!(rx.iter().next().unwrap().meta, meta);
        rx.clear();
        assert!(rx.is_empty());
    }
}
