//! Per-pod opt-in/opt-out through the `k8s.kuma.io/spire-support` label or
//! annotation, on top of the server-wide default.
//!
//! Matching is exact and case-sensitive (no trimming), like upstream Kuma:
//! `True` or ` yes` are rejected rather than guessed at, because a silently
//! misread switch would either leak the socket or break workload identity.

use super::denial::Denial;

/// A parsed switch value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Switch {
    On,
    Off,
}

/// Words accepted as "on" and "off"; exact lowercase only.
const ON_WORDS: [&str; 3] = ["true", "yes", "enabled"];
const OFF_WORDS: [&str; 3] = ["false", "no", "disabled"];

/// Parses one value; `None` means "not an accepted word".
pub(super) fn parse_switch(value: &str) -> Option<Switch> {
    if ON_WORDS.contains(&value) {
        Some(Switch::On)
    } else if OFF_WORDS.contains(&value) {
        Some(Switch::Off)
    } else {
        None
    }
}

/// The outcome of combining the global default with the pod's own switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Effective {
    On,
    /// Global default off and the pod did not opt in.
    OffByDefault,
    /// The pod explicitly said off.
    OptedOut,
}

fn parse_source(origin: &'static str, value: Option<&str>) -> Result<Option<Switch>, Denial> {
    match value {
        None => Ok(None),
        Some(v) => parse_switch(v)
            .map(Some)
            .ok_or_else(|| Denial::InvalidValue {
                origin,
                value: v.to_string(),
            }),
    }
}

/// Resolves label + annotation + default. An explicit pod setting wins over the
/// default; label and annotation must agree when both are present.
pub(super) fn resolve(
    label: Option<&str>,
    annotation: Option<&str>,
    enabled_by_default: bool,
) -> Result<Effective, Denial> {
    let from_label = parse_source("label", label)?;
    let from_annotation = parse_source("annotation", annotation)?;
    let explicit = match (from_label, from_annotation) {
        (Some(l), Some(a)) if l != a => {
            return Err(Denial::Disagree {
                label: label.unwrap_or_default().to_string(),
                annotation: annotation.unwrap_or_default().to_string(),
            })
        }
        (l, a) => l.or(a),
    };
    Ok(match explicit {
        Some(Switch::On) => Effective::On,
        Some(Switch::Off) => Effective::OptedOut,
        None if enabled_by_default => Effective::On,
        None => Effective::OffByDefault,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_words_table() {
        let table: &[(&str, Option<Switch>)] = &[
            ("true", Some(Switch::On)),
            ("yes", Some(Switch::On)),
            ("enabled", Some(Switch::On)),
            ("false", Some(Switch::Off)),
            ("no", Some(Switch::Off)),
            ("disabled", Some(Switch::Off)),
            // Exact match only: case, whitespace and near-misses are rejected.
            ("True", None),
            ("TRUE", None),
            ("Yes", None),
            ("Enabled", None),
            ("FALSE", None),
            ("No", None),
            (" true", None),
            ("true ", None),
            ("", None),
            ("1", None),
            ("0", None),
            ("on", None),
            ("off", None),
            ("enable", None),
            ("y", None),
            ("truee", None),
        ];
        for (input, want) in table {
            assert_eq!(parse_switch(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn resolve_table() {
        use Effective::*;
        let ok: &[(Option<&str>, Option<&str>, bool, Effective)] = &[
            (None, None, false, OffByDefault),
            (None, None, true, On),
            (Some("true"), None, false, On),
            (None, Some("yes"), false, On),
            (Some("false"), None, true, OptedOut),
            (None, Some("disabled"), true, OptedOut),
            (Some("no"), None, false, OptedOut),
            // Agreeing, even with different words.
            (Some("true"), Some("enabled"), false, On),
            (Some("no"), Some("false"), true, OptedOut),
        ];
        for (label, annotation, default, want) in ok {
            assert_eq!(
                resolve(*label, *annotation, *default),
                Ok(*want),
                "{label:?} {annotation:?} {default}"
            );
        }
    }

    #[test]
    fn resolve_denials() {
        assert!(matches!(
            resolve(Some("true"), Some("false"), true),
            Err(Denial::Disagree { .. })
        ));
        assert!(matches!(
            resolve(Some("disabled"), Some("yes"), false),
            Err(Denial::Disagree { .. })
        ));
        assert_eq!(
            resolve(Some("maybe"), None, true),
            Err(Denial::InvalidValue {
                origin: "label",
                value: "maybe".into()
            })
        );
        assert_eq!(
            resolve(None, Some("On"), false),
            Err(Denial::InvalidValue {
                origin: "annotation",
                value: "On".into()
            })
        );
        // An invalid value is reported even when the other source is valid.
        assert!(matches!(
            resolve(Some("true"), Some("bogus"), false),
            Err(Denial::InvalidValue {
                origin: "annotation",
                ..
            })
        ));
    }
}
