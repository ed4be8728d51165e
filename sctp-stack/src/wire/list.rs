//! Lists inside values: received bytes or borrowed typed items, compared by content.

use core::fmt;
use core::marker::PhantomData;

use super::{Encode, EncodeError, ParseError, Writer, be16, pad4};

/// A fixed-size list item (a gap block, a TSN, a stream number, a chunk type...).
pub trait FixedItem: Copy + PartialEq + fmt::Debug {
    /// Encoded size in bytes.
    const SIZE: usize;
    /// Reads an item from exactly [`FixedItem::SIZE`] bytes (`None` if `b` is shorter).
    fn read(b: &[u8]) -> Option<Self>;
    /// Writes the item into exactly [`FixedItem::SIZE`] bytes (does nothing if `out` is shorter).
    fn write(self, out: &mut [u8]);
}

enum FixedRepr<'a, T> {
    Wire(&'a [u8]),
    Items(&'a [T]),
}

/// A list of fixed-size items: either received bytes (checked to be a whole number of
/// items) or a borrowed slice of typed items for sending.
pub struct FixedList<'a, T> {
    repr: FixedRepr<'a, T>,
}

impl<'a, T: FixedItem> FixedList<'a, T> {
    /// The empty list.
    pub const EMPTY: FixedList<'a, T> = FixedList {
        repr: FixedRepr::Items(&[]),
    };

    /// A list of typed items (for sending).
    pub const fn from_items(items: &'a [T]) -> Self {
        FixedList {
            repr: FixedRepr::Items(items),
        }
    }

    /// A view of received bytes; fails unless they hold a whole number of items.
    pub fn from_bytes(bytes: &'a [u8], what: &'static str) -> Result<Self, ParseError> {
        if T::SIZE == 0 || bytes.len() % T::SIZE != 0 {
            return Err(ParseError::BadLength { what, offset: 0 });
        }
        Ok(FixedList {
            repr: FixedRepr::Wire(bytes),
        })
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        match self.repr {
            FixedRepr::Wire(b) => b.len() / T::SIZE.max(1),
            FixedRepr::Items(i) => i.len(),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encoded size in bytes (no padding).
    pub fn byte_len(&self) -> usize {
        self.len().saturating_mul(T::SIZE)
    }

    /// The items in order.
    pub fn iter(&self) -> FixedIter<'a, T> {
        let inner = match self.repr {
            FixedRepr::Wire(b) => FixedIterInner::Wire(b.chunks_exact(T::SIZE.max(1))),
            FixedRepr::Items(i) => FixedIterInner::Items(i.iter()),
        };
        FixedIter { inner }
    }

    /// The received bytes, when the list is a view of a packet.
    pub fn wire_bytes(&self) -> Option<&'a [u8]> {
        match self.repr {
            FixedRepr::Wire(b) => Some(b),
            FixedRepr::Items(_) => None,
        }
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self.repr {
            FixedRepr::Wire(b) => w.bytes(b),
            FixedRepr::Items(items) => {
                for item in items {
                    item.write(w.room(T::SIZE)?);
                }
                Ok(())
            }
        }
    }
}

impl<T: FixedItem> Default for FixedList<'_, T> {
    fn default() -> Self {
        FixedList::EMPTY
    }
}

impl<'a, T: FixedItem> IntoIterator for &FixedList<'a, T> {
    type Item = T;
    type IntoIter = FixedIter<'a, T>;
    fn into_iter(self) -> FixedIter<'a, T> {
        self.iter()
    }
}

impl<T: FixedItem> PartialEq for FixedList<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: FixedItem> Eq for FixedList<'_, T> where T: Eq {}

impl<T: FixedItem> fmt::Debug for FixedList<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over a [`FixedList`].
#[derive(Debug, Clone)]
pub struct FixedIter<'a, T> {
    inner: FixedIterInner<'a, T>,
}

