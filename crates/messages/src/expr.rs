//! A small, safe expression language for searches: a subset of CEL over one message.
//!
//! ```text
//! payload.total > 100 && headers["X-Region"] == "eu" && subject.startsWith("orders.")
//! has(payload.customer.id) && !(payload.status in ["done", "void"])
//! time >= timestamp("2026-12-01T00:00:00Z") && sequence % 2 == 0 && size(text) < 1024
//! ```
//!
//! Variables: `subject` (string), `headers` (map of each header's first value), `payload`
//! (the payload parsed as JSON; null when it is not JSON), `text` (the payload as UTF-8 text),
//! `time` (milliseconds since the epoch, UTC), `sequence` and `size` (integers).
//! Operators: `|| && ! == != < <= > >= in + - * / %`, field access `a.b`, index `a[k]`, list
//! literals `[..]`. Functions: `has(a.b)`, `size(x)`, `int(x)`, `string(x)`,
//! `timestamp("RFC 3339")`, and the methods `contains`, `startsWith`, `endsWith` and
//! `matches` (a linear-time regex) on strings.
//!
//! It cannot reach the file system or the network, has no loops, and its cost per message
//! is bounded by its size (at most [`MAX_NODES`] nodes) times the message's: an expression
//! that would run away is refused when it is compiled. An error while evaluating (a missing
//! field, a type mismatch) means the message does not match.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Number, Value};

use crate::StoredMessage;

/// Most nodes an expression may have.
pub const MAX_NODES: usize = 512;
/// Longest expression text accepted.
pub const MAX_TEXT: usize = 8 * 1024;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone)]
enum Node {
    Lit(Value),
    Var(Var),
    List(Vec<Node>),
    Field(Box<Node>, String),
    Index(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Neg(Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
    Has(Box<Node>),
    Size(Box<Node>),
    Int(Box<Node>),
    Str(Box<Node>),
    Timestamp(i64),
    Method(Method, Box<Node>, Box<Node>),
    Matches(Box<Node>, Regex),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Var {
    Subject,
    Headers,
    Payload,
    Text,
    Time,
    Sequence,
    Size,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    Contains,
    StartsWith,
    EndsWith,
}

/// A compiled expression.
#[derive(Debug, Clone)]
pub struct Expr {
    root: Node,
    uses_payload: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(Value),
    Str(String),
    Ident(String),
    Sym(&'static str),
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, String> {
    const SYMS: [&str; 20] = [
        "||", "&&", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/", "%", "(", ")", "[", "]", ".", ",",
    ];
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            let t = &src[start..i];
            let n = if t.contains('.') {
                t.parse::<f64>().ok().and_then(Number::from_f64).map(Value::Number)
            } else {
                t.parse::<i64>().ok().map(Value::from)
            };
            out.push((
                Tok::Num(n.ok_or_else(|| format!("at {start}: '{t}' is not a number"))?),
                start,
            ));
        } else if c == b'"' || c == b'\'' {
            let start = i;
            i += 1;
            let mut s = String::new();
            loop {
                let Some(&d) = b.get(i) else {
                    return Err(format!("at {start}: a string that does not end"));
                };
                if d == c {
                    i += 1;
                    break;
                }
                if d == b'\\' {
                    let e = b
                        .get(i + 1)
                        .ok_or_else(|| format!("at {start}: a string that does not end"))?;
                    s.push(match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'\\' => '\\',
                        b'"' => '"',
                        b'\'' => '\'',
                        _ => return Err(format!("at {i}: unknown escape \\{}", *e as char)),
                    });
                    i += 2;
                    continue;
                }
                let ch = src[i..].chars().next().expect("in bounds");
                s.push(ch);
                i += ch.len_utf8();
            }
            out.push((Tok::Str(s), start));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push((Tok::Ident(src[start..i].to_string()), start));
        } else if let Some(sym) = SYMS.iter().find(|s| src[i..].starts_with(**s)) {
            out.push((Tok::Sym(sym), i));
            i += sym.len();
        } else {
            let ch = src[i..].chars().next().expect("in bounds");
            return Err(format!("at {i}: unexpected '{ch}'"));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    at: usize,
    nodes: usize,
    depth: usize,
    uses_payload: bool,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(t, _)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn is(&self, sym: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(s)) if *s == sym)
    }

    fn eat(&mut self, sym: &str) -> bool {
        if self.is(sym) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, sym: &str) -> Result<(), String> {
        if self.eat(sym) {
            Ok(())
        } else {
            Err(format!("at {}: expected '{sym}'", self.pos()))
        }
    }

    fn node(&mut self, n: Node) -> Result<Node, String> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(format!(
                "the expression is too large (more than {MAX_NODES} parts); simplify it"
            ));
        }
        Ok(n)
    }

