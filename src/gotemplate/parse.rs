//! The parser: Go's `text/template/parse` grammar, with its token look-ahead, variable scoping
//! and messages, so a template is accepted or refused exactly as Go would, with Go's words.

use std::collections::BTreeMap;

use super::lex::{Item, ItemType, Lexer};
use super::number::{parse_number, Number};
use super::quote::go_unquote;

/// Functions Go defines for every template.
pub const BUILTINS: [&str; 19] = [
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Comment,
    Action(Pipe),
    If(Branch),
    Range(Branch),
    With(Branch),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

/// `{{if}}`, `{{range}}` and `{{with}}`: a pipeline, a body and an optional else body.
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<String>,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `.A.B`: the field names.
    Field(usize, Vec<String>),
    /// `$x.A`: the variable and then field names.
    Variable(usize, Vec<String>),
    /// `(pipeline).A` or `$x` followed by fields on a non-field term.
    Chain(usize, Box<Arg>, Vec<String>),
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(usize, Box<Number>),
    /// The value and the literal as written (Go prints the latter in messages).
    String(usize, String, String),
    Identifier(usize, String),
    Pipe(Box<Pipe>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field(p, _)
            | Arg::Variable(p, _)
            | Arg::Chain(p, _, _)
            | Arg::Dot(p)
            | Arg::Nil(p)
            | Arg::Bool(p, _)
            | Arg::Number(p, _)
            | Arg::String(p, _, _)
            | Arg::Identifier(p, _) => *p,
            Arg::Pipe(pipe) => pipe.pos,
        }
    }
}

/// Ends of lists, internal to the parser (Go's `nodeEnd` and `nodeElse`).
enum ListEnd {
    End,
    Else,
}

impl ListEnd {
    fn describe(&self) -> &'static str {
        match self {
            ListEnd::End => "{{end}}",
            ListEnd::Else => "{{else}}",
        }
    }
}

/// What a list item turned out to be.
enum Parsed {
    Node(Node),
    End(ListEnd),
}

/// Every template a source defines: `""` is the main one.
pub type TreeSet = BTreeMap<String, Vec<Node>>;

/// One tree's parsing state. `define` and `block` bodies get their own (as in Go), sharing the
/// lexer: the look-ahead buffer and variables are per tree, which decides the line numbers in
/// messages.
struct Tree {
    token: [Item; 3],
    peek_count: usize,
    vars: Vec<String>,
    range_depth: usize,
    action_line: usize,
}

struct Shared<'a, 'f> {
    lexer: Lexer<'a>,
    funcs: &'f [&'f str],
    trees: TreeSet,
    /// Current nesting of parenthesised pipelines, control structures and blocks.
    depth: usize,
}

/// How deep parentheses, `if`/`range`/`with` and `block` may nest. The parser and executor
/// recurse per level on a server thread's small stack, so a hostile template must not nest
/// without bound; Go allows 10 000 parentheses, far beyond any SPIFFE ID template.
pub const MAX_NESTING: usize = 100;

type Result<T> = std::result::Result<T, String>;

fn eof_item() -> Item {
    Item {
        typ: ItemType::Eof,
        pos: 0,
        val: String::new(),
        line: 1,
    }
}

impl Tree {
    fn new() -> Self {
        Self {
            token: [eof_item(), eof_item(), eof_item()],
            peek_count: 0,
            vars: vec!["$".to_owned()],
            range_depth: 0,
            action_line: 0,
        }
    }

    fn errorf<T>(&self, message: impl std::fmt::Display) -> Result<T> {
        Err(format!("template: :{}: {message}", self.token[0].line))
    }

    fn next(&mut self, sh: &mut Shared) -> Item {
        if self.peek_count > 0 {
            self.peek_count -= 1;
        } else {
            self.token[0] = sh.lexer.next_item();
        }
        self.token[self.peek_count].clone()
    }

    fn backup(&mut self) {
        self.peek_count += 1;
    }

    fn backup2(&mut self, t1: Item) {
        self.token[1] = t1;
        self.peek_count = 2;
    }

    fn backup3(&mut self, t2: Item, t1: Item) {
        self.token[1] = t1;
        self.token[2] = t2;
        self.peek_count = 3;
    }

