//! A structural walk over an update v1 before yrs decodes it.
//!
//! yrs 0.28 decodes nested `Any` values (JSON-like content of Y.Map and
//! Y.Array items) recursively, with no depth limit. Two bytes per level
//! (`117` array, `1` element) are enough to overflow the thread's stack with
//! a frame of a few dozen KiB, and a stack overflow aborts the whole process:
//! `catch_unwind` cannot stop it. So every update is walked here first with
//! a bounded depth, reading the same fields in the same way as yrs's
//! `Update::decode` for v1 (including its varint widths), and refused if the
//! walk fails. The walk also refuses counts larger than the bytes left, which
//! would otherwise make yrs reserve memory for elements that cannot exist.
//!
//! The walk runs in time linear in the input. It also records where each
//! item sits (client, clock, length, parent) so that
//! [`crate::nesting::longest_type_chain`] can bound the nesting of shared
//! types the update brings, and so that [`check_against_state`] can refuse
//! items that name parents the document lacks for clocks it already holds.
//!
//! One rule goes beyond decoding: an item may not name a later clock of its
//! own client (see `Cursor::own_past`). Yjs throws on such an item; yrs
//! waits for the named clock and integrates the item once it arrives, but a
//! snapshot lists a client's blocks in clock order, so a reload keeps it
//! waiting forever and loses every later block of that client.

use crate::nesting::{ItemBlock, ItemId, ParentRef};

/// Deepest nesting of `Any` arrays and maps accepted. Annotation values nest
/// two levels at most (a map holding an array of strings).
pub const MAX_VALUE_DEPTH: usize = 64;

/// Item content kinds, as yrs and Yjs number them (`info & 0b1111`).
const CONTENT_DELETED: u8 = 1;
const CONTENT_JSON: u8 = 2;
const CONTENT_BINARY: u8 = 3;
const CONTENT_STRING: u8 = 4;
const CONTENT_EMBED: u8 = 5;
const CONTENT_FORMAT: u8 = 6;
const CONTENT_TYPE: u8 = 7;
const CONTENT_ANY: u8 = 8;
const CONTENT_DOC: u8 = 9;
/// Whole-`info` values yrs reads as GC and Skip blocks.
const BLOCK_GC: u8 = 0;
const BLOCK_SKIP: u8 = 10;
/// Item `info` flags.
const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;
/// The type ref of an XML element, the only one followed by a name.
const TYPE_XML_ELEMENT: u8 = 3;

/// What the walk learned about a well-formed update.
#[derive(Debug, Clone, Default)]
pub struct UpdateShape {
    /// Every non-empty item: where it sits and what its parent is.
    pub items: Vec<ItemBlock>,
    /// Every GC block, as (client, first clock, length).
    pub collected: Vec<(u64, u32, u32)>,
}

impl UpdateShape {
    /// Whether the update holds shared-type items (content kind 7).
    pub fn has_types(&self) -> bool {
        self.items.iter().any(|item| item.is_type)
    }
}

/// Refuses an update that names, as the explicit parent of an item whose
/// first clock the document already holds, an item that neither the
/// document (`known`: the document's next clock for a client) nor the
/// update holds.
///
/// yrs trims the part of an incoming item that the document holds by
/// slicing it, and a slice is written with the clock before it as its left
/// origin and no parent (the update format derives a slice's parent from
/// that origin). An item with a parent the document lacks waits for it,
/// and its encoding in every later snapshot or sync step 2 has lost that
/// wait: a reload integrates what the live document holds back. No honest
/// client sends one: the document integrated the item's first clock, and
/// with it the item's parent, when that clock first arrived.
pub fn check_against_state(shape: &UpdateShape, known: impl Fn(u64) -> u32) -> Result<(), String> {
    // Every block of the update as (client, first clock, length), sorted,
    // built only when a held item names a parent the doc lacks.
    let mut blocks: Option<Vec<(u64, u32, u32)>> = None;
    for item in &shape.items {
        let ParentRef::Item(parent) = item.parent else {
            continue;
        };
        if item.start >= known(item.client) || parent.1 < known(parent.0) {
            continue;
        }
        let blocks = blocks.get_or_insert_with(|| {
            let mut all: Vec<_> = shape
                .items
                .iter()
                .map(|item| (item.client, item.start, item.len))
                .chain(shape.collected.iter().copied())
                .collect();
            all.sort_unstable();
            all
        });
        if !holds(blocks, parent) {
            return Err(format!(
                "item ({}, {}) is already held but names a missing parent ({}, {})",
                item.client, item.start, parent.0, parent.1
            ));
        }
    }
    Ok(())
}

