//! TEMPORARY STUB (replaced by the real parser).
use std::collections::BTreeMap;
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExecError(pub String);
#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Field(String),
    Label(String),
}
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<Part>,
}
pub struct Data<'a> {
    pub fields: &'a [(&'a str, &'a str)],
    pub labels: &'a BTreeMap<String, String>,
}
pub fn parse(src: &str, _funcs: &[&str]) -> Result<Template, ParseError> {
    let mut parts = vec![];
    let mut rest = src;
    while let Some(i) = rest.find("{{") {
        parts.push(Part::Text(rest[..i].to_string()));
        let after = &rest[i + 2..];
        let Some(j) = after.find("}}") else {
            return Err(ParseError("template: :1: unclosed action".into()));
        };
        let a = after[..j].trim();
        if let Some(f) = a.strip_prefix('.') {
            parts.push(Part::Field(f.to_string()))
        } else if let Some(l) = a.strip_prefix("label ") {
            parts.push(Part::Label(l.trim().trim_matches('"').to_string()))
        } else {
            let name = a.split_whitespace().next().unwrap_or("");
            return Err(ParseError(format!(
                "template: :1: function \"{name}\" not defined"
            )));
        }
        rest = &after[j + 2..];
    }
    parts.push(Part::Text(rest.to_string()));
    Ok(Template { parts })
}
impl Template {
    pub fn execute(&self, data: &Data) -> Result<String, ExecError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
            Part::Text(t) => out.push_str(t),
            Part::Field(f) => match data.fields.iter().find(|(k, _)| k == f) { Some((_, v)) => out.push_str(v), None => return Err(ExecError(format!("template: :1:3: executing \"\" at <.{f}>: can't evaluate field {f}"))) },
            Part::Label(l) => match data.labels.get(l) { Some(v) => out.push_str(v), None => return Err(ExecError(format!("template: :1:3: executing \"\" at <label \"{l}\">: error calling label: label {l} not found"))) },
        }
        }
        Ok(out)
    }
    pub fn root_fields(&self) -> Vec<(String, usize)> {
        self.parts
            .iter()
            .filter_map(|p| {
                if let Part::Field(f) = p {
                    Some((f.clone(), 1))
                } else {
                    None
                }
            })
            .collect()
    }
    pub fn label_keys(&self) -> Vec<String> {
        self.parts
            .iter()
            .filter_map(|p| {
                if let Part::Label(f) = p {
                    Some(f.clone())
                } else {
                    None
                }
            })
            .collect()
    }
    pub fn literal_texts(&self) -> Vec<String> {
        self.parts
            .iter()
            .filter_map(|p| {
                if let Part::Text(f) = p {
                    Some(f.clone())
                } else {
                    None
                }
            })
            .collect()
    }
}