    fn peek(&mut self, sh: &mut Shared) -> Item {
        if self.peek_count > 0 {
            return self.token[self.peek_count - 1].clone();
        }
        self.peek_count = 1;
        self.token[0] = sh.lexer.next_item();
        self.token[0].clone()
    }

    fn next_non_space(&mut self, sh: &mut Shared) -> Item {
        loop {
            let token = self.next(sh);
            if token.typ != ItemType::Space {
                return token;
            }
        }
    }

    fn peek_non_space(&mut self, sh: &mut Shared) -> Item {
        let token = self.next_non_space(sh);
        self.backup();
        token
    }

    fn expect(&mut self, sh: &mut Shared, expected: ItemType, context: &str) -> Result<Item> {
        let token = self.next_non_space(sh);
        if token.typ != expected {
            return self.unexpected(&token, context);
        }
        Ok(token)
    }

    fn unexpected<T>(&self, token: &Item, context: &str) -> Result<T> {
        if token.typ == ItemType::Error {
            let mut extra = String::new();
            if self.action_line != 0 && self.action_line != token.line {
                extra = format!(" in action started at :{}", self.action_line);
                if token.val.ends_with(" action") {
                    extra = extra[" in action".len()..].to_owned();
                }
            }
            return self.errorf(format!("{token}{extra}"));
        }
        self.errorf(format!("unexpected {token} in {context}"))
    }

    fn has_function(name: &str, sh: &Shared) -> bool {
        BUILTINS.contains(&name) || sh.funcs.contains(&name)
    }