/// Refuses an update that leaves a gap in a client's clocks: a block that
/// starts past what the document holds of that client (`known`: its next
/// clock), or past the blocks before it in the update or waiting in the
/// document (`waiting`). yrs integrated some such blocks (map entries)
/// while its state vector still stopped at the gap, so a sync step 2 from
/// that state vector left them out and peers never converged (found by
/// the randomized hostile client). No honest client sends one: a client's
/// updates, and a sync step 2 from the server's state vector, continue
/// every client's clocks where the server's stop.
pub(crate) fn check_no_gap(
    shape: &UpdateShape,
    known: impl Fn(u64) -> u32,
    waiting: &[crate::nesting::ItemBlock],
) -> Result<(), String> {
    let mut blocks: Vec<(u64, u32, u32)> = shape
        .items
        .iter()
        .map(|item| (item.client, item.start, item.len))
        .chain(shape.collected.iter().copied())
        .collect();
    if blocks.is_empty() {
        return Ok(());
    }
    blocks.extend(
        waiting
            .iter()
            .map(|item| (item.client, item.start, item.len)),
    );
    blocks.sort_unstable();
    let mut current: Option<(u64, u32)> = None;
    for (client, start, len) in blocks {
        let reach = match current {
            Some((held, reach)) if held == client => reach,
            _ => known(client),
        };
        if start > reach {
            return Err(format!(
                "client {client}'s clocks jump from {reach} to {start}: the update leaves a gap"
            ));
        }
        current = Some((client, reach.max(start.saturating_add(len))));
    }
    Ok(())
}

/// Whether one of `blocks` (sorted (client, first clock, length)) holds `id`.
fn holds(blocks: &[(u64, u32, u32)], (client, clock): ItemId) -> bool {
    let after = blocks
        .partition_point(|&(block_client, start, _)| (block_client, start) <= (client, clock));
    after
        .checked_sub(1)
        .and_then(|index| blocks.get(index))
        .is_some_and(|&(block_client, start, len)| {
            block_client == client && clock.checked_sub(start).is_some_and(|offset| offset < len)
        })
}

/// Checks that `update` is a well-formed update v1 that yrs can decode
/// without deep recursion. The error says what is wrong, for logs.
pub fn check_update_v1(update: &[u8]) -> Result<UpdateShape, String> {
    let mut cursor = Cursor {
        buf: update,
        pos: 0,
        shape: UpdateShape::default(),
    };
    cursor
        .update()
        .map_err(|problem| format!("{problem} at byte {}", cursor.pos))?;
    Ok(cursor.shape)
}

/// Checks that `state_vector` is a well-formed encoded state vector whose
/// entry count fits in its bytes.
pub fn check_state_vector_v1(state_vector: &[u8]) -> Result<(), String> {
    let mut cursor = Cursor {
        buf: state_vector,
        pos: 0,
        shape: UpdateShape::default(),
    };
    let result = (|| {
        let entries = cursor.count(2)?;
        for _ in 0..entries {
            cursor.var_u64()?;
            cursor.var_u32()?;
        }
        Ok(())
    })();
    result.map_err(|problem: &str| format!("{problem} at byte {}", cursor.pos))
}

/// A read position in the input, and the blocks seen so far.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    shape: UpdateShape,
}

type Walk<T = ()> = Result<T, &'static str>;