#[derive(Debug, Clone)]
enum FixedIterInner<'a, T> {
    Wire(core::slice::ChunksExact<'a, u8>),
    Items(core::slice::Iter<'a, T>),
}

impl<T> fmt::Debug for FixedRepr<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FixedRepr::Wire(b) => write!(f, "Wire({} bytes)", b.len()),
            FixedRepr::Items(i) => write!(f, "Items({})", i.len()),
        }
    }
}

impl<T: FixedItem> Iterator for FixedIter<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        match &mut self.inner {
            FixedIterInner::Wire(chunks) => T::read(chunks.next()?),
            FixedIterInner::Items(items) => items.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.inner {
            FixedIterInner::Wire(c) => c.len(),
            FixedIterInner::Items(i) => i.len(),
        };
        (n, Some(n))
    }
}

impl<T: FixedItem> ExactSizeIterator for FixedIter<'_, T> {}

impl FixedItem for u16 {
    const SIZE: usize = 2;
    #[inline]
    fn read(b: &[u8]) -> Option<Self> {
        Some(u16::from_be_bytes(b.try_into().ok()?))
    }
    fn write(self, out: &mut [u8]) {
        if let Some(s) = out.get_mut(..2) {
            s.copy_from_slice(&self.to_be_bytes());
        }
    }
}

/// A TLV list item: a chunk parameter or an error cause.
pub trait TlvItem<'a>: Encode + Copy + PartialEq + fmt::Debug {
    /// What the items are, for error messages.
    const WHAT: &'static str;
    /// Parses an item from its type, its value and the whole TLV (header and value, no
    /// padding), as found by the list's structural check.
    fn parse_tlv(ty: u16, value: &'a [u8], tlv: &'a [u8]) -> Result<Self, ParseError>;
}

/// One structurally checked TLV: `(type, value, whole TLV without padding, next offset)`.
pub(crate) type SplitTlv<'a> = (u16, &'a [u8], &'a [u8], usize);

/// Splits the TLV starting at `pos` of `region`: the header must be complete, the length at
/// least 4 and within the region. The next item starts after the padding; a last item
/// whose padding is not (or only partly) inside the region ends the region.
pub(crate) fn split_tlv<'a>(
    region: &'a [u8],
    pos: usize,
    what: &'static str,
) -> Result<SplitTlv<'a>, ParseError> {
    let (Some(ty), Some(len)) = (be16(region, pos), be16(region, pos.saturating_add(2))) else {
        return Err(ParseError::Truncated { what, offset: pos });
    };
    let len = usize::from(len);
    if len < 4 {
        return Err(ParseError::BadLength { what, offset: pos });
    }
    let end = pos.saturating_add(len);
    let (Some(tlv), Some(value)) = (region.get(pos..end), region.get(pos + 4..end)) else {
        return Err(ParseError::BadLength { what, offset: pos });
    };
    let next = pos.saturating_add(pad4(len)).min(region.len());
    Ok((ty, value, tlv, next))
}

/// Checks the TLV structure of a whole region; returns it trimmed after the last item's
/// unpadded end (so a counted last padding is dropped) and the number of items.
pub(crate) fn check_tlv_region<'a>(
    region: &'a [u8],
    what: &'static str,
) -> Result<&'a [u8], ParseError> {
    let mut pos = 0;
    let mut last_end = 0;
    while pos < region.len() {
        let (_, _, tlv, next) = split_tlv(region, pos, what)?;
        last_end = pos + tlv.len();
        pos = next;
    }
    Ok(region.get(..last_end).unwrap_or(&[]))
}

/// Iterator over the raw TLVs (type, value, whole TLV) of a region, as [`RawTlvs::new`]
/// finds them: it yields an error for the first malformed TLV and then stops.
///
/// Use [`super::RawParam::iter`] and [`super::RawCause::iter`] for typed raw views.
#[derive(Debug, Clone)]
pub(crate) struct RawTlvs<'a> {
    region: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> RawTlvs<'a> {
    pub(crate) fn new(region: &'a [u8], what: &'static str) -> Self {
        RawTlvs {
            region,
            pos: 0,
            what,
        }
    }
}

