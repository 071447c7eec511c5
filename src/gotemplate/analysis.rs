//! Static questions admission asks of a parsed template, answered once when it is parsed: the
//! cluster state keeps one parse per distinct template text, so every review that reads the
//! template shares the answers instead of walking the tree again.

use super::parse::{Arg, Node, Pipe, TreeSet};

/// What a template reads and writes regardless of its data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Analysis {
    /// Field names read from the root data: `.X` where dot is still the root (top level, in
    /// `if`/`else` and `range` else branches; not inside `with` or a `range` body, where dot
    /// changes) and `$.X` anywhere, with the 1-based line. Templates called with
    /// `{{template}}` are not followed.
    pub root_fields: Vec<(String, usize)>,
    /// Literal string arguments of every `label` call, in source order.
    pub label_keys: Vec<String>,
    /// Every text node of the main template (trim markers applied), in source order.
    pub literal_texts: Vec<String>,
    /// The user functions whose names the source spells anywhere. Only these can be called:
    /// a function is reached by its name as written, so one the source never spells is never
    /// called, however the template runs.
    pub spelled_functions: Vec<String>,
}

impl Analysis {
    /// Analyses `trees`, parsed from `source` with the user functions `funcs`.
    pub fn of(trees: &TreeSet, source: &str, funcs: &[&str]) -> Self {
        let main = trees.get("").map_or(&[][..], Vec::as_slice);
        Self {
            root_fields: root_fields(main, source),
            label_keys: label_keys(trees),
            literal_texts: literal_texts(main),
            spelled_functions: funcs
                .iter()
                .filter(|name| source.contains(*name))
                .map(|name| (*name).to_owned())
                .collect(),
        }
    }

    /// Whether the template may call the user function `name` (see
    /// [`spelled_functions`](Self::spelled_functions)); `false` means it never does.
    pub fn may_call(&self, name: &str) -> bool {
        self.spelled_functions.iter().any(|spelled| spelled == name)
    }
}

fn root_fields(main: &[Node], source: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut visit = |arg: &Arg, dot_is_root: bool| {
        let name = match arg {
            Arg::Field(_, names) if dot_is_root => names.first(),
            Arg::Variable(_, names) if names.first().map(String::as_str) == Some("$") => {
                names.get(1)
            }
            _ => None,
        };
        if let Some(name) = name {
            found.push((name.clone(), line_of(source, arg.pos())));
        }
    };
    walk_nodes(main, true, &mut visit);
    found
}

fn label_keys(trees: &TreeSet) -> Vec<String> {
    let mut keys = Vec::new();
    for tree in trees.values() {
        walk_commands(tree, &mut |args: &[Arg]| {
            if let [Arg::Identifier(_, name), Arg::String(_, key, _)] = args {
                if name == "label" {
                    keys.push(key.clone());
                }
            }
        });
    }
    keys
}

fn literal_texts(main: &[Node]) -> Vec<String> {
    let mut texts = Vec::new();
    collect_texts(main, &mut texts);
    texts
}

/// The 1-based line of byte offset `pos` in `source`.
fn line_of(source: &str, pos: usize) -> usize {
    1 + source.get(..pos).unwrap_or("").matches('\n').count()
}

fn collect_texts(nodes: &[Node], texts: &mut Vec<String>) {
    for node in nodes {
        match node {
            Node::Text(text) => texts.push(text.clone()),
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                collect_texts(&b.list, texts);
                if let Some(else_list) = &b.else_list {
                    collect_texts(else_list, texts);
                }
            }
            _ => {}
        }
    }
}

/// Visits every argument with whether dot is still the root data there.
fn walk_nodes(nodes: &[Node], dot_is_root: bool, visit: &mut dyn FnMut(&Arg, bool)) {
    for node in nodes {
        match node {
            Node::Action(pipe) => walk_pipe(pipe, dot_is_root, visit),
            Node::If(b) => {
                walk_pipe(&b.pipe, dot_is_root, visit);
                walk_nodes(&b.list, dot_is_root, visit);
                walk_nodes(b.else_list.as_deref().unwrap_or(&[]), dot_is_root, visit);
            }
            Node::With(b) | Node::Range(b) => {
                walk_pipe(&b.pipe, dot_is_root, visit);
                walk_nodes(&b.list, false, visit);
                walk_nodes(b.else_list.as_deref().unwrap_or(&[]), dot_is_root, visit);
            }
            Node::Template {
                pipe: Some(pipe), ..
            } => walk_pipe(pipe, dot_is_root, visit),
            _ => {}
        }
    }
}

fn walk_pipe(pipe: &Pipe, dot_is_root: bool, visit: &mut dyn FnMut(&Arg, bool)) {
    for command in &pipe.cmds {
        for arg in &command.args {
            walk_arg(arg, dot_is_root, visit);
        }
    }
}

fn walk_arg(arg: &Arg, dot_is_root: bool, visit: &mut dyn FnMut(&Arg, bool)) {
    visit(arg, dot_is_root);
    match arg {
        Arg::Pipe(pipe) => walk_pipe(pipe, dot_is_root, visit),
        Arg::Chain(_, inner, _) => walk_arg(inner, dot_is_root, visit),
        _ => {}
    }
}

/// Visits the arguments of every command, everywhere in a tree.
fn walk_commands(nodes: &[Node], visit: &mut dyn FnMut(&[Arg])) {
    fn pipe_commands(pipe: &Pipe, visit: &mut dyn FnMut(&[Arg])) {
        for command in &pipe.cmds {
            visit(&command.args);
            for arg in &command.args {
                if let Arg::Pipe(inner) = arg {
                    pipe_commands(inner, visit);
                }
            }
        }
    }
    for node in nodes {
        match node {
            Node::Action(pipe) => pipe_commands(pipe, visit),
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                pipe_commands(&b.pipe, visit);
                walk_commands(&b.list, visit);
                walk_commands(b.else_list.as_deref().unwrap_or(&[]), visit);
            }
            Node::Template {
                pipe: Some(pipe), ..
            } => pipe_commands(pipe, visit),
            _ => {}
        }
    }
}