impl Cursor<'_> {
    fn update(&mut self) -> Walk {
        let clients = self.count(3)?;
        for _ in 0..clients {
            let blocks = self.count(1)?;
            let client = self.var_u64()?;
            let mut clock = self.var_u32()?;
            for _ in 0..blocks {
                let len = self.block(client, clock)?;
                clock = clock.checked_add(len).ok_or("clock overflows")?;
            }
        }
        self.delete_set()
    }

    /// Walks one block starting at `clock`; returns its length in clock
    /// units (0 for an empty item, which yrs drops).
    fn block(&mut self, client: u64, clock: u32) -> Walk<u32> {
        let info = self.u8()?;
        if info == BLOCK_GC || info == BLOCK_SKIP {
            let len = self.var_u32()?;
            if len == 0 {
                return Err("empty block");
            }
            if info == BLOCK_GC {
                self.shape.collected.push((client, clock, len));
            }
            return Ok(len);
        }
        let own_past = |id: ItemId| Self::own_past(client, clock, id);
        let origin = if info & HAS_ORIGIN != 0 {
            Some(self.id().and_then(own_past)?)
        } else {
            None
        };
        let right_origin = if info & HAS_RIGHT_ORIGIN != 0 {
            Some(self.id().and_then(own_past)?)
        } else {
            None
        };
        let mut parent = ParentRef::Origins(origin, right_origin);
        if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
            parent = if self.var_u32()? == 1 {
                self.string()?; // root type name
                ParentRef::Root
            } else {
                ParentRef::Item(self.id().and_then(own_past)?)
            };
            if info & HAS_PARENT_SUB != 0 {
                self.string()?; // map key
            }
        }
        let kind = info & 0b1111;
        let len = self.content(kind)?;
        if len > 0 {
            let is_type = kind == CONTENT_TYPE;
            self.shape.items.push(ItemBlock {
                client,
                start: clock,
                len,
                is_type,
                parent,
            });
        }
        Ok(len)
    }

    /// Passes `id`, an origin or parent named by the item that starts at
    /// `clock` of `client`, unless it is that client's own clock `clock` or
    /// later. A client numbers its insertions in order, and an item's left
    /// origin, right origin and parent all existed when it was inserted, so
    /// those of its own are below its first clock; a slice of an item (in a
    /// diff, a split, a merge) names the clock just before it. Only the
    /// first clock counts: the origins of an item written with several
    /// clocks are those of its first one.
    fn own_past(client: u64, clock: u32, id: ItemId) -> Walk<ItemId> {
        if id.0 == client && id.1 >= clock {
            Err("item names a later clock of its own client")
        } else {
            Ok(id)
        }
    }

    /// Walks item content; returns its length as yrs counts it (UTF-16
    /// code units for strings, elements for lists, 1 otherwise).
    fn content(&mut self, kind: u8) -> Walk<u32> {
        match kind {
            CONTENT_DELETED => self.var_u32(),
            // Legacy content no current Yjs writes. yrs writes `len` strings
            // but reads `len + 1`, so such items break every later encoding
            // of the doc (and make yrs panic); refuse them.
            CONTENT_JSON => Err("legacy JSON content is not supported"),
            CONTENT_STRING => {
                let text = std::str::from_utf8(self.bytes()?).map_err(|_| "string is not UTF-8")?;
                u32::try_from(text.encode_utf16().count()).map_err(|_| "string too long")
            }
            CONTENT_BINARY | CONTENT_EMBED => self.string().map(|()| 1),
            CONTENT_FORMAT => {
                self.string()?;
                self.string().map(|()| 1)
            }
            CONTENT_TYPE => {
                if self.u8()? == TYPE_XML_ELEMENT {
                    self.string()?;
                }
                Ok(1)
            }
            CONTENT_ANY => {
                let len = self.var_u32()?;
                if len as usize > self.remaining() {
                    return Err("value count exceeds input");
                }
                for _ in 0..len {
                    self.any(1)?;
                }
                Ok(len)
            }
            CONTENT_DOC => {
                self.string()?; // guid
                self.any(1).map(|()| 1)
            }
            _ => Err("unknown content kind"),
        }
    }

    fn any(&mut self, depth: usize) -> Walk {
        if depth > MAX_VALUE_DEPTH {
            return Err("value nested too deeply");
        }
        match self.u8()? {
            120 | 121 | 126 | 127 => Ok(()),
            125 => self.signed_var(),
            124 => self.skip(4),
            122 | 123 => self.skip(8),
            116 | 119 => self.string(),
            118 => {
                let len = self.var_u64()?;
                if len > self.remaining() as u64 {
                    return Err("map size exceeds input");
                }
                for _ in 0..len {
                    self.string()?;
                    self.any(depth + 1)?;
                }
                Ok(())
            }
            117 => {
                let len = self.var_u64()?;
                if len > self.remaining() as u64 {
                    return Err("array size exceeds input");
                }
                for _ in 0..len {
                    self.any(depth + 1)?;
                }
                Ok(())
            }
            _ => Err("unknown value type"),
        }
    }

    fn delete_set(&mut self) -> Walk {
        let clients = self.count(2)?;
        for _ in 0..clients {
            self.var_u64()?;
            let ranges = self.count(2)?;
            for _ in 0..ranges {
                let clock = self.var_u32()?;
                let len = self.var_u32()?;
                clock.checked_add(len).ok_or("delete range overflows")?;
            }
        }
        Ok(())
    }

    fn id(&mut self) -> Walk<ItemId> {
        Ok((self.var_u64()?, self.var_u32()?))
    }

    /// Reads a varuint count of elements taking at least `min_bytes` each.
    fn count(&mut self, min_bytes: usize) -> Walk<usize> {
        let count = self.var_u32()? as usize;
        if count.saturating_mul(min_bytes) > self.remaining() {
            return Err("count exceeds input");
        }
        Ok(count)
    }

    /// A varString / varUint8Array (yrs reads the length as a u32 varint).
    fn string(&mut self) -> Walk {
        self.bytes().map(drop)
    }

    fn bytes(&mut self) -> Walk<&[u8]> {
        let len = self.var_u32()? as usize;
        let start = self.pos;
        self.skip(len)?;
        self.buf.get(start..self.pos).ok_or("length exceeds input")
    }

    /// yrs's `read_var::<u32>`: up to 11 bytes, high bits wrapped.
    fn var_u32(&mut self) -> Walk<u32> {
        let mut value: u32 = 0;
        let mut shift: u32 = 0;
        loop {
            let byte = self.u8()?;
            value |= u32::wrapping_shl(u32::from(byte & 0x7f), shift);
            shift += 7;
            if byte < 0x80 {
                return Ok(value);
            }
            if shift > 70 {
                return Err("varint too long");
            }
        }
    }

    /// yrs's `read_var::<u64>`: up to 11 bytes, high bits wrapped.
    fn var_u64(&mut self) -> Walk<u64> {
        let mut value: u64 = 0;
        let mut shift: u32 = 0;
        loop {
            let byte = self.u8()?;
            value |= u64::wrapping_shl(u64::from(byte & 0x7f), shift);
            shift += 7;
            if byte < 0x80 {
                return Ok(value);
            }
            if shift > 70 {
                return Err("varint too long");
            }
        }
    }

    /// yrs's signed varint: a 6-bit first byte, then 7-bit groups. yrs can
    /// panic on an over-long one (shift overflow); refuse those here.
    fn signed_var(&mut self) -> Walk {
        let mut byte = self.u8()?;
        // The shift yrs applies to the next byte; 64 or more panics in yrs.
        let mut shift: u32 = 6;
        while byte & 0x80 != 0 {
            if shift >= 64 {
                return Err("signed varint too long");
            }
            byte = self.u8()?;
            shift += 7;
        }
        Ok(())
    }

    fn u8(&mut self) -> Walk<u8> {
        let byte = *self.buf.get(self.pos).ok_or("unexpected end of update")?;
        self.pos += 1;
        Ok(byte)
    }

    fn skip(&mut self, len: usize) -> Walk {
        if len > self.remaining() {
            return Err("length exceeds input");
        }
        self.pos += len;
        Ok(())
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
}

#[cfg(test)]
mod tests;