    fn expr(&mut self) -> Result<Node, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("the expression nests deeper than {MAX_DEPTH}; simplify it"));
        }
        let r = self.binary(0);
        self.depth -= 1;
        r
    }

    fn binary(&mut self, level: usize) -> Result<Node, String> {
        const LEVELS: [&[(&str, Op)]; 5] = [
            &[("||", Op::Or)],
            &[("&&", Op::And)],
            &[
                ("==", Op::Eq),
                ("!=", Op::Ne),
                ("<=", Op::Le),
                (">=", Op::Ge),
                ("<", Op::Lt),
                (">", Op::Gt),
            ],
            &[("+", Op::Add), ("-", Op::Sub)],
            &[("*", Op::Mul), ("/", Op::Div), ("%", Op::Rem)],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        loop {
            let op = LEVELS[level].iter().find(|(s, _)| self.is(s));
            let op = match op {
                Some((_, op)) => *op,
                None if level == 2 && self.peek() == Some(&Tok::Ident("in".into())) => Op::In,
                None => return Ok(left),
            };
            self.at += 1;
            let right = self.binary(level + 1)?;
            left = self.node(Node::Bin(op, Box::new(left), Box::new(right)))?;
            if level == 2 {
                return Ok(left);
            }
        }
    }

    fn unary(&mut self) -> Result<Node, String> {
        if self.eat("!") {
            let n = self.unary()?;
            return self.node(Node::Not(Box::new(n)));
        }
        if self.eat("-") {
            let n = self.unary()?;
            return self.node(Node::Neg(Box::new(n)));
        }
        self.postfix()
    }

    fn args(&mut self) -> Result<Vec<Node>, String> {
        let mut args = Vec::new();
        if self.eat(")") {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(")") {
                return Ok(args);
            }
            self.expect(",")?;
        }
    }

    fn postfix(&mut self) -> Result<Node, String> {
        let mut n = self.primary()?;
        loop {
            if self.eat(".") {
                let at = self.pos();
                let Some(Tok::Ident(name)) = self.peek().cloned() else {
                    return Err(format!("at {at}: expected a field name after '.'"));
                };
                self.at += 1;
                if self.eat("(") {
                    let mut args = self.args()?;
                    if args.len() != 1 {
                        return Err(format!("at {at}: {name}() takes one argument"));
                    }
                    let arg = args.remove(0);
                    n = match name.as_str() {
                        "contains" => Node::Method(Method::Contains, Box::new(n), Box::new(arg)),
                        "startsWith" => Node::Method(Method::StartsWith, Box::new(n), Box::new(arg)),
                        "endsWith" => Node::Method(Method::EndsWith, Box::new(n), Box::new(arg)),
                        "matches" => {
                            let Node::Lit(Value::String(p)) = arg else {
                                return Err(format!("at {at}: matches() takes a string literal"));
                            };
                            let re = regex::RegexBuilder::new(&p)
                                .size_limit(256 * 1024)
                                .build()
                                .map_err(|e| format!("at {at}: not a regex this search can run ({e})"))?;
                            Node::Matches(Box::new(n), re)
                        }
                        other => return Err(format!("at {at}: unknown method '{other}'")),
                    };
                } else {
                    n = Node::Field(Box::new(n), name);
                }
                n = self.node(n)?;
            } else if self.eat("[") {
                let k = self.expr()?;
                self.expect("]")?;
                n = self.node(Node::Index(Box::new(n), Box::new(k)))?;
            } else {
                return Ok(n);
            }
        }
    }

    fn primary(&mut self) -> Result<Node, String> {
        let at = self.pos();
        let Some(tok) = self.peek().cloned() else {
            return Err(format!("at {at}: the expression ends too soon"));
        };
        self.at += 1;
        let n = match tok {
            Tok::Num(v) => Node::Lit(v),
            Tok::Str(s) => Node::Lit(Value::String(s)),
            Tok::Sym("(") => {
                let n = self.expr()?;
                self.expect(")")?;
                return Ok(n);
            }
            Tok::Sym("[") => {
                let mut items = Vec::new();
                if !self.eat("]") {
                    loop {
                        items.push(self.expr()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Node::List(items)
            }
            Tok::Ident(name) if self.eat("(") => {
                let mut args = self.args()?;
                if args.len() != 1 {
                    return Err(format!("at {at}: {name}() takes one argument"));
                }
                let arg = Box::new(args.remove(0));
                match name.as_str() {
                    "has" => match *arg {
                        Node::Field(..) | Node::Index(..) => Node::Has(arg),
                        _ => return Err(format!("at {at}: has() takes a field, such as has(payload.id)")),
                    },
                    "size" => Node::Size(arg),
                    "int" => Node::Int(arg),
                    "string" => Node::Str(arg),
                    "timestamp" => match *arg {
                        Node::Lit(Value::String(t)) => {
                            let t = chrono::DateTime::parse_from_rfc3339(&t)
                                .map_err(|e| format!("at {at}: timestamp(\"{t}\") is not RFC 3339 ({e})"))?;
                            Node::Timestamp(t.timestamp_millis())
                        }
                        _ => return Err(format!("at {at}: timestamp() takes a string literal")),
                    },
                    other => return Err(format!("at {at}: unknown function '{other}'")),
                }
            }
            Tok::Ident(name) => match name.as_str() {
                "true" => Node::Lit(Value::Bool(true)),
                "false" => Node::Lit(Value::Bool(false)),
                "null" => Node::Lit(Value::Null),
                "subject" => Node::Var(Var::Subject),
                "headers" => Node::Var(Var::Headers),
                "payload" => {
                    self.uses_payload = true;
                    Node::Var(Var::Payload)
                }
                "text" => Node::Var(Var::Text),
                "time" => Node::Var(Var::Time),
                "sequence" => Node::Var(Var::Sequence),
                "size" => Node::Var(Var::Size),
                other => {
                    return Err(format!(
                        "at {at}: unknown name '{other}'; use subject, headers, payload, text, time, sequence or size"
                    ));
                }
            },
            Tok::Sym(s) => return Err(format!("at {at}: unexpected '{s}'")),
        };
        self.node(n)
    }
}

impl Expr {
    /// Compiles `src`, or says what is wrong with it and where (a byte offset).
    pub fn compile(src: &str) -> Result<Self, String> {
        if src.len() > MAX_TEXT {
            return Err(format!("at most {MAX_TEXT} bytes"));
        }
        let toks = lex(src)?;
        let mut p = Parser {
            toks,
            at: 0,
            nodes: 0,
            depth: 0,
            uses_payload: false,
            end: src.len(),
        };
        let root = p.expr()?;
        if p.at < p.toks.len() {
            return Err(format!("at {}: unexpected text after the expression", p.pos()));
        }
        Ok(Self {
            root,
            uses_payload: p.uses_payload,
        })
    }

    /// Whether `m` meets the expression (an error while evaluating: it does not).
    pub fn matches(&self, m: &StoredMessage) -> bool {
        let payload = if self.uses_payload {
            serde_json::from_slice(&m.payload).unwrap_or(Value::Null)
        } else {
            Value::Null
        };
        let env = Env { m, payload };
        matches!(eval(&self.root, &env), Ok(Value::Bool(true)))
    }
}

struct Env<'a> {
    m: &'a StoredMessage,
    payload: Value,
}

type Eval = Result<Value, ()>;

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn eval(n: &Node, env: &Env<'_>) -> Eval {
    Ok(match n {
        Node::Lit(v) => v.clone(),
        Node::Var(v) => match v {
            Var::Subject => Value::String(env.m.subject.clone()),
            Var::Headers => {
                let mut map = BTreeMap::new();
                for (k, v) in &env.m.headers {
                    map.entry(k.clone()).or_insert_with(|| Value::String(v.clone()));
                }
                Value::Object(map.into_iter().collect())
            }
            Var::Payload => env.payload.clone(),
            Var::Text => Value::String(String::from_utf8_lossy(&env.m.payload).into_owned()),
            Var::Time => Value::from(env.m.time.timestamp_millis()),
            Var::Sequence => Value::from(env.m.sequence),
            Var::Size => Value::from(env.m.size() as u64),
        },
        Node::List(items) => Value::Array(items.iter().map(|i| eval(i, env)).collect::<Result<_, _>>()?),
        Node::Field(of, name) => match eval(of, env)? {
            Value::Object(map) => map.get(name).cloned().ok_or(())?,
            _ => return Err(()),
        },
        Node::Index(of, key) => match (eval(of, env)?, eval(key, env)?) {
            (Value::Object(map), Value::String(k)) => map.get(&k).cloned().ok_or(())?,
            (Value::Array(a), Value::Number(i)) => a.get(i.as_u64().ok_or(())? as usize).cloned().ok_or(())?,
            _ => return Err(()),
        },
        Node::Has(field) => Value::Bool(eval(field, env).is_ok_and(|v| !v.is_null())),
        Node::Not(x) => Value::Bool(!eval(x, env)?.as_bool().ok_or(())?),
        Node::Neg(x) => match eval(x, env)? {
            Value::Number(n) if n.is_i64() => Value::from(-n.as_i64().ok_or(())?),
            Value::Number(n) => Number::from_f64(-n.as_f64().ok_or(())?).map(Value::Number).ok_or(())?,
            _ => return Err(()),
        },
        Node::Size(x) => match eval(x, env)? {
            Value::String(s) => Value::from(s.chars().count() as u64),
            Value::Array(a) => Value::from(a.len() as u64),
            Value::Object(o) => Value::from(o.len() as u64),
            _ => return Err(()),
        },
        Node::Int(x) => match eval(x, env)? {
            Value::Number(n) => Value::from(n.as_f64().ok_or(())? as i64),
            Value::String(s) => Value::from(s.trim().parse::<i64>().map_err(|_| ())?),
            Value::Bool(b) => Value::from(i64::from(b)),
            _ => return Err(()),
        },
        Node::Str(x) => match eval(x, env)? {
            Value::String(s) => Value::String(s),
            other => Value::String(other.to_string()),
        },
        Node::Timestamp(ms) => Value::from(*ms),
        Node::Method(method, on, arg) => {
            let (Value::String(s), Value::String(a)) = (eval(on, env)?, eval(arg, env)?) else {
                return Err(());
            };
            Value::Bool(match method {
                Method::Contains => s.contains(&a),
                Method::StartsWith => s.starts_with(&a),
                Method::EndsWith => s.ends_with(&a),
            })
        }
        Node::Matches(on, re) => match eval(on, env)? {
            Value::String(s) => Value::Bool(re.is_match(&s)),
            _ => return Err(()),
        },
        Node::Bin(op, l, r) => return binary(*op, l, r, env),
    })
}

fn binary(op: Op, l: &Node, r: &Node, env: &Env<'_>) -> Eval {
    // Short-circuit, as CEL does (an error on the side not needed does not matter).
    if matches!(op, Op::Or | Op::And) {
        let left = eval(l, env).ok().and_then(|v| v.as_bool());
        match (op, left) {
            (Op::Or, Some(true)) => return Ok(Value::Bool(true)),
            (Op::And, Some(false)) => return Ok(Value::Bool(false)),
            _ => {}
        }
        let right = eval(r, env)?.as_bool().ok_or(())?;
        return match (op, left, right) {
            (Op::Or, _, true) | (Op::And, Some(true), true) => Ok(Value::Bool(true)),
            (Op::And, _, false) | (Op::Or, Some(false), false) => Ok(Value::Bool(false)),
            _ => Err(()),
        };
    }
    let (a, b) = (eval(l, env)?, eval(r, env)?);
    Ok(match op {
        Op::Eq => Value::Bool(equal(&a, &b)),
        Op::Ne => Value::Bool(!equal(&a, &b)),
        Op::In => Value::Bool(match &b {
            Value::Array(items) => items.iter().any(|i| equal(i, &a)),
            Value::Object(map) => a.as_str().is_some_and(|k| map.contains_key(k)),
            Value::String(s) => a.as_str().is_some_and(|k| s.contains(k)),
            _ => return Err(()),
        }),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let ord = match (&a, &b) {
                (Value::String(x), Value::String(y)) => x.cmp(y),
                _ => num(&a).ok_or(())?.partial_cmp(&num(&b).ok_or(())?).ok_or(())?,
            };
            Value::Bool(match op {
                Op::Lt => ord.is_lt(),
                Op::Le => ord.is_le(),
                Op::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            })
        }
        Op::Add => match (&a, &b) {
            (Value::String(x), Value::String(y)) => Value::String(format!("{x}{y}")),
            _ => arith(op, &a, &b)?,
        },
        _ => arith(op, &a, &b)?,
    })
}

fn equal(a: &Value, b: &Value) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn arith(op: Op, a: &Value, b: &Value) -> Eval {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        let r = match op {
            Op::Add => x.checked_add(y),
            Op::Sub => x.checked_sub(y),
            Op::Mul => x.checked_mul(y),
            Op::Div => x.checked_div(y),
            _ => x.checked_rem(y),
        };
        return r.map(Value::from).ok_or(());
    }
    let (x, y) = (num(a).ok_or(())?, num(b).ok_or(())?);
    let r = match op {
        Op::Add => x + y,
        Op::Sub => x - y,
        Op::Mul => x * y,
        Op::Div => x / y,
        _ => x % y,
    };
    Number::from_f64(r).map(Value::Number).ok_or(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(payload: &str) -> StoredMessage {
        StoredMessage {
            sequence: 42,
            subject: "orders.eu.new".into(),
            time: chrono::DateTime::parse_from_rfc3339("2026-12-02T05:00:00Z")
                .unwrap()
                .into(),
            headers: vec![("X-Region".into(), "eu".into()), ("X-Region".into(), "us".into())],
            payload: payload.as_bytes().to_vec().into(),
            decoded_as: None,
        }
    }

    fn yes(src: &str, payload: &str) -> bool {
        Expr::compile(src)
            .unwrap_or_else(|e| panic!("{src}: {e}"))
            .matches(&msg(payload))
    }

    #[test]
    fn expressions_read_every_part_of_a_message() {
        let p = r#"{"total": 120.5, "items": [{"sku": "a"}, {"sku": "b"}], "status": "open", "customer": {"id": 7}}"#;
        for (src, want) in [
            ("payload.total > 100", true),
            ("payload.total > 100 && payload.status == 'open'", true),
            ("payload.items[1].sku == \"b\"", true),
            ("size(payload.items) == 2", true),
            ("has(payload.customer.id) && !has(payload.customer.name)", true),
            ("payload.status in ['done', 'void']", false),
            ("!(payload.status in ['done', 'void'])", true),
            ("headers['X-Region'] == 'eu'", true),
            ("'X-Region' in headers", true),
            ("subject.startsWith('orders.') && subject.endsWith('.new')", true),
            ("subject.matches('^orders\\\\.(eu|us)\\\\.')", true),
            ("time >= timestamp('2026-12-01T00:00:00Z')", true),
            ("time < timestamp('2026-12-02T00:00:00+01:00')", false),
            ("sequence % 2 == 0 && sequence / 6 == 7", true),
            ("size > 10 && text.contains('open')", true),
            ("int(payload.total) == 120", true),
            ("string(payload.customer.id) + '!' == '7!'", true),
            ("-payload.customer.id < 0", true),
            // Errors on the other side of a short circuit do not matter; elsewhere they fail.
            ("payload.missing.deep == 1 || payload.total > 1", true),
            ("payload.missing == 1", false),
            ("payload.status > 3", false),
        ] {
            assert_eq!(yes(src, p), want, "{src}");
        }
        assert!(!yes("payload.total > 1", "not json"), "no JSON, no field");
        assert!(yes("payload == null && text == 'not json'", "not json"));
    }

    #[test]
    fn bad_or_runaway_expressions_are_refused_with_where() {
        for (src, says) in [
            ("payload.total >", "ends too soon"),
            ("payload.total > > 1", "at 16: unexpected '>'"),
            ("pay.total", "unknown name 'pay'"),
            ("exec('rm')", "unknown function 'exec'"),
            ("subject.matches('(')", "not a regex"),
            ("'open", "does not end"),
            ("1 2", "unexpected text"),
            ("has(1)", "has() takes a field"),
            ("timestamp('yesterday')", "not RFC 3339"),
        ] {
            let e = Expr::compile(src).unwrap_err();
            assert!(e.contains(says), "{src}: {e}");
        }
        let wide = vec!["sequence == 1"; 300].join(" || ");
        assert!(Expr::compile(&wide).unwrap_err().contains("too large"));
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(Expr::compile(&deep).unwrap_err().contains("nests deeper"));
    }
}
