//! Executing a parsed template against a struct of string fields and the `label` function, with
//! Go's semantics and error texts for what such data allows.
//!
//! Limits Go does not have protect admission from hostile templates: execution stops after
//! [`MAX_STEPS`] evaluations, output beyond [`MAX_OUTPUT`] bytes, or nesting beyond
//! [`MAX_DEPTH`] template calls.

use std::collections::BTreeMap;

use super::parse::{Arg, Branch, Command, Node, Pipe, TreeSet};
use super::quote::go_quote;

/// Evaluations allowed per execution: far beyond any SPIFFE ID template, small enough that a
/// `{{range 1000000000}}` cannot stall a webhook.
pub const MAX_STEPS: usize = 100_000;
/// A SPIFFE ID is at most 2 048 bytes; anything far longer is a runaway template.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// Template calls may nest this deep (Go allows 100 000, far more than a server thread's stack
/// holds; each call costs several recursive frames).
pub const MAX_DEPTH: usize = 100;
/// Lists and pipelines may nest this deep in one execution, template calls included: enough
/// for any template the parser accepts on its own, bounded when calls stack them up.
pub const MAX_NESTING: usize = 400;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    /// A byte, as `index` returns from a string.
    Uint8(u8),
    Float(f64),
    Complex(f64, f64),
    Nil,
    /// The root data.
    Data,
}

impl Value {
    pub fn type_name(&self, data: &DataView) -> String {
        match self {
            Value::Str(_) => "string".to_owned(),
            Value::Bool(_) => "bool".to_owned(),
            Value::Int(_) => "int".to_owned(),
            Value::Uint8(_) => "uint8".to_owned(),
            Value::Float(_) => "float64".to_owned(),
            Value::Complex(..) => "complex128".to_owned(),
            Value::Nil => "<nil>".to_owned(),
            Value::Data => data.type_name(),
        }
    }

    pub fn truth(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Uint8(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::Complex(re, im) => *re != 0.0 || *im != 0.0,
            Value::Nil => false,
            Value::Data => true,
        }
    }

    /// `fmt.Sprint` of one value.
    pub fn print(&self, data: &DataView) -> String {
        super::fmt::sprint_value(self, data)
    }
}

