//! The small TypeScript parser behind the wire-types test: it reads the
//! `interface` and `type` declarations of `web/src/wire.ts` (objects,
//! primitives, string literals, unions, arrays and `Record<string, T>`)
//! into [`Ty`]s, and refuses anything else. It is apart from the test so
//! that the test reads as the samples and the checker, and this as the
//! grammar it accepts.

use std::collections::BTreeMap;

/// A TypeScript type, as far as wire.ts uses them.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ty {
    Number,
    String,
    Boolean,
    Null,
    /// `unknown` or `any`: any value.
    Unknown,
    /// A string literal type: `'owner'`.
    Literal(String),
    Array(Box<Ty>),
    /// `Record<string, T>`.
    Record(Box<Ty>),
    /// The declared fields (an index signature adds none: others are
    /// always allowed).
    Object(Vec<Field>),
    Union(Vec<Ty>),
    /// A declaration of wire.ts, by name.
    Named(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Field {
    pub(super) name: String,
    pub(super) optional: bool,
    pub(super) ty: Ty,
}

/// Splits TypeScript into tokens: names, string literals (kept with a
/// leading `'`), and single punctuation characters. Comments are dropped.
fn tokens(source: &str) -> Vec<String> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(&c) = chars.get(at) {
        let next = chars.get(at + 1).copied();
        if c.is_whitespace() {
            at += 1;
        } else if c == '/' && next == Some('/') {
            while chars.get(at).is_some_and(|&c| c != '\n') {
                at += 1;
            }
        } else if c == '/' && next == Some('*') {
            at += 2;
            while at < chars.len() && !(chars[at] == '*' && chars.get(at + 1) == Some(&'/')) {
                at += 1;
            }
            at += 2;
        } else if c == '\'' || c == '"' {
            let end = (at + 1..chars.len())
                .find(|&end| chars[end] == c)
                .unwrap_or_else(|| panic!("unterminated string in wire.ts"));
            out.push(format!(
                "'{}",
                chars[at + 1..end].iter().collect::<String>()
            ));
            at = end + 1;
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = at;
            while chars
                .get(at)
                .is_some_and(|&c| c.is_alphanumeric() || c == '_' || c == '$')
            {
                at += 1;
            }
            out.push(chars[start..at].iter().collect());
        } else {
            out.push(c.to_string());
            at += 1;
        }
    }
    out
}

struct Parser {
    tokens: Vec<String>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn peek_at(&self, ahead: usize) -> Option<&str> {
        self.tokens.get(self.at + ahead).map(String::as_str)
    }

    fn next(&mut self) -> String {
        let token = self
            .tokens
            .get(self.at)
            .cloned()
            .unwrap_or_else(|| panic!("wire.ts ends early"));
        self.at += 1;
        token
    }

    fn expect(&mut self, wanted: &str) {
        let got = self.next();
        assert_eq!(got, wanted, "wire.ts: expected {wanted:?}, got {got:?}");
    }

    fn eat(&mut self, wanted: &str) -> bool {
        let found = self.peek() == Some(wanted);
        if found {
            self.at += 1;
        }
        found
    }

    /// Every declaration: `[export] interface Name {...}` or
    /// `[export] type Name = ...`.
    fn declarations(mut self) -> BTreeMap<String, Ty> {
        let mut declared = BTreeMap::new();
        while self.peek().is_some() {
            self.eat("export");
            let keyword = self.next();
            let name = self.next();
            let ty = match keyword.as_str() {
                "interface" => {
                    self.expect("{");
                    self.object()
                }
                "type" => {
                    self.expect("=");
                    self.union()
                }
                other => {
                    panic!("wire.ts holds only interface and type declarations, not {other:?}")
                }
            };
            assert!(
                declared.insert(name.clone(), ty).is_none(),
                "wire.ts declares {name} twice"
            );
        }
        declared
    }

    /// The fields of an object type, after its `{`, up to its `}`.
    fn object(&mut self) -> Ty {
        let mut fields = Vec::new();
        while !self.eat("}") {
            if self.eat("[") {
                // An index signature: other fields are allowed, unchecked.
                while self.next() != "]" {}
                self.expect(":");
                self.union();
            } else {
                let name = self.next();
                let optional = self.eat("?");
                self.expect(":");
                let ty = self.union();
                fields.push(Field {
                    name: name.trim_start_matches('\'').to_owned(),
                    optional,
                    ty,
                });
            }
            if !self.eat(";") {
                self.eat(",");
            }
        }
        Ty::Object(fields)
    }

    fn union(&mut self) -> Ty {
        self.eat("|");
        let mut members = vec![self.postfix()];
        while self.eat("|") {
            members.push(self.postfix());
        }
        if members.len() == 1 {
            members.remove(0)
        } else {
            Ty::Union(members)
        }
    }

    fn postfix(&mut self) -> Ty {
        let mut ty = self.primary();
        // `T[]`; a `[` not followed by `]` opens the next index signature.
        while self.peek() == Some("[") && self.peek_at(1) == Some("]") {
            self.at += 2;
            ty = Ty::Array(Box::new(ty));
        }
        ty
    }

    fn primary(&mut self) -> Ty {
        let token = self.next();
        match token.as_str() {
            "{" => self.object(),
            "(" => {
                let ty = self.union();
                self.expect(")");
                ty
            }
            "number" => Ty::Number,
            "string" => Ty::String,
            "boolean" => Ty::Boolean,
            "null" => Ty::Null,
            "unknown" | "any" => Ty::Unknown,
            "Record" => {
                self.expect("<");
                assert_eq!(self.union(), Ty::String, "wire.ts: Record keys are strings");
                self.expect(",");
                let value = self.union();
                self.expect(">");
                Ty::Record(Box::new(value))
            }
            literal if literal.starts_with('\'') => Ty::Literal(literal[1..].to_owned()),
            name if name.chars().next().is_some_and(char::is_uppercase) => {
                assert_ne!(
                    self.peek(),
                    Some("<"),
                    "wire.ts: generic {name}<...> is not understood here"
                );
                Ty::Named(name.to_owned())
            }
            other => panic!("wire.ts: a type cannot start with {other:?}"),
        }
    }
}

/// Parses the declarations of a wire.ts text.
pub(super) fn parse(source: &str) -> BTreeMap<String, Ty> {
    Parser {
        tokens: tokens(source),
        at: 0,
    }
    .declarations()
}