    /// The main template: text and actions until EOF, with `define`s split off.
    fn parse(&mut self, sh: &mut Shared) -> Result<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek(sh).typ != ItemType::Eof {
            if self.peek(sh).typ == ItemType::LeftDelim {
                let delim = self.next(sh);
                if self.next_non_space(sh).typ == ItemType::Define {
                    let mut definition = Tree::new();
                    definition.parse_definition(sh)?;
                    continue;
                }
                self.backup2(delim);
            }
            match self.text_or_action(sh)? {
                Parsed::End(end) => return self.errorf(format!("unexpected {}", end.describe())),
                Parsed::Node(node) => root.push(node),
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self, sh: &mut Shared) -> Result<()> {
        const CONTEXT: &str = "define clause";
        let name = self.next_non_space(sh);
        if name.typ != ItemType::String && name.typ != ItemType::RawString {
            return self.unexpected(&name, CONTEXT);
        }
        let name = match go_unquote(&name.val) {
            Ok(name) => name,
            Err(e) => return self.errorf(e),
        };
        self.expect(sh, ItemType::RightDelim, CONTEXT)?;
        let (list, end) = self.item_list(sh)?;
        if !matches!(end, ListEnd::End) {
            return self.errorf(format!("unexpected {} in {CONTEXT}", end.describe()));
        }
        self.add(sh, name, list)
    }

    /// Registers a tree; a second non-empty definition of a name is an error.
    fn add(&self, sh: &mut Shared, name: String, list: Vec<Node>) -> Result<()> {
        match sh.trees.get(&name) {
            Some(existing) if !is_empty_tree(existing) => {
                if !is_empty_tree(&list) {
                    return self.errorf(format!(
                        "template: multiple definition of template {}",
                        super::quote::go_quote(&name)
                    ));
                }
            }
            _ => {
                sh.trees.insert(name, list);
            }
        }
        Ok(())
    }

    fn item_list(&mut self, sh: &mut Shared) -> Result<(Vec<Node>, ListEnd)> {
        let mut list = Vec::new();
        while self.peek_non_space(sh).typ != ItemType::Eof {
            match self.text_or_action(sh)? {
                Parsed::End(end) => return Ok((list, end)),
                Parsed::Node(node) => list.push(node),
            }
        }
        self.errorf("unexpected EOF")
    }

    fn text_or_action(&mut self, sh: &mut Shared) -> Result<Parsed> {
        let token = self.next_non_space(sh);
        match token.typ {
            ItemType::Text => Ok(Parsed::Node(Node::Text(token.val))),
            ItemType::LeftDelim => {
                self.action_line = token.line;
                let result = self.action(sh);
                self.action_line = 0;
                result
            }
            ItemType::Comment => Ok(Parsed::Node(Node::Comment)),
            _ => self.unexpected(&token, "input"),
        }
    }

    fn action(&mut self, sh: &mut Shared) -> Result<Parsed> {
        let token = self.next_non_space(sh);
        match token.typ {
            ItemType::Block => return self.block_control(sh).map(Parsed::Node),
            ItemType::Break => return self.loop_control(sh, "break").map(Parsed::Node),
            ItemType::Continue => return self.loop_control(sh, "continue").map(Parsed::Node),
            ItemType::Else => return self.else_control(sh),
            ItemType::End => {
                self.expect(sh, ItemType::RightDelim, "end")?;
                return Ok(Parsed::End(ListEnd::End));
            }
            ItemType::If => return self.control(sh, "if").map(|b| Parsed::Node(Node::If(b))),
            ItemType::Range => {
                return self
                    .control(sh, "range")
                    .map(|b| Parsed::Node(Node::Range(b)))
            }
            ItemType::Template => return self.template_control(sh).map(Parsed::Node),
            ItemType::With => {
                return self
                    .control(sh, "with")
                    .map(|b| Parsed::Node(Node::With(b)))
            }
            _ => {}
        }
        self.backup();
        let pipe = self.pipeline(sh, "command", ItemType::RightDelim)?;
        Ok(Parsed::Node(Node::Action(pipe)))
    }

    fn loop_control(&mut self, sh: &mut Shared, keyword: &str) -> Result<Node> {
        let token = self.next_non_space(sh);
        if token.typ != ItemType::RightDelim {
            return self.unexpected(&token, &format!("{{{{{keyword}}}}}"));
        }
        if self.range_depth == 0 {
            return self.errorf(format!("{{{{{keyword}}}}} outside {{{{range}}}}"));
        }
        Ok(if keyword == "break" {
            Node::Break
        } else {
            Node::Continue
        })
    }

    fn else_control(&mut self, sh: &mut Shared) -> Result<Parsed> {
        let peek = self.peek_non_space(sh);
        if peek.typ == ItemType::If || peek.typ == ItemType::With {
            return Ok(Parsed::End(ListEnd::Else));
        }
        self.expect(sh, ItemType::RightDelim, "else")?;
        Ok(Parsed::End(ListEnd::Else))
    }

    /// `if`, `range` and `with`: variables declared in the pipeline live until the `{{end}}`.
    fn control(&mut self, sh: &mut Shared, context: &str) -> Result<Branch> {
        self.enter(sh, "max nesting depth exceeded")?;
        let vars = self.vars.len();
        let result = self.control_body(sh, context);
        self.vars.truncate(vars);
        sh.depth -= 1;
        result
    }

    /// One level deeper, refused past [`MAX_NESTING`].
    fn enter(&self, sh: &mut Shared, message: &str) -> Result<()> {
        if sh.depth >= MAX_NESTING {
            return self.errorf(message);
        }
        sh.depth += 1;
        Ok(())
    }

    fn control_body(&mut self, sh: &mut Shared, context: &str) -> Result<Branch> {
        let pipe = self.pipeline(sh, context, ItemType::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let listed = self.item_list(sh);
        if context == "range" {
            self.range_depth -= 1;
        }
        let (list, next) = listed?;
        let else_list = match next {
            ListEnd::End => None,
            ListEnd::Else => {
                if context == "if" && self.peek(sh).typ == ItemType::If {
                    self.next(sh);
                    Some(vec![Node::If(self.control(sh, "if")?)])
                } else if context == "with" && self.peek(sh).typ == ItemType::With {
                    self.next(sh);
                    Some(vec![Node::With(self.control(sh, "with")?)])
                } else {
                    let (list, next) = self.item_list(sh)?;
                    if !matches!(next, ListEnd::End) {
                        return self.errorf(format!("expected end; found {}", next.describe()));
                    }
                    Some(list)
                }
            }
        };
        Ok(Branch {
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&self, token: &Item, context: &str) -> Result<String> {
        match token.typ {
            ItemType::String | ItemType::RawString => match go_unquote(&token.val) {
                Ok(name) => Ok(name),
                Err(e) => self.errorf(e),
            },
            _ => self.unexpected(token, context),
        }
    }

    fn template_control(&mut self, sh: &mut Shared) -> Result<Node> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space(sh);
        let name = self.template_name(&token, CONTEXT)?;
        let mut pipe = None;
        if self.next_non_space(sh).typ != ItemType::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(sh, CONTEXT, ItemType::RightDelim)?);
        }
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }

    fn block_control(&mut self, sh: &mut Shared) -> Result<Node> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space(sh);
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(sh, CONTEXT, ItemType::RightDelim)?;
        self.enter(sh, "max nesting depth exceeded")?;
        let mut block = Tree::new();
        let listed = block.item_list(sh);
        sh.depth -= 1;
        let (list, end) = listed?;
        if !matches!(end, ListEnd::End) {
            return self.errorf(format!("unexpected {} in {CONTEXT}", end.describe()));
        }
        block.add(sh, name.clone(), list)?;
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn pipeline(&mut self, sh: &mut Shared, context: &str, end: ItemType) -> Result<Pipe> {
        let start = self.peek_non_space(sh);
        let mut pipe = Pipe {
            pos: start.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, and `$i, $e :=` in range.
        loop {
            let v = self.peek_non_space(sh);
            if v.typ != ItemType::Variable {
                break;
            }
            self.next(sh);
            let after_variable = self.peek(sh);
            let next = self.peek_non_space(sh);
            if next.typ == ItemType::Assign || next.typ == ItemType::Declare {
                pipe.is_assign = next.typ == ItemType::Assign;
                self.next_non_space(sh);
                pipe.decl.push(v.val.clone());
                self.vars.push(v.val);
                break;
            } else if next.typ == ItemType::Char && next.val == "," {
                self.next_non_space(sh);
                pipe.decl.push(v.val.clone());
                self.vars.push(v.val);
                if context == "range" && pipe.decl.len() < 2 {
                    match self.peek_non_space(sh).typ {
                        ItemType::Variable | ItemType::RightDelim | ItemType::RightParen => {
                            continue
                        }
                        _ => return self.errorf("range can only initialize variables"),
                    }
                }
                return self.errorf(format!("too many declarations in {context}"));
            } else if after_variable.typ == ItemType::Space {
                self.backup3(v, after_variable);
                break;
            } else {
                self.backup2(v);
                break;
            }
        }
        loop {
            let token = self.next_non_space(sh);
            match token.typ {
                t if t == end => {
                    self.check_pipeline(&pipe, context)?;
                    return Ok(pipe);
                }
                ItemType::Bool
                | ItemType::CharConstant
                | ItemType::Complex
                | ItemType::Dot
                | ItemType::Field
                | ItemType::Identifier
                | ItemType::Number
                | ItemType::Nil
                | ItemType::RawString
                | ItemType::String
                | ItemType::Variable
                | ItemType::LeftParen => {
                    self.backup();
                    let command = self.command(sh)?;
                    pipe.cmds.push(command);
                }
                _ => return self.unexpected(&token, context),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> Result<()> {
        if pipe.cmds.is_empty() {
            return self.errorf(format!("missing value for {context}"));
        }
        for (i, command) in pipe.cmds.iter().enumerate().skip(1) {
            if let Some(
                Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(..) | Arg::String(..),
            ) = command.args.first()
            {
                return self.errorf(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self, sh: &mut Shared) -> Result<Command> {
        let pos = self.peek_non_space(sh).pos;
        let mut command = Command {
            pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space(sh);
            if let Some(operand) = self.operand(sh)? {
                command.args.push(operand);
            }
            let token = self.next(sh);
            match token.typ {
                ItemType::Space => continue,
                ItemType::RightDelim | ItemType::RightParen => self.backup(),
                ItemType::Pipe => {}
                _ => return self.unexpected(&token, "operand"),
            }
            break;
        }
        if command.args.is_empty() {
            return self.errorf("empty command");
        }
        Ok(command)
    }

    fn operand(&mut self, sh: &mut Shared) -> Result<Option<Arg>> {
        let Some((node, text)) = self.term(sh)? else {
            return Ok(None);
        };
        if self.peek(sh).typ != ItemType::Field {
            return Ok(Some(node));
        }
        let pos = self.peek(sh).pos;
        let mut fields = Vec::new();
        while self.peek(sh).typ == ItemType::Field {
            let field = self.next(sh).val;
            fields.push(field.trim_start_matches('.').to_owned());
        }
        Ok(Some(match node {
            Arg::Field(_, mut names) => {
                names.extend(fields);
                Arg::Field(pos, names)
            }
            Arg::Variable(_, mut names) => {
                names.extend(fields);
                Arg::Variable(pos, names)
            }
            Arg::Bool(..) | Arg::String(..) | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                return self.errorf(format!(
                    "unexpected . after term {}",
                    super::quote::go_quote(&text)
                ));
            }
            other => Arg::Chain(pos, Box::new(other), fields),
        }))
    }

    /// One term and its source text (how Go prints it in messages).
    fn term(&mut self, sh: &mut Shared) -> Result<Option<(Arg, String)>> {
        let token = self.next_non_space(sh);
        let pos = token.pos;
        let text = token.val.clone();
        Ok(Some((
            match token.typ {
                ItemType::Identifier => {
                    if !Self::has_function(&token.val, sh) {
                        return self.errorf(format!(
                            "function {} not defined",
                            super::quote::go_quote(&token.val)
                        ));
                    }
                    Arg::Identifier(pos, token.val)
                }
                ItemType::Dot => Arg::Dot(pos),
                ItemType::Nil => Arg::Nil(pos),
                ItemType::Variable => {
                    let names: Vec<String> = split_variable(&token.val);
                    if !self.vars.iter().any(|v| Some(v) == names.first()) {
                        return self.errorf(format!(
                            "undefined variable {}",
                            super::quote::go_quote(names.first().map_or("", String::as_str))
                        ));
                    }
                    Arg::Variable(pos, names)
                }
                ItemType::Field => Arg::Field(
                    pos,
                    token.val.split('.').skip(1).map(str::to_owned).collect(),
                ),
                ItemType::Bool => Arg::Bool(pos, token.val == "true"),
                ItemType::CharConstant | ItemType::Complex | ItemType::Number => {
                    match parse_number(&token.val, token.typ) {
                        Ok(number) => Arg::Number(pos, Box::new(number)),
                        Err(e) => return self.errorf(e),
                    }
                }
                ItemType::LeftParen => {
                    // Go's own words for too-deep parentheses (at a lower limit).
                    self.enter(sh, "max expression depth exceeded")?;
                    let pipe = self.pipeline(sh, "parenthesized pipeline", ItemType::RightParen);
                    sh.depth -= 1;
                    Arg::Pipe(Box::new(pipe?))
                }
                ItemType::String | ItemType::RawString => match go_unquote(&token.val) {
                    Ok(s) => Arg::String(pos, s, text.clone()),
                    Err(e) => return self.errorf(e),
                },
                _ => {
                    self.backup();
                    return Ok(None);
                }
            },
            text,
        )))
    }
}

/// `$x.A.B` → `["$x", "A", "B"]`.
fn split_variable(text: &str) -> Vec<String> {
    text.split('.').map(str::to_owned).collect()
}

/// Go's `IsEmptyTree`: only whitespace text and comments.
fn is_empty_tree(list: &[Node]) -> bool {
    list.iter().all(|node| match node {
        Node::Text(text) => text
            .trim_matches(|c: char| c.is_ascii_whitespace())
            .is_empty(),
        Node::Comment => true,
        _ => false,
    })
}

/// Parses `source` like `template.New("").Funcs(funcs).Parse(source)`.
pub fn parse(source: &str, funcs: &[&str]) -> Result<TreeSet> {
    let mut shared = Shared {
        lexer: Lexer::new(source),
        funcs,
        trees: TreeSet::new(),
        depth: 0,
    };
    let mut tree = Tree::new();
    let root = tree.parse(&mut shared)?;
    tree.add(&mut shared, String::new(), root)?;
    Ok(shared.trees)
}
