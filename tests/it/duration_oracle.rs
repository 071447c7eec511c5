//! Differential test of duration parsing against Go's own `time.ParseDuration`.
//!
//! Upstream Kuma decodes `certificateParameters.expiry` and `spire.agent.timeout` with it and
//! passes its error text through, so ours must be Go's, value and message. A deterministic corpus
//! of hand-picked and generated texts goes through tests/oracle/duration/main.go (built with the
//! same toolchain as the template oracle) and through `duration::parse_duration`.

use serde_json::{json, Value};

use kuma_identity_webhook::validate::duration::parse_duration;

use crate::support::go_oracle;
use crate::support::rng;
use rng::Rng;

const HAND_WRITTEN: &[&str] = &[
    "",
    "0",
    "-0",
    "+0",
    "00",
    "0s",
    "-",
    "+",
    "1",
    "10",
    "1d",
    "1w",
    "1y",
    "x",
    "s",
    ".",
    ".s",
    "-.s",
    "1.",
    "1.s",
    ".5s",
    "5.s",
    "1..5s",
    "1.5.5s",
    "1s2",
    "1s.",
    "1s 2s",
    " 1s",
    "1s ",
    "1S",
    "1Ms",
    "1mS",
    "1h30m",
    "1h30m45s",
    "1h1h",
    "300ms",
    "1.5h",
    "-1.5h",
    "+5us",
    "3\u{b5}s",
    "3\u{3bc}s",
    "3\u{b5}",
    "3u",
    "1\u{e9}",
    "1\u{fffd}",
    "1\u{fffd}s",
    "1\"",
    "1\\",
    "1\t",
    "1\n",
    "1\u{7f}",
    "1\u{0}",
    "1\u{1f600}",
    "9223372036854775807ns",
    "9223372036854775808ns",
    "-9223372036854775808ns",
    "-9223372036854775809ns",
    "18446744073709551616ns",
    "2562047h",
    "2562048h",
    "2562047h47m16.854775807s",
    "2562047h47m16.854775808s",
    "-2562047h47m16.854775808s",
    "0.3333333333333333333h",
    "0.9999999999999999999999999999h",
    "1.00000000000000000000001s",
    "9223372036.854775807s",
    "9223372036.854775808s",
    "0.000000001ns",
    "1e3s",
    "0x10s",
    "1_000s",
    // Go's uint64 sum wraps: these parse (to 0 and -1).
    "9223372036854775808ns9223372036854775808ns",
    "-9223372036854775808ns9223372036854775808ns1ns",
];

/// Pieces generated texts are made of: digits, dots, signs, every unit, near-units, overflowing
/// numbers, and characters Go's quoting escapes.
const PIECES: &[&str] = &[
    "0",
    "1",
    "7",
    "42",
    "000",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999",
    ".",
    ".5",
    "5.",
    "-",
    "+",
    "ns",
    "us",
    "\u{b5}s",
    "\u{3bc}s",
    "ms",
    "s",
    "m",
    "h",
    "d",
    "S",
    "H",
    "\u{b5}",
    "x",
    " ",
    "\"",
    "\\",
    "\u{e9}",
    "\t",
    "\u{fffd}",
];

/// Well-formed durations: components with random numbers, fractions and units.
const UNITS: &[&str] = &["ns", "us", "\u{b5}s", "\u{3bc}s", "ms", "s", "m", "h"];

fn corpus() -> Vec<String> {
    let mut texts: Vec<String> = HAND_WRITTEN.iter().map(|s| (*s).to_owned()).collect();
    let mut rng = Rng(0x6475_7261_7469_6f6e);
    for _ in 0..3000 {
        let pieces = 1 + rng.below(6);
        texts.push((0..pieces).map(|_| rng.pick(PIECES)).collect());
    }
    for _ in 0..3000 {
        let mut text = rng.pick(&["", "", "-", "+"]).to_owned();
        for _ in 0..1 + rng.below(3) {
            text.push_str(&(rng.next() % 10u64.pow(1 + rng.below(12) as u32)).to_string());
            if rng.below(2) == 0 {
                text.push('.');
                let digits = rng.below(22);
                text.extend((0..digits).map(|_| char::from(b'0' + rng.below(10) as u8)));
            }
            text.push_str(rng.pick(UNITS));
        }
        texts.push(text);
    }
    texts
}

fn run_oracle(texts: &[String]) -> Vec<Value> {
    let binary = go_oracle::build("duration-oracle", "tests/oracle/duration/main.go");
    go_oracle::exchange(&binary, texts.iter().map(|text| json!(text)))
}

#[test]
fn durations_parse_and_fail_exactly_as_go_does() {
    let texts = corpus();
    let verdicts = run_oracle(&texts);
    assert_eq!(verdicts.len(), texts.len());
    let mut mismatches = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    for (text, go) in texts.iter().zip(&verdicts) {
        let ours = match parse_duration(text) {
            Ok(nanos) => {
                accepted += 1;
                json!({"ok": true, "nanos": nanos, "err": ""})
            }
            Err(e) => {
                refused += 1;
                json!({"ok": false, "nanos": 0, "err": e.to_string()})
            }
        };
        if &ours != go {
            mismatches.push(format!("{text:?}: go {go}, ours {ours}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} differ:\n{}",
        mismatches.len(),
        texts.len(),
        mismatches.join("\n")
    );
    // Both outcomes must be well represented, or the corpus tests little.
    assert!(
        accepted > 2000 && refused > 2000,
        "{accepted} accepted, {refused} refused"
    );
}
