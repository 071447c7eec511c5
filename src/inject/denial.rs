//! Why a pod is refused. Every variant renders to a message a user can act on,
//! because it ends up verbatim in `kubectl apply` output.

use super::keys::SPIRE_SUPPORT_KEY;

/// Longest user-supplied value echoed back in a message; annotations can be
/// huge and the message must stay readable.
const MAX_ECHO: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum Denial {
    /// A field the webhook has to read or write has the wrong JSON type.
    #[error("{path} must be {expected}, got {got}")]
    WrongType {
        path: String,
        expected: &'static str,
        got: &'static str,
    },
    /// The opt-in label or annotation holds a word we do not understand.
    #[error(
        "{origin} {key} has invalid value {value:?}; accepted values (lowercase): \
         true, yes, enabled, false, no, disabled",
        key = SPIRE_SUPPORT_KEY,
        value = echo(value)
    )]
    InvalidValue { origin: &'static str, value: String },
    /// Label and annotation are both set and one says on, the other off.
    #[error(
        "label {key}={label:?} and annotation {key}={annotation:?} disagree; \
         make them equal or remove one",
        key = SPIRE_SUPPORT_KEY,
        label = echo(label),
        annotation = echo(annotation)
    )]
    Disagree { label: String, annotation: String },
    /// More containers than an injection plans for: a patch for each of tens of thousands
    /// would cost far more memory than the pod itself.
    #[error(
        "pod has {count} containers and init containers; the SPIRE socket is injected into \
         pods of at most {max}"
    )]
    TooManyContainers { count: usize, max: usize },
    /// Applying our own patch failed; only reachable through `apply`.
    #[error("internal error applying the SPIRE socket patch: {0}")]
    Internal(String),
}

/// Cuts a user-supplied value so messages stay bounded.
pub(super) fn echo(value: &str) -> String {
    truncate(value, MAX_ECHO)
}

/// Truncates to at most `max` characters (not bytes, so multi-byte input
/// never splits a code point), marking the cut with an ellipsis.
pub(super) fn truncate(value: &str, max: usize) -> String {
    if value.chars().count() <= max {
        return value.to_string();
    }
    let kept: String = value.chars().take(max.saturating_sub(1)).collect();
    format!("{kept}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_counts_chars_not_bytes() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "ab…");
        assert_eq!(truncate("ééééé", 3).chars().count(), 3);
    }

    #[test]
    fn invalid_value_message_names_key_value_and_accepted_words() {
        let msg = Denial::InvalidValue {
            origin: "label",
            value: "maybe".into(),
        }
        .to_string();
        assert!(msg.contains(SPIRE_SUPPORT_KEY), "{msg}");
        assert!(msg.contains("\"maybe\""), "{msg}");
        for word in ["true", "yes", "enabled", "false", "no", "disabled"] {
            assert!(msg.contains(word), "{msg}");
        }
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let msg = Denial::InvalidValue {
            origin: "annotation",
            value: "x".repeat(10_000),
        }
        .to_string();
        assert!(msg.len() < 300, "{}", msg.len());
    }
}