/// Go's `%v` for float64 (`strconv.FormatFloat(f, 'g', -1, 64)`).
pub fn format_float(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let exponent = f.abs().log10().floor() as i32;
    if (-4..21).contains(&exponent) {
        format!("{f}")
    } else {
        let text = format!("{f:e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// The data a template executes against.
pub struct DataView<'a> {
    pub fields: &'a [(&'a str, &'a str)],
    pub labels: &'a BTreeMap<String, String>,
}

impl DataView<'_> {
    /// Go's `%T` of the anonymous struct: `struct { Mesh string; Zone string }`.
    fn type_name(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(k, _)| format!("{k} string"))
            .collect();
        format!("struct {{ {} }}", fields.join("; "))
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a, 'd> {
    trees: &'a TreeSet,
    source: &'a str,
    name: String,
    data: &'a DataView<'d>,
    vars: Vec<(String, Value)>,
    out: String,
    steps: usize,
    depth: usize,
    /// Recursion depth of lists and pipelines being evaluated.
    nesting: usize,
    /// Position and text of the node being evaluated, for messages.
    at: (usize, String),
}

type Result<T> = std::result::Result<T, String>;

impl State<'_, '_> {
    fn location(&self) -> String {
        let pos = self.at.0.min(self.source.len());
        let before = self.source.get(..pos).unwrap_or("");
        let line = 1 + before.matches('\n').count();
        let column = match before.rfind('\n') {
            Some(newline) => pos - newline - 1,
            None => pos,
        };
        format!(":{line}:{column}")
    }

    fn errorf<T>(&self, message: impl std::fmt::Display) -> Result<T> {
        if self.at.1.is_empty() {
            return Err(format!("template: {}: {message}", go_quote(&self.name)));
        }
        Err(format!(
            "template: {}: executing {} at <{}>: {message}",
            self.location(),
            go_quote(&self.name),
            self.at.1
        ))
    }

    fn at(&mut self, pos: usize, text: String) {
        self.at = (pos, text);
    }

    fn step(&mut self) -> Result<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return self.errorf(format!("execution stopped after {MAX_STEPS} steps"));
        }
        if self.out.len() > MAX_OUTPUT {
            return self.errorf(format!("output longer than {MAX_OUTPUT} bytes"));
        }
        Ok(())
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow> {
        self.nest()?;
        let flow = self.walk_list(dot, nodes);
        self.nesting -= 1;
        flow
    }

    /// Tracks recursion across nested lists, pipelines and template calls together: each is
    /// bounded on its own, but template calls multiply nesting inside them.
    fn nest(&mut self) -> Result<()> {
        if self.nesting >= MAX_NESTING {
            return self.errorf(format!("execution nested deeper than {MAX_NESTING} levels"));
        }
        self.nesting += 1;
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value, nodes: &[Node]) -> Result<Flow> {
        for node in nodes {
            self.step()?;
            match node {
                Node::Text(text) => self.out.push_str(text),
                Node::Comment => {}
                Node::Action(pipe) => {
                    let value = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        let text = match value {
                            Value::Nil => "<no value>".to_owned(),
                            other => other.print(self.data),
                        };
                        self.out.push_str(&text);
                    }
                }
                Node::If(branch) => {
                    if let flow @ (Flow::Break | Flow::Continue) =
                        self.walk_if_or_with(dot, branch, false)?
                    {
                        return Ok(flow);
                    }
                }
                Node::With(branch) => {
                    if let flow @ (Flow::Break | Flow::Continue) =
                        self.walk_if_or_with(dot, branch, true)?
                    {
                        return Ok(flow);
                    }
                }
                Node::Range(branch) => self.walk_range(dot, branch)?,
                Node::Template { pos, name, pipe } => {
                    self.walk_template(dot, *pos, name, pipe.as_ref())?
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, dot: &Value, branch: &Branch, with: bool) -> Result<Flow> {
        let mark = self.vars.len();
        let value = self.eval_pipeline(dot, &branch.pipe)?;
        let flow = if value.truth() {
            let new_dot = if with { value } else { dot.clone() };
            self.walk(&new_dot, &branch.list)?
        } else if let Some(else_list) = &branch.else_list {
            self.walk(dot, else_list)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn walk_range(&mut self, dot: &Value, branch: &Branch) -> Result<()> {
        let mark = self.vars.len();
        let value = self.eval_pipeline(dot, &branch.pipe)?;
        let count = match value {
            Value::Int(n) if branch.pipe.decl.len() > 1 => {
                return self.errorf(format!(
                    "can't use {n} to iterate over more than one variable"
                ));
            }
            Value::Int(n) => n,
            Value::Nil => 0,
            other => {
                return self.errorf(format!(
                    "range can't iterate over {}",
                    other.print(self.data)
                ));
            }
        };
        if count <= 0 {
            if let Some(else_list) = &branch.else_list {
                self.walk(dot, else_list)?;
            }
        }
        for i in 0..count.max(0) {
            self.step()?;
            let element = Value::Int(i);
            // The pipeline pushed its variable with the ranged value; each iteration
            // overwrites it with the element, as Go's `setTopVar` does.
            if let Some(variable) = branch.pipe.decl.first() {
                let slot = if branch.pipe.is_assign {
                    self.vars.iter_mut().rev().find(|(n, _)| n == variable)
                } else {
                    self.vars.last_mut()
                };
                if let Some(slot) = slot {
                    slot.1 = element.clone();
                }
            }
            let iteration = self.vars.len();
            let flow = self.walk(&element, &branch.list)?;
            self.vars.truncate(iteration);
            if let Flow::Break = flow {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn walk_template(
        &mut self,
        dot: &Value,
        pos: usize,
        name: &str,
        pipe: Option<&Pipe>,
    ) -> Result<()> {
        let Some(tree) = self.trees.get(name) else {
            self.at(pos, template_string(name, pipe));
            return self.errorf(format!("template {} not defined", go_quote(name)));
        };
        let new_dot = match pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Nil,
        };
        if self.depth >= MAX_DEPTH {
            self.at(pos, template_string(name, pipe));
            return self.errorf(format!("exceeded maximum template depth ({MAX_DEPTH})"));
        }
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$".to_owned(), new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.name, name.to_owned());
        self.depth += 1;
        let result = self.walk(&new_dot, tree);
        self.depth -= 1;
        self.name = saved_name;
        self.vars = saved_vars;
        result.map(|_| ())
    }

    fn set_var(&mut self, name: &str, value: Value) {
        self.vars.push((name.to_owned(), value));
    }

    fn var(&mut self, name: &str) -> Result<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, value)) => Ok(value.clone()),
            None => self.errorf(format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value> {
        self.nest()?;
        let value = self.eval_pipeline_inner(dot, pipe);
        self.nesting -= 1;
        value
    }

    fn eval_pipeline_inner(&mut self, dot: &Value, pipe: &Pipe) -> Result<Value> {
        self.at(pipe.pos, pipe_string(pipe));
        let mut value: Option<Value> = None;
        for command in &pipe.cmds {
            let result = self.eval_command(dot, command, value.take())?;
            value = Some(result);
        }
        let value = value.unwrap_or(Value::Nil);
        for name in &pipe.decl {
            if pipe.is_assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = value.clone(),
                    None => return self.errorf(format!("undefined variable: {name}")),
                }
            } else {
                self.set_var(name, value.clone());
            }
        }
        Ok(value)
    }

    /// Go's `notAFunction`: literals and plain values take no arguments.
    fn not_a_function(&self, args: &[Arg], last: &Option<Value>) -> Result<()> {
        if args.len() > 1 || last.is_some() {
            // Go prints a parenthesised pipeline here without its parentheses.
            let first = match args.first() {
                Some(Arg::Pipe(pipe)) => pipe_string(pipe),
                Some(other) => arg_string(other),
                None => String::new(),
            };
            return self.errorf(format!("can't give argument to non-function {first}"));
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value,
        command: &Command,
        last: Option<Value>,
    ) -> Result<Value> {
        self.step()?;
        let Some(first) = command.args.first() else {
            return Ok(Value::Nil);
        };
        match first {
            Arg::Field(pos, names) => {
                self.at(*pos, arg_string(first));
                self.field_chain(dot.clone(), names, &command.args, &last)
            }
            Arg::Chain(pos, inner, names) => {
                self.at(*pos, arg_string(first));
                let base = self.eval_arg(dot, inner)?;
                self.field_chain(base, names, &command.args, &last)
            }
            Arg::Identifier(pos, name) => {
                self.at(*pos, name.clone());
                self.call(dot, command, name, last)
            }
            Arg::Pipe(pipe) => {
                self.not_a_function(&command.args, &last)?;
                self.eval_pipeline(dot, pipe)
            }
            Arg::Variable(pos, names) => {
                self.at(*pos, arg_string(first));
                let value = self.var(names.first().map_or("$", String::as_str))?;
                if names.len() == 1 {
                    self.not_a_function(&command.args, &last)?;
                    return Ok(value);
                }
                self.field_chain(value, &names[1..], &command.args, &last)
            }
            _ => {
                self.at(first.pos(), arg_string(first));
                self.not_a_function(&command.args, &last)?;
                match first {
                    Arg::Nil(_) => self.errorf("nil is not a command"),
                    Arg::Dot(_) => Ok(dot.clone()),
                    other => self.constant(other),
                }
            }
        }
    }

    /// The value of a literal, as Go's `idealConstant` types it.
    fn constant(&mut self, arg: &Arg) -> Result<Value> {
        Ok(match arg {
            Arg::Bool(_, b) => Value::Bool(*b),
            Arg::String(_, s, _) => Value::Str(s.clone()),
            Arg::Number(_, n) => {
                if let Some((re, im)) = n.complex {
                    return Ok(Value::Complex(re, im));
                }
                let hex_int = n.text.trim_start_matches(['+', '-']).starts_with("0x")
                    && !n.text.contains(['p', 'P'])
                    || n.text.trim_start_matches(['+', '-']).starts_with("0X")
                        && !n.text.contains(['p', 'P']);
                let is_rune = n.text.starts_with('\'');
                let float_text = !hex_int && !is_rune && n.text.contains(['.', 'e', 'E', 'p', 'P']);
                match (n.int, n.float) {
                    (_, Some(f)) if float_text => Value::Float(f),
                    (Some(i), _) => Value::Int(i),
                    _ => return self.errorf(format!("{} overflows int", n.text)),
                }
            }
            _ => Value::Nil,
        })
    }

    /// Follows `.A.B` from `receiver`; only the last field may receive arguments (and, being a
    /// field, refuses them).
    fn field_chain(
        &mut self,
        receiver: Value,
        names: &[String],
        args: &[Arg],
        last: &Option<Value>,
    ) -> Result<Value> {
        let mut value = receiver;
        for (i, name) in names.iter().enumerate() {
            let is_last = i + 1 == names.len();
            value = match value {
                Value::Data => match self.data.fields.iter().find(|(k, _)| k == name) {
                    Some((_, v)) => {
                        if is_last && (args.len() > 1 || last.is_some()) {
                            return self.errorf(format!(
                                "{name} has arguments but cannot be invoked as function"
                            ));
                        }
                        Value::Str((*v).to_owned())
                    }
                    None => {
                        return self.errorf(format!(
                            "can't evaluate field {name} in type {}",
                            self.data.type_name()
                        ))
                    }
                },
                // Go returns the zero value for fields of a missing value.
                Value::Nil => Value::Nil,
                other => {
                    return self.errorf(format!(
                        "can't evaluate field {name} in type {}",
                        other.type_name(self.data)
                    ))
                }
            };
        }
        Ok(value)
    }

    /// An argument to a function parameter of type `any` (or `reflect.Value`).
    fn eval_arg(&mut self, dot: &Value, arg: &Arg) -> Result<Value> {
        self.step()?;
        self.at(arg.pos(), arg_string(arg));
        match arg {
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Ok(Value::Nil),
            Arg::Field(_, names) => {
                self.field_chain(dot.clone(), names, std::slice::from_ref(arg), &None)
            }
            Arg::Variable(_, names) => {
                let value = self.var(names.first().map_or("$", String::as_str))?;
                self.field_chain(value, names.get(1..).unwrap_or(&[]), &[], &None)
            }
            Arg::Chain(_, inner, names) => {
                let base = self.eval_arg(dot, inner)?;
                self.field_chain(base, names, &[], &None)
            }
            Arg::Pipe(pipe) => {
                let mark = self.vars.len();
                let value = self.eval_pipeline(dot, pipe);
                self.vars.truncate(mark);
                value
            }
            Arg::Identifier(pos, name) => {
                let command = Command {
                    pos: *pos,
                    args: vec![arg.clone()],
                };
                self.call(dot, &command, name, None)
            }
            literal => self.constant(literal),
        }
    }

    /// An argument to a `string` parameter: literals must be strings, other values are checked.
    fn eval_string_arg(&mut self, dot: &Value, arg: &Arg) -> Result<Value> {
        match arg {
            Arg::String(_, s, _) => {
                self.at(arg.pos(), arg_string(arg));
                Ok(Value::Str(s.clone()))
            }
            Arg::Nil(_) => {
                self.at(arg.pos(), arg_string(arg));
                self.errorf("cannot assign nil to string")
            }
            Arg::Bool(..) | Arg::Number(..) => {
                self.at(arg.pos(), arg_string(arg));
                self.errorf(format!("expected string; found {}", arg_string(arg)))
            }
            other => {
                let value = self.eval_arg(dot, other)?;
                self.string_typed(value)
            }
        }
    }

    /// Go's `validateType` for a `string` parameter.
    fn string_typed(&self, value: Value) -> Result<Value> {
        match value {
            Value::Str(_) => Ok(value),
            Value::Nil => self.errorf("invalid value; expected string"),
            other => self.errorf(format!(
                "wrong type for value; expected string; got {}",
                other.type_name(self.data)
            )),
        }
    }

    fn call(
        &mut self,
        dot: &Value,
        command: &Command,
        name: &str,
        last: Option<Value>,
    ) -> Result<Value> {
        let Some(signature) = super::funcs::signature(name) else {
            return self.errorf(format!("{} is not a defined function", go_quote(name)));
        };
        let args = command.args.get(1..).unwrap_or(&[]);
        let supplied = args.len() + usize::from(last.is_some());
        if signature.variadic {
            if supplied < signature.fixed.len() {
                return self.errorf(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    signature.fixed.len(),
                    args.len()
                ));
            }
        } else if supplied != signature.fixed.len() && !(name == "and" || name == "or") {
            return self.errorf(format!(
                "wrong number of args for {name}: want {} got {supplied}",
                signature.fixed.len()
            ));
        }
        // `and` and `or` evaluate lazily and return the deciding argument.
        if name == "and" || name == "or" {
            let mut value = Value::Nil;
            for arg in args {
                value = self.eval_arg(dot, arg)?;
                if value.truth() != (name == "and") {
                    return Ok(value);
                }
            }
            return Ok(last.unwrap_or(value));
        }
        let mut argv = Vec::with_capacity(supplied);
        for (i, arg) in args.iter().enumerate() {
            let wants_string = signature.fixed.get(i) == Some(&super::funcs::Param::String);
            argv.push(if wants_string {
                self.eval_string_arg(dot, arg)?
            } else {
                self.eval_arg(dot, arg)?
            });
        }
        if let Some(last) = last {
            let wants_string =
                !signature.variadic && signature.fixed.last() == Some(&super::funcs::Param::String);
            argv.push(if wants_string {
                self.string_typed(last)?
            } else {
                last
            });
        }
        let callee = args.first().map(arg_string).unwrap_or_default();
        match super::funcs::call(name, &argv, self.data, &callee) {
            Ok(value) => Ok(value),
            Err(message) => {
                // Go names the whole command only when the call itself fails.
                self.at(command.pos, command_string(command));
                self.errorf(format!("error calling {name}: {message}"))
            }
        }
    }
}

/// Executes the main template.
pub fn execute(trees: &TreeSet, source: &str, data: &DataView) -> Result<String> {
    let mut state = State {
        trees,
        source,
        name: String::new(),
        data,
        vars: vec![("$".to_owned(), Value::Data)],
        out: String::new(),
        steps: 0,
        depth: 0,
        nesting: 0,
        at: (0, String::new()),
    };
    let Some(root) = trees.get("") else {
        return state.errorf("\"\" is an incomplete or empty template");
    };
    state.walk(&Value::Data, root)?;
    if state.out.len() > MAX_OUTPUT {
        return state.errorf(format!("output longer than {MAX_OUTPUT} bytes"));
    }
    Ok(state.out)
}

/// Go's `String()` of nodes, for `at <...>` in messages.
pub fn arg_string(arg: &Arg) -> String {
    match arg {
        Arg::Field(_, names) => names.iter().map(|n| format!(".{n}")).collect(),
        Arg::Variable(_, names) => names.join("."),
        Arg::Chain(_, inner, names) => {
            let base = match inner.as_ref() {
                Arg::Pipe(_) => arg_string(inner),
                other => arg_string(other),
            };
            format!(
                "{base}{}",
                names.iter().map(|n| format!(".{n}")).collect::<String>()
            )
        }
        Arg::Dot(_) => ".".to_owned(),
        Arg::Nil(_) => "nil".to_owned(),
        Arg::Bool(_, b) => b.to_string(),
        Arg::Number(_, n) => n.text.clone(),
        Arg::String(_, _, quoted) => quoted.clone(),
        Arg::Identifier(_, name) => name.clone(),
        Arg::Pipe(pipe) => format!("({})", pipe_string(pipe)),
    }
}

pub fn command_string(command: &Command) -> String {
    command
        .args
        .iter()
        .map(arg_string)
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn pipe_string(pipe: &Pipe) -> String {
    let mut text = String::new();
    if !pipe.decl.is_empty() {
        text.push_str(&pipe.decl.join(", "));
        text.push_str(if pipe.is_assign { " = " } else { " := " });
    }
    text.push_str(
        &pipe
            .cmds
            .iter()
            .map(command_string)
            .collect::<Vec<_>>()
            .join(" | "),
    );
    text
}

fn template_string(name: &str, pipe: Option<&Pipe>) -> String {
    match pipe {
        Some(pipe) => format!("{{{{template {} {}}}}}", go_quote(name), pipe_string(pipe)),
        None => format!("{{{{template {}}}}}", go_quote(name)),
    }
}