impl<'a> Iterator for RawTlvs<'a> {
    type Item = Result<(u16, &'a [u8], &'a [u8]), ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.region.len() {
            return None;
        }
        match split_tlv(self.region, self.pos, self.what) {
            Ok((ty, value, tlv, next)) => {
                self.pos = next;
                Some(Ok((ty, value, tlv)))
            }
            Err(e) => {
                self.pos = self.region.len();
                Some(Err(e))
            }
        }
    }
}

enum TlvRepr<'a, T> {
    Wire(&'a [u8]),
    Items(&'a [T]),
}

/// A list of parameters or error causes: either received bytes (structure checked once,
/// items parsed as they are iterated) or a borrowed slice of typed items for sending.
///
/// Received lists keep their bytes, so re-encoding one reproduces what the peer sent (but
/// for a counted padding of the last item, which is dropped, RFC 9260 §3.2).
pub struct TlvList<'a, T> {
    repr: TlvRepr<'a, T>,
    _marker: PhantomData<&'a T>,
}

impl<'a, T: TlvItem<'a>> TlvList<'a, T> {
    /// The empty list.
    pub const EMPTY: TlvList<'a, T> = TlvList {
        repr: TlvRepr::Items(&[]),
        _marker: PhantomData,
    };

    /// A list of typed items (for sending).
    pub const fn from_items(items: &'a [T]) -> Self {
        TlvList {
            repr: TlvRepr::Items(items),
            _marker: PhantomData,
        }
    }

    /// A view of received bytes; checks the TLV structure (every header complete, every
    /// length at least 4 and within `bytes`).
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let trimmed = check_tlv_region(bytes, T::WHAT)?;
        Ok(TlvList {
            repr: TlvRepr::Wire(trimmed),
            _marker: PhantomData,
        })
    }

    /// Whether the list has no items.
    pub fn is_empty(&self) -> bool {
        match self.repr {
            TlvRepr::Wire(b) => b.is_empty(),
            TlvRepr::Items(i) => i.is_empty(),
        }
    }

    /// Number of items (walks a received list).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// The items in order, each parsed into its typed form. A received item whose type is
    /// known but whose value is malformed yields an error; iteration then continues with
    /// the next item. Unknown types come out as the `Unknown` variant with their raw bytes.
    pub fn iter(&self) -> TlvIter<'a, T> {
        TlvIter {
            repr: self.repr,
            pos: 0,
        }
    }

    /// The received bytes (trimmed after the last item), when the list is a view.
    pub fn wire_bytes(&self) -> Option<&'a [u8]> {
        match self.repr {
            TlvRepr::Wire(b) => Some(b),
            TlvRepr::Items(_) => None,
        }
    }

    /// Bytes of the list without the padding of its last item.
    pub fn unpadded_len(&self) -> usize {
        match self.repr {
            TlvRepr::Wire(b) => b.len(),
            TlvRepr::Items(items) => {
                let padded = self.padded_len();
                match items.last() {
                    Some(last) => padded - (last.encoded_len() - last.tlv_len()),
                    None => 0,
                }
            }
        }
    }

    /// Bytes of the list with the padding of every item.
    pub fn padded_len(&self) -> usize {
        match self.repr {
            TlvRepr::Wire(b) => pad4(b.len()),
            TlvRepr::Items(items) => items
                .iter()
                .fold(0usize, |acc, i| acc.saturating_add(i.encoded_len())),
        }
    }

    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        match self.repr {
            TlvRepr::Wire(b) => w.bytes(b),
            TlvRepr::Items(items) => {
                for item in items {
                    w.item(item)?;
                }
                Ok(())
            }
        }
    }
}

impl<'a, T: TlvItem<'a>> Default for TlvList<'a, T> {
    fn default() -> Self {
        TlvList::EMPTY
    }
}

