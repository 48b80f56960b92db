//! The smallest edit turning one text into another, in the unit the doc
//! counts offsets in, so `set_text` leaves concurrent edits elsewhere alone.

use yrs::OffsetKind;

/// Length of `text` in the unit the doc counts offsets in.
pub(crate) fn text_len(text: &str, kind: OffsetKind) -> u32 {
    let len = match kind {
        OffsetKind::Bytes => text.len(),
        OffsetKind::Utf16 => text.encode_utf16().count(),
    };
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// One replacement turning a text into another, in the doc's offset unit.
pub(crate) struct TextEdit<'v> {
    /// Where the replacement starts.
    pub start: u32,
    /// How much it removes.
    pub remove: u32,
    /// What it inserts.
    pub insert: &'v str,
}

/// The smallest single replacement turning `current` into `wanted`.
pub(crate) fn minimal_edit<'v>(
    current: &str,
    wanted: &'v str,
    kind: OffsetKind,
) -> Option<TextEdit<'v>> {
    let prefix = common_prefix(current, wanted);
    let suffix = common_suffix(current.get(prefix..)?, wanted.get(prefix..)?);
    let removed = current.get(prefix..current.len() - suffix)?;
    Some(TextEdit {
        start: text_len(current.get(..prefix)?, kind),
        remove: text_len(removed, kind),
        insert: wanted.get(prefix..wanted.len() - suffix)?,
    })
}

/// Byte length of the longest common prefix, on a char boundary.
fn common_prefix(left: &str, right: &str) -> usize {
    left.char_indices()
        .zip(right.chars())
        .find(|((_, a), b)| a != b)
        .map_or_else(|| left.len().min(right.len()), |((index, _), _)| index)
}

/// Byte length of the longest common suffix, on a char boundary.
fn common_suffix(left: &str, right: &str) -> usize {
    left.chars()
        .rev()
        .zip(right.chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum()
}
