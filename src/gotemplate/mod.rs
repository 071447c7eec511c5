//! Go `text/template`, as upstream Kuma uses it for SPIFFE ID templates: a parser whose verdicts
//! and messages are Go's (pinned by a differential test against Go itself,
//! `tests/it/gotemplate_oracle.rs`), an executor for the data Kuma passes (a struct of strings and
//! the `label` function), and static questions admission asks of a template.

mod analysis;
mod exec;
mod fmt;
mod ftoa;
mod funcs;
mod lex;
mod limits;
mod number;
mod parse;
mod quote;
mod sink;
mod value;

pub use analysis::Analysis;
pub use limits::{Budget, MAX_RENDER_BYTES, MAX_STEPS};
/// Go's `strconv.Quote` (`%q` of a string), as upstream's validators quote offending values.
pub use quote::go_quote;

use std::sync::Arc;

use parse::TreeSet;

/// A parse failure; the text is Go's `err.Error()`, e.g.
/// `template: :1: function "invalid" not defined`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// An execution failure, in Go's form:
/// `template: :1:3: executing "" at <label "x">: error calling label: label x not found`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExecError(pub String);

/// A parsed template (the main one and any it defines). Cloning shares the parse: the cluster
/// state keeps one per distinct template text and hands it to every decision that reads it.
#[derive(Debug, Clone)]
pub struct Template {
    parsed: Arc<Parsed>,
}

#[derive(Debug)]
struct Parsed {
    source: String,
    trees: TreeSet,
    analysis: Analysis,
}

/// What a template executes against: Go's `struct { A string; B string }` with these exported
/// string fields, and `label` reading `labels`.
pub type Data<'a> = value::DataView<'a>;

/// Parses like `template.New("").Funcs(funcs).Parse(src)`; `funcs` names the user functions.
pub fn parse(src: &str, funcs: &[&str]) -> Result<Template, ParseError> {
    let trees = parse::parse(src, funcs).map_err(ParseError)?;
    let analysis = Analysis::of(&trees, src, funcs);
    Ok(Template {
        parsed: Arc::new(Parsed {
            source: src.to_owned(),
            trees,
            analysis,
        }),
    })
}

impl Template {
    /// Executes within the limits of one execution ([`MAX_STEPS`], [`MAX_RENDER_BYTES`]).
    pub fn execute(&self, data: &Data) -> Result<String, ExecError> {
        self.execute_within(data, &mut Budget::new(MAX_STEPS))
    }

    /// Executes, taking the steps from `budget`, which a caller shares between executions.
    pub fn execute_within(&self, data: &Data, budget: &mut Budget) -> Result<String, ExecError> {
        exec::execute(&self.parsed.trees, &self.parsed.source, data, budget).map_err(ExecError)
    }

    /// What admission asks of this template, worked out once when it was parsed.
    pub fn analysis(&self) -> &Analysis {
        &self.parsed.analysis
    }

    /// [`Analysis::root_fields`], as an owned copy.
    pub fn root_fields(&self) -> Vec<(String, usize)> {
        self.parsed.analysis.root_fields.clone()
    }

    /// [`Analysis::label_keys`], as an owned copy.
    pub fn label_keys(&self) -> Vec<String> {
        self.parsed.analysis.label_keys.clone()
    }