impl<'a, T: TlvItem<'a>> IntoIterator for &TlvList<'a, T> {
    type Item = Result<T, ParseError>;
    type IntoIter = TlvIter<'a, T>;
    fn into_iter(self) -> TlvIter<'a, T> {
        self.iter()
    }
}

impl<'a, T: TlvItem<'a>> PartialEq for TlvList<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl<'a, T: TlvItem<'a>> fmt::Debug for TlvList<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Iterator over a [`TlvList`].
#[derive(Clone)]
pub struct TlvIter<'a, T> {
    repr: TlvRepr<'a, T>,
    pos: usize,
}

impl<T> fmt::Debug for TlvIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlvIter").field("pos", &self.pos).finish()
    }
}

impl<'a, T: TlvItem<'a>> Iterator for TlvIter<'a, T> {
    type Item = Result<T, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.repr {
            TlvRepr::Wire(b) => {
                if self.pos >= b.len() {
                    return None;
                }
                match split_tlv(b, self.pos, T::WHAT) {
                    Ok((ty, value, tlv, next)) => {
                        self.pos = next;
                        Some(T::parse_tlv(ty, value, tlv))
                    }
                    Err(e) => {
                        // Unreachable for a checked region; end the iteration cleanly.
                        self.pos = b.len();
                        Some(Err(e))
                    }
                }
            }
            TlvRepr::Items(items) => {
                let item = *items.get(self.pos)?;
                self.pos += 1;
                Some(Ok(item))
            }
        }
    }
}

// Manual impls: the lists hold only references, so they are `Copy` whatever `T` is.
macro_rules! copy_impls {
    ($($t:ident),*) => {$(
        impl<T> Clone for $t<'_, T> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<T> Copy for $t<'_, T> {}
    )*};
}
copy_impls!(FixedRepr, FixedList, TlvRepr, TlvList);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Cause, GapAckBlock, Param};

    #[test]
    fn a_received_list_equals_the_typed_list_it_was_encoded_from() {
        let items = [
            Param::HostNameAddress(b"abc"),
            Param::CookiePreservative(7),
            Param::EcnCapable,
        ];
        let typed = TlvList::from_items(&items);
        let mut buf = [0u8; 64];
        let mut n = 0;
        for p in &items {
            n += p.encode(&mut buf[n..]).expect("room");
        }
        let received = TlvList::<Param<'_>>::from_bytes(&buf[..n]).expect("well formed");
        assert_eq!(received, typed);
        assert_eq!(received.len(), 3);
        assert_eq!(received.padded_len(), typed.padded_len());
        assert_eq!(received.unpadded_len(), typed.unpadded_len());
    }

    #[test]
    fn the_unpadded_length_drops_only_the_last_items_padding() {
        // 7-byte host name (padded to 8) then a 5-byte one (padded to 8): 16 padded, 13 not.
        let items = [Param::HostNameAddress(b"abc"), Param::HostNameAddress(b"a")];
        let typed = TlvList::from_items(&items);
        assert_eq!(typed.padded_len(), 16);
        assert_eq!(typed.unpadded_len(), 13);
        assert_eq!(TlvList::<Cause<'_>>::EMPTY.unpadded_len(), 0);
    }

    #[test]
    fn fixed_lists_need_a_whole_number_of_items() {
        assert!(FixedList::<GapAckBlock>::from_bytes(&[0; 6], "gaps").is_err());
        let l = FixedList::<GapAckBlock>::from_bytes(&[0, 1, 0, 2, 0, 5, 0, 9], "gaps")
            .expect("two blocks");
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            [
                GapAckBlock { start: 1, end: 2 },
                GapAckBlock { start: 5, end: 9 }
            ]
        );
        assert_eq!(l.iter().len(), 2);
        assert_eq!(
            l,
            FixedList::from_items(&[
                GapAckBlock { start: 1, end: 2 },
                GapAckBlock { start: 5, end: 9 }
            ])
        );
    }
}
