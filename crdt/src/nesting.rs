//! Bounds on how deeply shared types (Y.Map, Y.Array, Y.Text, XML) nest.
//!
//! yrs deletes and garbage-collects a shared type by recursing into the
//! types inside it, one stack frame chain per level. A chain of ~10 000
//! nested maps (an update of ~80 KB) overflows a 2 MiB thread stack when it
//! is deleted, and a stack overflow aborts the process. Integration and
//! encoding do not recurse, so the danger is only a deep tree that is, or
//! later gets, deleted. Two checks keep every deletion shallow:
//!
//! - [`longest_type_chain`] bounds the new nesting an update can bring, from
//!   its own structure, before yrs sees it (a deletion inside the same apply
//!   then recurses at most through the old tree plus this chain);
//! - [`deeper_than`] walks the document after an apply that may have added
//!   types and reports a tree deeper than [`MAX_TYPE_DEPTH`], so the caller
//!   can drop the document before anything deletes it.
//!
//! Annotation documents nest two levels (a root array of maps).

use yrs::branch::{Branch, BranchPtr};
use yrs::types::text::YChange;
use yrs::{Map, MapRef, Out, ReadTxn, Text, TextRef};

/// Deepest nesting of shared types a document may hold, counting the root
/// type as 1. Also the most new nesting accepted in flight (one update plus
/// what waits in pending), so a deletion recurses at most twice this deep.
pub const MAX_TYPE_DEPTH: usize = 64;

/// An item id: client and clock.
pub(crate) type ItemId = (u64, u32);

/// Where an item's parent comes from, as written in the update.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ParentRef {
    /// A root type, named in the update.
    Root,
    /// The item with this id (a shared type, if the update is valid).
    Item(ItemId),
    /// The same parent as the item at the left origin, else the right one.
    Origins(Option<ItemId>, Option<ItemId>),
}

/// One item block of an update, as far as nesting is concerned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ItemBlock {
    /// The client that created the item.
    pub client: u64,
    /// Its first clock.
    pub start: u32,
    /// How many clocks it spans (UTF-16 units for text).
    pub len: u32,
    /// Whether the item is a shared type (content kind 7).
    pub is_type: bool,
    /// Where its parent comes from.
    pub parent: ParentRef,
}

/// The longest chain of shared types nested inside each other among
/// `blocks` (0 if there are none). Parents outside `blocks` count as the
/// start of a chain; an inherited parent counts the deeper of both origins.
pub(crate) fn longest_type_chain(blocks: &[ItemBlock]) -> usize {
    if !blocks.iter().any(|block| block.is_type) {
        return 0;
    }
    let mut by_id: Vec<usize> = (0..blocks.len()).collect();
    by_id.sort_unstable_by_key(|&index| blocks.get(index).map(|block| (block.client, block.start)));
    let lookup = |(client, clock): ItemId| -> Option<usize> {
        let position = by_id.partition_point(|&index| {
            blocks
                .get(index)
                .is_some_and(|block| (block.client, block.start) <= (client, clock))
        });
        let index = *by_id.get(position.checked_sub(1)?)?;
        let block = blocks.get(index)?;
        let inside = clock
            .checked_sub(block.start)
            .is_some_and(|offset| offset < block.len);
        (block.client == client && inside).then_some(index)
    };
    // reach[i]: depth of the deepest in-update type enclosing block i.
    let mut reach: Vec<Visit> = vec![Visit::New; blocks.len()];
    let dependencies = |index: usize| -> [Option<(usize, bool)>; 2] {
        // (block, whether it is the parent itself rather than a sibling)
        match blocks.get(index).map(|block| block.parent) {
            Some(ParentRef::Item(id)) => [lookup(id).map(|parent| (parent, true)), None],
            Some(ParentRef::Origins(left, right)) => [
                left.and_then(lookup).map(|sibling| (sibling, false)),
                right.and_then(lookup).map(|sibling| (sibling, false)),
            ],
            Some(ParentRef::Root) | None => [None, None],
        }
    };
    let mut longest = 0;
    for start in 0..blocks.len() {
        let mut stack = vec![start];
        while let Some(&index) = stack.last() {
            match reach.get(index).copied() {
                Some(Visit::New) => {
                    set(&mut reach, index, Visit::Open);
                    for (dependency, _) in dependencies(index).into_iter().flatten() {
                        if matches!(reach.get(dependency), Some(Visit::New)) {
                            stack.push(dependency);
                        }
                    }
                }
                Some(Visit::Open) => {
                    let mut depth = 0;
                    for (dependency, is_parent) in dependencies(index).into_iter().flatten() {
                        // An open dependency is on the current path: a cycle,
                        // which yrs can never integrate. It adds nothing.
                        let Some(Visit::Done(enclosing)) = reach.get(dependency).copied() else {
                            continue;
                        };
                        let is_type = blocks.get(dependency).is_some_and(|block| block.is_type);
                        depth = depth.max(if is_parent && is_type {
                            enclosing + 1
                        } else {
                            enclosing
                        });
                    }
                    set(&mut reach, index, Visit::Done(depth));
                    if blocks.get(index).is_some_and(|block| block.is_type) {
                        longest = longest.max(depth + 1);
                    }
                    stack.pop();
                }
                Some(Visit::Done(_)) | None => {
                    stack.pop();
                }
            }
        }
    }
    longest
}

/// Progress of the depth-first walk over one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    Open,
    Done(usize),
}

fn set(reach: &mut [Visit], index: usize, visit: Visit) {
    if let Some(slot) = reach.get_mut(index) {
        *slot = visit;
    }
}

/// Whether any live shared type in the document is nested deeper than
/// `limit` levels (root types are level 1). Walks with an explicit stack,
/// so it is safe on any depth; stops at the first level past `limit`.
pub(crate) fn deeper_than<T: ReadTxn>(txn: &T, limit: usize) -> bool {
    let mut stack: Vec<(BranchPtr, usize)> = txn
        .root_refs()
        .filter_map(|(_, root)| branch_of(&root))
        .map(|root| (root, 1))
        .collect();
    while let Some((branch, depth)) = stack.pop() {
        if depth > limit {
            return true;
        }
        // Every branch is read both as a map and as a sequence: peers may
        // put either kind of child in a type of any declared kind.
        let map = MapRef::from(branch);
        for (_, value) in map.iter(txn) {
            if let Some(child) = branch_of(&value) {
                stack.push((child, depth + 1));
            }
        }
        // `diff` walks the item list directly and yields embedded types;
        // unlike the array iterator it cannot loop on text content.
        let sequence = TextRef::from(branch);
        for chunk in sequence.diff(txn, YChange::identity) {
            if let Some(child) = branch_of(&chunk.insert) {
                stack.push((child, depth + 1));
            }
        }
    }
    false
}

/// The branch behind a shared-type value (subdocuments are separate docs).
fn branch_of(value: &Out) -> Option<BranchPtr> {
    let branch: &Branch = match value {
        Out::YText(text) => text.as_ref(),
        Out::YArray(array) => array.as_ref(),
        Out::YMap(map) => map.as_ref(),
        Out::YXmlElement(element) => element.as_ref(),
        Out::YXmlFragment(fragment) => fragment.as_ref(),
        Out::YXmlText(text) => text.as_ref(),
        Out::UndefinedRef(branch) => return Some(*branch),
        _ => return None,
    };
    Some(BranchPtr::from(branch))
}

#[cfg(test)]
mod tests;