    /// [`Analysis::literal_texts`], as an owned copy.
    pub fn literal_texts(&self) -> Vec<String> {
        self.parsed.analysis.literal_texts.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Runs `f` on a thread with half the stack of a tokio worker (2 MiB), so a recursion that
    /// is not bounded shows up as a crash here rather than in production.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    /// Executes `template` with no fields and no labels.
    fn execute_empty(template: &Template) -> Result<String, ExecError> {
        template.execute(&Data {
            fields: &[],
            labels: &BTreeMap::new(),
        })
    }

    /// Hostile nesting is refused with a message instead of exhausting the stack, on a thread
    /// with half the stack of a tokio worker (2 MiB).
    #[test]
    fn deep_nesting_is_refused_not_crashed() {
        let results = on_small_stack(|| {
            let parens = format!(
                "{{{{{}.Mesh{}}}}}",
                "(".repeat(100_000),
                ")".repeat(100_000)
            );
            let ifs = format!("{}x{}", "{{if 1}}".repeat(50_000), "{{end}}".repeat(50_000));
            let blocks = "{{block \"b\" .}}".repeat(50_000);
            [parens, ifs, blocks].map(|src| parse(&src, &["label"]).map(|_| ()))
        });
        assert!(results[0]
            .as_ref()
            .unwrap_err()
            .0
            .ends_with("max expression depth exceeded"));
        assert!(results[1]
            .as_ref()
            .unwrap_err()
            .0
            .ends_with("max nesting depth exceeded"));
        assert!(results[2]
            .as_ref()
            .unwrap_err()
            .0
            .ends_with("max nesting depth exceeded"));
    }

    #[test]
    fn recursion_through_nested_templates_is_bounded() {
        let err = on_small_stack(|| {
            let nested = format!(
                "{}{{{{template \"r\" .}}}}{}",
                "{{if 1}}".repeat(90),
                "{{end}}".repeat(90)
            );
            let src = format!("{{{{define \"r\"}}}}{nested}{{{{end}}}}{{{{template \"r\" .}}}}");
            let template = parse(&src, &[]).unwrap();
            execute_empty(&template).map(|_| ())
        })
        .unwrap_err();
        assert!(err.0.contains("nested deeper than"), "{err}");
    }

    #[test]
    fn recursive_templates_stop_at_the_depth_limit() {
        let template = parse(
            "{{define \"r\"}}{{template \"r\" .}}{{end}}{{template \"r\" .}}",
            &[],
        )
        .unwrap();
        let err = execute_empty(&template).unwrap_err();
        assert!(
            err.0.contains("exceeded maximum template depth (100)"),
            "{err}"
        );
    }

    #[test]
    fn runaway_loops_stop() {
        let template = parse("{{range 1000000000}}x{{end}}", &[]).unwrap();
        let err = execute_empty(&template).unwrap_err();
        assert!(err.0.contains("execution stopped"), "{err}");
    }

    /// The hostile templates of issue 11: each is an error naming the limit, not an allocation.
    #[test]
    fn hostile_templates_stop_at_the_budget() {
        let doubled = format!(
            "{{{{ $x := \"aaaa\" }}}}{}",
            "{{ $x = print $x $x }}".repeat(22)
        );
        let cases = [
            ("{{ printf \"%9999999d\" 1 }}", "rendering needs more than"),
            (
                "{{ printf \"%*d\" 1000000 1 }}",
                "rendering needs more than",
            ),
            (
                "{{ printf \"%.1000000f\" 1.5 }}",
                "rendering needs more than",
            ),
            ("{{ printf \"%.70000f\" 1.5 }}", "rendering needs more than"),
            ("{{ printf \"%3000000d\" 1 }}", "rendering needs more than"),
            (doubled.as_str(), "rendering needs more than"),
            (
                "{{ range 1000000000 }}{{ end }}",
                "execution stopped after 10000 steps",
            ),
        ];
        for (src, want) in cases {
            let template = parse(src, &["label"]).unwrap();
            let err = execute_empty(&template).unwrap_err();
            assert!(err.0.contains(want), "{src}: {err}");
        }
        // Go's own limits are no error: a number that grows past a million is no number to Go.
        for (src, want) in [
            (
                "{{ printf \"%1000000000000d\" 1 }}",
                "%!(NOVERB)%!(EXTRA int=1)",
            ),
            (
                "{{ printf \"%300000000d\" 1 }}",
                "%!(NOVERB)%!(EXTRA int=1)",
            ),
            (
                "{{ printf \"%.100000000f\" 1.5 }}",
                "%!(NOVERB)%!(EXTRA float64=1.5)",
            ),
        ] {
            let template = parse(src, &["label"]).unwrap();
            assert_eq!(execute_empty(&template).unwrap(), want, "{src}");
        }
    }

    /// Names megabytes long cost steps in proportion, so no step can be made expensive.
    #[test]
    fn long_names_cost_steps() {
        let variable = format!("$v{}", "x".repeat(1 << 20));
        let src = format!(
            "{{{{ {variable} := 1 }}}}{{{{ range 1000 }}}}{{{{ {variable} }}}}{{{{ end }}}}"
        );
        let template = parse(&src, &["label"]).unwrap();
        let started = std::time::Instant::now();
        let err = execute_empty(&template).unwrap_err();
        assert!(err.0.contains("execution stopped"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let name = "t".repeat(1 << 20);
        let src = format!(
            "{{{{ define \"{name}\" }}}}{{{{ end }}}}{{{{ range 1000 }}}}{{{{ template \"{name}\" }}}}{{{{ end }}}}"
        );
        let template = parse(&src, &["label"]).unwrap();
        let err = execute_empty(&template).unwrap_err();
        assert!(err.0.contains("execution stopped"), "{err}");
    }

    /// A budget shared between executions runs out across them.
    #[test]
    fn a_shared_budget_spans_executions() {
        let template = parse("{{ range 30 }}x{{ end }}", &[]).unwrap();
        let data = Data {
            fields: &[],
            labels: &BTreeMap::new(),
        };
        let mut budget = Budget::new(70);
        assert_eq!(
            template.execute_within(&data, &mut budget).unwrap().len(),
            30
        );
        assert!(budget.remaining() < 40, "{}", budget.remaining());
        let err = template.execute_within(&data, &mut budget).unwrap_err();
        assert!(err.0.contains("execution stopped"), "{err}");
        assert_eq!(budget.remaining(), 0);
    }

    #[test]
    fn analysis_finds_root_fields_labels_and_texts() {
        let template = parse(
            "/a/{{ .Namespace }}{{ with .Workload }}{{ .Inner }}{{ end }}{{ $.Mesh }}{{ label \"team\" }}/b",
            &["label"],
        )
        .unwrap();
        let fields: Vec<String> = template.root_fields().into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["Namespace", "Workload", "Mesh"]);
        assert_eq!(template.label_keys(), ["team"]);
        assert_eq!(template.literal_texts(), ["/a/", "/b"]);
    }
}
