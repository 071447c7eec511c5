//! Executing a parsed template against a struct of string fields and the `label` function, with
//! Go's semantics and error texts for what such data allows.
//!
//! Limits Go does not have keep hostile templates from costing admission more than a sliver of
//! time and memory. Each is checked before the work or the allocation it guards:
//! - [`MAX_RENDER_BYTES`]: the output and every string value an evaluation yields together (a
//!   constant, a field, a variable read, a function's result), so neither a `printf` width nor a
//!   string doubled through variables can grow past it;
//! - [`MAX_STEPS`] evaluations, where comparing long names counts as more (one step per
//!   [`BYTES_PER_STEP`]), shared across executions through a [`Budget`];
//! - [`MAX_DEPTH`] nested template calls and [`MAX_NESTING`] nested lists and pipelines.

use super::funcs::{self, Param};
use super::limits::{
    over_budget_message, Budget, BYTES_PER_STEP, MAX_DEPTH, MAX_NESTING, MAX_RENDER_BYTES,
    MAX_STEPS,
};
use super::parse::{Arg, Branch, Command, Node, Pipe, TreeSet};
use super::quote::go_quote;
use super::sink::OverBudget;
use super::value::{DataView, Value};

/// The node being evaluated, for `at <...>` in messages; its text is only built for a message.
#[derive(Clone, Copy)]
enum At<'a> {
    Nothing,
    Arg(&'a Arg),
    Pipe(&'a Pipe),
    /// A command that called a function: its position and arguments (the function first).
    Command(usize, &'a [Arg]),
    Template(usize, &'a str, Option<&'a Pipe>),
}

impl At<'_> {
    fn pos(&self) -> usize {
        match self {
            At::Nothing => 0,
            At::Arg(arg) => arg.pos(),
            At::Pipe(pipe) => pipe.pos,
            At::Command(pos, _) | At::Template(pos, _, _) => *pos,
        }
    }

    fn text(&self) -> String {
        match self {
            At::Nothing => String::new(),
            At::Arg(arg) => arg_string(arg),
            At::Pipe(pipe) => pipe_string(pipe),
            At::Command(_, args) => args_string(args),
            At::Template(_, name, pipe) => template_string(name, *pipe),
        }
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
    name: &'a str,
    data: &'a DataView<'d>,
    vars: Vec<(&'a str, Value)>,
    out: String,
    steps: usize,
    /// This execution's step limit: [`MAX_STEPS`], or less when the caller's budget is low.
    step_limit: usize,
    /// What [`MAX_RENDER_BYTES`] leaves for output and values.
    bytes_left: usize,
    depth: usize,
    /// Recursion depth of lists and pipelines being evaluated.
    nesting: usize,
    /// The node being evaluated, for messages.
    at: At<'a>,
}

type Result<T> = std::result::Result<T, String>;

impl<'a> State<'a, '_> {
    fn location(&self) -> String {
        let pos = self.at.pos().min(self.source.len());
        let before = self.source.get(..pos).unwrap_or("");
        let line = 1 + before.matches('\n').count();
        let column = match before.rfind('\n') {
            Some(newline) => pos - newline - 1,
            None => pos,
        };
        format!(":{line}:{column}")
    }

    fn errorf<T>(&self, message: impl std::fmt::Display) -> Result<T> {
        let at = self.at.text();
        if at.is_empty() {
            return Err(format!("template: {}: {message}", go_quote(self.name)));
        }
        Err(format!(
            "template: {}: executing {} at <{at}>: {message}",
            self.location(),
            go_quote(self.name),
        ))
    }

    fn at(&mut self, at: At<'a>) {
        self.at = at;
    }

    fn step(&mut self) -> Result<()> {
        self.charge_steps(1)
    }

    fn charge_steps(&mut self, steps: usize) -> Result<()> {
        self.steps = self.steps.saturating_add(steps);
        if self.steps > self.step_limit {
            return self.errorf(format!("execution stopped after {} steps", self.step_limit));
        }
        Ok(())
    }

    /// Takes `n` bytes from the render budget, before they are allocated.
    fn charge_bytes(&mut self, n: usize) -> Result<()> {
        if n > self.bytes_left {
            return self.errorf(over_budget_message());
        }
        self.bytes_left -= n;
        Ok(())
    }

    /// A string value an evaluation yields costs its length, whether new or shared: that bounds
    /// both the memory strings take and the work of comparing and scanning them.
    fn charge_value(&mut self, value: &Value) -> Result<()> {
        match value {
            Value::Str(s) => self.charge_bytes(s.len()),
            _ => Ok(()),
        }
    }

    fn emit(&mut self, text: &str) -> Result<()> {
        self.charge_bytes(text.len())?;
        self.out.push_str(text);
        Ok(())
    }

    fn walk(&mut self, dot: &Value, nodes: &'a [Node]) -> Result<Flow> {
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

    fn walk_list(&mut self, dot: &Value, nodes: &'a [Node]) -> Result<Flow> {
        for node in nodes {
            self.step()?;
            match node {
                Node::Text(text) => self.emit(text)?,
                Node::Comment => {}
                Node::Action(pipe) => {
                    let value = self.eval_pipeline(dot, pipe)?;
                    if pipe.decl.is_empty() {
                        match value {
                            Value::Nil => self.emit("<no value>")?,
                            // `fmt.Sprint` of one string is the string itself, and the budget
                            // refuses it alike: emitted without printing a copy first.
                            Value::Str(text) => self.emit(&text)?,
                            other => {
                                let text = self.print(&other)?;
                                self.emit(&text)?;
                            }
                        }
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

    /// `fmt.Sprint` of one value, within what is left of the budget.
    fn print(&self, value: &Value) -> Result<String> {
        super::fmt::sprint(std::slice::from_ref(value), self.data, self.bytes_left)
            .or_else(|OverBudget| self.errorf(over_budget_message()))
    }

    fn walk_if_or_with(&mut self, dot: &Value, branch: &'a Branch, with: bool) -> Result<Flow> {
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

    fn walk_range(&mut self, dot: &Value, branch: &'a Branch) -> Result<()> {
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
                let text = self.print(&other)?;
                return self.errorf(format!("range can't iterate over {text}"));
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
                if branch.pipe.is_assign {
                    let slot = self.find_var(variable)?;
                    if let Some(slot) = slot.and_then(|at| self.vars.get_mut(at)) {
                        slot.1 = element.clone();
                    }
                } else if let Some(slot) = self.vars.last_mut() {
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
        name: &'a str,
        pipe: Option<&'a Pipe>,
    ) -> Result<()> {
        // A map lookup compares the name a few times over.
        self.charge_steps(name.len() / BYTES_PER_STEP)?;
        let Some(tree) = self.trees.get(name) else {
            self.at(At::Template(pos, name, pipe));
            return self.errorf(format!("template {} not defined", go_quote(name)));
        };
        let new_dot = match pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Nil,
        };
        if self.depth >= MAX_DEPTH {
            self.at(At::Template(pos, name, pipe));
            return self.errorf(format!("exceeded maximum template depth ({MAX_DEPTH})"));
        }
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$", new_dot.clone())]);
        let saved_name = std::mem::replace(&mut self.name, name);
        self.depth += 1;
        let result = self.walk(&new_dot, tree);
        self.depth -= 1;
        self.name = saved_name;
        self.vars = saved_vars;
        result.map(|_| ())
    }

    /// The innermost variable called `name`, by position. Names are compared from the innermost
    /// scope out; long names and many variables cost steps.
    fn find_var(&mut self, name: &str) -> Result<Option<usize>> {
        let mut compared = 0usize;
        let found = self.vars.iter().rposition(|(n, _)| {
            compared += 1;
            if n.len() == name.len() {
                compared += name.len();
            }
            *n == name
        });
        self.charge_steps(compared / BYTES_PER_STEP)?;
        Ok(found)
    }

    fn var(&mut self, name: &str) -> Result<Value> {
        match self.find_var(name)?.and_then(|at| self.vars.get(at)) {
            Some((_, value)) => {
                let value = value.clone();
                self.charge_value(&value)?;
                Ok(value)
            }
            None => self.errorf(format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value, pipe: &'a Pipe) -> Result<Value> {
        self.nest()?;
        let value = self.eval_pipeline_inner(dot, pipe);
        self.nesting -= 1;
        value
    }

    fn eval_pipeline_inner(&mut self, dot: &Value, pipe: &'a Pipe) -> Result<Value> {
        self.at(At::Pipe(pipe));
        let mut value: Option<Value> = None;
        for command in &pipe.cmds {
            let result = self.eval_command(dot, command, value.take())?;
            value = Some(result);
        }
        let value = value.unwrap_or(Value::Nil);
        for name in &pipe.decl {
            if pipe.is_assign {
                match self.find_var(name)?.and_then(|at| self.vars.get_mut(at)) {
                    Some(slot) => slot.1 = value.clone(),
                    None => return self.errorf(format!("undefined variable: {name}")),
                }
            } else {
                self.vars.push((name, value.clone()));
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
        command: &'a Command,
        last: Option<Value>,
    ) -> Result<Value> {
        self.step()?;
        let Some(first) = command.args.first() else {
            return Ok(Value::Nil);
        };
        match first {
            Arg::Field(_, names) => {
                self.at(At::Arg(first));
                self.field_chain(dot.clone(), names, &command.args, &last)
            }
            Arg::Chain(_, inner, names) => {
                self.at(At::Arg(first));
                let base = self.eval_arg(dot, inner)?;
                self.field_chain(base, names, &command.args, &last)
            }
            Arg::Identifier(_, name) => {
                self.at(At::Arg(first));
                self.call(dot, command.pos, &command.args, name, last)
            }
            Arg::Pipe(pipe) => {
                self.not_a_function(&command.args, &last)?;
                self.eval_pipeline(dot, pipe)
            }
            Arg::Variable(_, names) => {
                self.at(At::Arg(first));
                let value = self.var(names.first().map_or("$", String::as_str))?;
                if names.len() == 1 {
                    self.not_a_function(&command.args, &last)?;
                    return Ok(value);
                }
                self.field_chain(value, &names[1..], &command.args, &last)
            }
            _ => {
                self.at(At::Arg(first));
                self.not_a_function(&command.args, &last)?;
                match first {
                    Arg::Nil(_) => self.errorf("nil is not a command"),
                    Arg::Dot(_) => {
                        self.charge_value(dot)?;
                        Ok(dot.clone())
                    }
                    other => self.constant(other),
                }
            }
        }
    }

    /// The value of a literal, as Go's `idealConstant` types it.
    fn constant(&mut self, arg: &Arg) -> Result<Value> {
        Ok(match arg {
            Arg::Bool(_, b) => Value::Bool(*b),
            Arg::String(_, s, _) => {
                self.charge_bytes(s.len())?;
                Value::str(s)
            }
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
                        self.charge_bytes(v.len())?;
                        Value::str(v)
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
    fn eval_arg(&mut self, dot: &Value, arg: &'a Arg) -> Result<Value> {
        self.step()?;
        self.at(At::Arg(arg));
        match arg {
            Arg::Dot(_) => {
                self.charge_value(dot)?;
                Ok(dot.clone())
            }
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
                self.call(dot, *pos, std::slice::from_ref(arg), name, None)
            }
            literal => self.constant(literal),
        }
    }

    /// An argument to a `string` parameter: literals must be strings, other values are checked.
    fn eval_string_arg(&mut self, dot: &Value, arg: &'a Arg) -> Result<Value> {
        match arg {
            Arg::String(..) => {
                self.at(At::Arg(arg));
                self.constant(arg)
            }
            Arg::Nil(_) => {
                self.at(At::Arg(arg));
                self.errorf("cannot assign nil to string")
            }
            Arg::Bool(..) | Arg::Number(..) => {
                self.at(At::Arg(arg));
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

    /// Calls function `name`; `args` is the command's words, the function's name first.
    fn call(
        &mut self,
        dot: &Value,
        pos: usize,
        command: &'a [Arg],
        name: &str,
        last: Option<Value>,
    ) -> Result<Value> {
        let Some(signature) = funcs::signature(name) else {
            return self.errorf(format!("{} is not a defined function", go_quote(name)));
        };
        let args = command.get(1..).unwrap_or(&[]);
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
            let wants_string = signature.fixed.get(i) == Some(&Param::String);
            argv.push(if wants_string {
                self.eval_string_arg(dot, arg)?
            } else {
                self.eval_arg(dot, arg)?
            });
        }
        if let Some(last) = last {
            let wants_string =
                !signature.variadic && signature.fixed.last() == Some(&Param::String);
            argv.push(if wants_string {
                self.string_typed(last)?
            } else {
                last
            });
        }
        // `call` names its first argument in its error; nothing else needs the text.
        let callee = match (name, args.first()) {
            ("call", Some(first)) => arg_string(first),
            _ => String::new(),
        };
        match funcs::call(name, &argv, self.data, &callee, self.bytes_left) {
            Ok(value) => {
                self.charge_value(&value)?;
                Ok(value)
            }
            Err(message) => {
                // Go names the whole command only when the call itself fails.
                self.at(At::Command(pos, command));
                self.errorf(format!("error calling {name}: {message}"))
            }
        }
    }
}

/// Executes the main template, taking its steps from `budget`.
pub fn execute(
    trees: &TreeSet,
    source: &str,
    data: &DataView,
    budget: &mut Budget,
) -> Result<String> {
    let mut state = State {
        trees,
        source,
        name: "",
        data,
        vars: vec![("$", Value::Data)],
        out: String::new(),
        steps: 0,
        step_limit: budget.steps.min(MAX_STEPS),
        bytes_left: MAX_RENDER_BYTES,
        depth: 0,
        nesting: 0,
        at: At::Nothing,
    };
    let result = match trees.get("") {
        Some(root) => state.walk(&Value::Data, root).map(|_| ()),
        None => state.errorf("\"\" is an incomplete or empty template"),
    };
    budget.steps = budget.steps.saturating_sub(state.steps);
    result.map(|()| state.out)
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

/// Go's `String()` of a command: its words, space-separated.
fn args_string(args: &[Arg]) -> String {
    args.iter().map(arg_string).collect::<Vec<_>>().join(" ")
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
            .map(|command| args_string(&command.args))
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
