//! The values a template evaluates to, and the data it executes against: the types `exec`,
//! `funcs` and `fmt` share.

use std::collections::BTreeMap;
use std::rc::Rc;

/// A Go value of one of the kinds this data model can produce. Strings are shared, so copying a
/// value (into a variable, as dot) never copies its text.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Rc<str>),
    Bool(bool),
    /// Go's `int`.
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
    pub fn str(text: &str) -> Self {
        Value::Str(Rc::from(text))
    }

    /// Go's `%T`.
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

    /// Go's `truth`: whether `if` takes the value as true.
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
}

/// The data a template executes against: Go's `struct { A string; B string }` with these
/// exported string fields, and `label` reading `labels`.
pub struct DataView<'a> {
    pub fields: &'a [(&'a str, &'a str)],
    pub labels: &'a BTreeMap<String, String>,
}

impl DataView<'_> {
    /// Go's `%T` of the anonymous struct: `struct { Mesh string; Zone string }`.
    pub fn type_name(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(k, _)| format!("{k} string"))
            .collect();
        format!("struct {{ {} }}", fields.join("; "))
    }
}
