//! How a project's labels look and are picked: a colour and a hotkey per
//! label or option. They live in the project, not in each browser, so
//! every worker of a room sees the same colour for `PER` and presses the
//! same key for it, and a moderator changes them in one place.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::schema::{AnswerSchema, bad_field};

/// One label's colour and hotkey, each optional.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelStyle {
    /// `#rrggbb`: the label's buttons and highlights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<String>,
    /// One printable character that picks the label in the work view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotkey: Option<String>,
}

/// Styles by label name.
pub type LabelStyles = BTreeMap<String, LabelStyle>;

/// Keys the work view already gives a meaning: `1`–`9` pick the label of
/// that position and `?` opens the shortcuts; a hotkey may not take them.
const RESERVED_KEYS: &str = "123456789?";

/// Checks the styles against the schema: only declared labels (which also
/// bounds their count by the schema's), colours `#rrggbb`, hotkeys one
/// printable, non-space character not reserved, distinct without regard
/// to case (Shift does not make `p` and `P` two keys).
pub fn validate_styles(styles: &LabelStyles, schema: &AnswerSchema) -> Result<()> {
    let labels = schema.labels();
    if styles.len() > labels.len() {
        return Err(bad_field(
            "label_styles",
            "label styles are only for the schema's labels or options",
        ));
    }
    let mut taken: HashMap<String, &str> = HashMap::new();
    for (label, style) in styles {
        if !labels.contains(label) {
            return Err(bad_field(
                &format!("label_styles.{label}"),
                &format!("{label:?} is not a label or option of the answer schema"),
            ));
        }
        if let Some(colour) = &style.colour
            && !is_hex_colour(colour)
        {
            return Err(bad_field(
                &format!("label_styles.{label}.colour"),
                &format!("the colour of {label:?} must be #rrggbb (e.g. #ffd8a8)"),
            ));
        }
        let Some(hotkey) = &style.hotkey else {
            continue;
        };
        let field = format!("label_styles.{label}.hotkey");
        let mut chars = hotkey.chars();
        let key = match (chars.next(), chars.next()) {
            (Some(key), None) if !key.is_control() && !key.is_whitespace() => key,
            _ => {
                return Err(bad_field(
                    &field,
                    &format!("the hotkey of {label:?} must be one printable character"),
                ));
            }
        };
        if RESERVED_KEYS.contains(key) {
            return Err(bad_field(
                &field,
                &format!(
                    "{key:?} is already a shortcut (1-9 pick by position, ? shows the shortcuts)"
                ),
            ));
        }
        let folded: String = key.to_lowercase().collect();
        if let Some(other) = taken.insert(folded, label) {
            return Err(bad_field(
                &field,
                &format!("{label:?} and {other:?} have the same hotkey {key:?}"),
            ));
        }
    }
    Ok(())
}

fn is_hex_colour(text: &str) -> bool {
    text.len() == 7
        && text.starts_with('#')
        && text.bytes().skip(1).all(|byte| byte.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    fn schema() -> AnswerSchema {
        AnswerSchema::Spans {
            labels: vec!["PER".into(), "ORG".into(), "LOC".into()],
        }
    }

    fn style(colour: Option<&str>, hotkey: Option<&str>) -> LabelStyle {
        LabelStyle {
            colour: colour.map(Into::into),
            hotkey: hotkey.map(Into::into),
        }
    }

    fn field_of(styles: &[(&str, LabelStyle)], schema: &AnswerSchema) -> Option<String> {
        let styles: LabelStyles = styles
            .iter()
            .map(|(label, style)| ((*label).to_owned(), style.clone()))
            .collect();
        match validate_styles(&styles, schema) {
            Ok(()) => None,
            Err(Error::Field { field, .. }) => Some(field),
            Err(other) => Some(format!("not a field error: {other:?}")),
        }
    }

    #[test]
    fn good_styles_pass() {
        let styles = [
            ("PER", style(Some("#ffd8a8"), Some("p"))),
            ("ORG", style(Some("#A5D8FF"), None)),
            ("LOC", style(None, Some("é"))),
        ];
        assert_eq!(field_of(&styles, &schema()), None);
        assert_eq!(field_of(&[], &schema()), None);
    }

    #[test]
    fn each_fault_names_its_field() {
        let cases: [(&[(&str, LabelStyle)], &str); 8] = [
            (&[("MISC", style(None, Some("m")))], "label_styles.MISC"),
            (
                &[("PER", style(Some("#fff"), None))],
                "label_styles.PER.colour",
            ),
            (
                &[("PER", style(Some("#gggggg"), None))],
                "label_styles.PER.colour",
            ),
            (
                &[("PER", style(Some("ffd8a8a"), None))],
                "label_styles.PER.colour",
            ),
            (
                &[("ORG", style(None, Some("or")))],
                "label_styles.ORG.hotkey",
            ),
            (
                &[("ORG", style(None, Some(" ")))],
                "label_styles.ORG.hotkey",
            ),
            (
                &[("LOC", style(None, Some("3")))],
                "label_styles.LOC.hotkey",
            ),
            (
                &[
                    ("LOC", style(None, Some("P"))),
                    ("PER", style(None, Some("p"))),
                ],
                "label_styles.PER.hotkey",
            ),
        ];
        for (styles, field) in cases {
            assert_eq!(
                field_of(styles, &schema()).as_deref(),
                Some(field),
                "{styles:?}"
            );
        }
    }

    #[test]
    fn schemas_without_labels_take_no_styles() {
        let text = AnswerSchema::FreeText { max_chars: None };
        assert_eq!(
            field_of(&[("PER", style(Some("#ffd8a8"), None))], &text).as_deref(),
            Some("label_styles")
        );
        assert_eq!(field_of(&[], &text), None);
    }
}
