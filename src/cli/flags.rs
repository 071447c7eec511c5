//! Flag values read the way Kuma reads its environment, so a setting shared with Kuma's own
//! configuration means the same thing to both.

use std::ffi::OsStr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

/// Go's `strconv.ParseBool` spellings, which Kuma's configuration loader uses for booleans.
const TRUE_SPELLINGS: [&str; 6] = ["1", "t", "T", "TRUE", "true", "True"];
const FALSE_SPELLINGS: [&str; 6] = ["0", "f", "F", "FALSE", "false", "False"];

/// A boolean as Go's `strconv.ParseBool` reads it; `None` for anything else.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    if TRUE_SPELLINGS.contains(&text) {
        Some(true)
    } else if FALSE_SPELLINGS.contains(&text) {
        Some(false)
    } else {
        None
    }
}

/// clap's parser for boolean flags with an environment twin: Go's spellings, and an error that
/// names the variable, the flag, the value and every accepted spelling. A value Kuma accepts
/// must never stop the webhook from starting, since every pod webhook fails closed.
#[derive(Debug, Clone, Copy)]
pub struct GoBool;

impl TypedValueParser for GoBool {
    type Value = bool;

    fn parse_ref(
        &self,
        command: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<bool, clap::Error> {
        let text = value.to_string_lossy();
        parse_go_bool(&text).ok_or_else(|| {
            let setting = arg.map_or_else(|| "a boolean setting".to_owned(), describe);
            let accepted = TRUE_SPELLINGS
                .iter()
                .chain(&FALSE_SPELLINGS)
                .copied()
                .collect::<Vec<_>>()
                .join(", ");
            clap::Error::raw(
                ErrorKind::InvalidValue,
                format!(
                    "invalid value '{text}' for {setting}: a boolean is one of {accepted} (Go's strconv.ParseBool, as Kuma reads it)\n"
                ),
            )
            .with_cmd(command)
        })
    }
}

/// `VARIABLE (--flag)`, or just the flag when it has no environment twin.
fn describe(arg: &clap::Arg) -> String {
    let flag = format!(
        "--{}",
        arg.get_long().unwrap_or_else(|| arg.get_id().as_str())
    );
    match arg.get_env() {
        Some(variable) => format!("{} ({flag})", variable.to_string_lossy()),
        None => flag,
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Probe {
        #[arg(long, env = "KIW_FLAGS_TEST_PROBE", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", value_parser = GoBool)]
        probe: bool,
    }

    #[test]
    fn go_spellings() {
        for (spelling, want) in TRUE_SPELLINGS
            .iter()
            .map(|s| (*s, true))
            .chain(FALSE_SPELLINGS.iter().map(|s| (*s, false)))
        {
            assert_eq!(parse_go_bool(spelling), Some(want), "{spelling}");
            let parsed = Probe::try_parse_from(["probe", "--probe", spelling]).unwrap();
            assert_eq!(parsed.probe, want, "{spelling}");
        }
        for other in [
            "", "yes", "no", "on", "off", "tRUE", "FaLsE", "2", " true", "enabled",
        ] {
            assert_eq!(parse_go_bool(other), None, "{other:?}");
        }
        assert!(Probe::try_parse_from(["probe", "--probe"]).unwrap().probe);
        assert!(!Probe::try_parse_from(["probe"]).unwrap().probe);
    }

    #[test]
    fn a_refused_value_names_the_variable_the_flag_and_the_spellings() {
        let error = Probe::try_parse_from(["probe", "--probe", "yes"]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidValue);
        assert_eq!(
            error.to_string(),
            "error: invalid value 'yes' for KIW_FLAGS_TEST_PROBE (--probe): a boolean is one of 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False (Go's strconv.ParseBool, as Kuma reads it)\n"
        );
    }
}
