//! GBNF, llama.cpp's grammar format, read and translated into llguidance's
//! Lark-like syntax.
//!
//! # What is read
//!
//! The format of llama.cpp's grammar parser:
//!
//! - rules `name ::= alternatives`; names are made of ASCII letters, digits
//!   and `-`; `root` is the start rule; every referenced rule must be
//!   defined (once: a second definition is an error here, where llama.cpp
//!   silently keeps the last one);
//! - a newline ends a rule, except inside parentheses and right after
//!   `::=` or `|`; `#` starts a comment that runs to the end of the line;
//! - string literals `"..."` and character classes `[...]` (ranges `a-z`,
//!   negation `[^...]`) with the escapes `\n`, `\t`, `\r`, `\\`, `\"`,
//!   `\[`, `\]`, `\-`, `\xHH`, `\uHHHH` and `\UHHHHHHHH`; in a class, `-`
//!   before `]` is a plain `-`;
//! - `.` (any character, newline included), grouping `( ... )`, alternation
//!   `|` (an empty alternative is the empty string), and the repetitions
//!   `*`, `+`, `?`, `{m}`, `{m,}`, `{m,n}` (bounds, and the product of
//!   nested ones, up to 2000, as llama.cpp limits them).
//!
//! Token references (`<[id]>`, `<token>`, `!<...>`) are not supported. An
//! empty class `[]` and a reversed range `[z-a]` are errors (llama.cpp
//! accepts them as matching nothing of use).
//!
//! A text that starts with `%llguidance` is llguidance's Lark-like syntax
//! already, as in llama.cpp: [`Grammar::gbnf`](super::Grammar::gbnf) takes
//! it as it is.
//!
//! # Translation
//!
//! A rule that refers, directly or not, to no recursive rule describes a
//! regular language and becomes a terminal (an uppercase Lark name: one
//! regular expression); the other rules become Lark rules, in which each
//! run of consecutive regular items is one terminal. A grammar whose
//! `root` is regular is therefore a single regular expression, and the
//! constrained outputs are exactly its language.
//!
//! In a recursive grammar, llguidance's lexer matches each terminal
//! greedily: where a terminal could both end and go on with the character
//! that the next terminal starts with, the longer match is taken. Every
//! output is still valid under the GBNF grammar; only in such ambiguous
//! grammars (`("a" | "ab") "bc"` inside a recursive rule) are some strings
//! that llama.cpp would allow never produced.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::StructuredError;

/// The largest repetition bound `{m,n}` accepted (llama.cpp's limit).
pub const MAX_REPETITION: u32 = 2000;

/// What is wrong with a GBNF grammar (inside
/// [`StructuredError::InvalidGbnf`], which carries the line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GbnfErrorKind {
    /// A character that cannot stand where it is.
    #[error("expected {expected}, found {found:?}")]
    Unexpected {
        /// What could stand there.
        expected: &'static str,
        /// What was found.
        found: char,
    },
    /// The text ends where something more is needed.
    #[error("expected {expected}, found the end of the grammar")]
    UnexpectedEnd {
        /// What is missing.
        expected: &'static str,
    },
    /// An escape sequence that GBNF does not define.
    #[error("unknown escape `\\{0}`")]
    UnknownEscape(char),
    /// `\x`, `\u` or `\U` without its hexadecimal digits.
    #[error("the escape needs {digits} hexadecimal digits")]
    HexEscape {
        /// How many digits the escape needs.
        digits: usize,
    },
    /// An escape that names no Unicode scalar value (a surrogate, or past
    /// U+10FFFF).
    #[error("U+{0:X} is not a Unicode scalar value")]
    InvalidCodePoint(u32),
    /// `[]`: a class that matches nothing.
    #[error("empty character class")]
    EmptyClass,
    /// A range whose end comes before its start.
    #[error("reversed character range {start:?}-{end:?}")]
    ReversedRange {
        /// The range's start.
        start: char,
        /// The range's end.
        end: char,
    },
    /// A repetition operator with no item before it.
    #[error("`{0}` has no item before it to repeat")]
    NothingToRepeat(char),
    /// A repetition bound, or the product of nested ones, over
    /// [`MAX_REPETITION`].
    #[error("repetition count {0} exceeds {MAX_REPETITION}")]
    TooManyRepetitions(u64),
    /// `{m,n}` with `m > n`.
    #[error("repetition {{{min},{max}}} has its minimum above its maximum")]
    RepetitionRange {
        /// The minimum.
        min: u32,
        /// The maximum.
        max: u32,
    },
    /// Token references (`<...>`, `!<...>`) are not supported.
    #[error("token references (`<...>`) are not supported")]
    TokenReference,
    /// A rule defined twice.
    #[error("rule `{0}` is defined twice")]
    DuplicateRule(String),
    /// A reference to a rule that is not defined.
    #[error("undefined rule `{0}`")]
    UndefinedRule(String),
    /// The grammar has no `root` rule.
    #[error("the grammar has no `root` rule")]
    NoRoot,
    /// `root` matches only the empty string.
    #[error("`root` matches only the empty string")]
    EmptyRoot,
}

/// One GBNF expression.
#[derive(Debug, Clone)]
enum Expr {
    Literal(String),
    /// A class; `negated` with no range is any character.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Rule(usize),
    Seq(Vec<Expr>),
    Alt(Vec<Expr>),
    Repeat {
        inner: Box<Expr>,
        min: u32,
        max: Option<u32>,
    },
}

/// A parsed grammar: the rules by id, their names and definitions.
struct Rules {
    names: Vec<String>,
    bodies: Vec<Expr>,
    root: usize,
}

/// `text` (GBNF) in llguidance's Lark-like syntax, with `start` for
/// `root`.
///
/// # Errors
///
/// [`StructuredError::InvalidGbnf`] with the line and column (counted in
/// characters, from 1) of the first problem.
///
/// # Example
///
/// ```
/// use decoding::structured::gbnf_to_lark;
///
/// let lark = gbnf_to_lark(r#"root ::= "yes" | "no""#)?;
/// assert!(lark.starts_with("start: "));
/// assert!(gbnf_to_lark("root ::= missing").is_err());
/// # Ok::<(), decoding::structured::StructuredError>(())
/// ```
pub fn gbnf_to_lark(text: &str) -> Result<String, StructuredError> {
    let chars: Vec<char> = text.chars().collect();
    let at = |pos: usize, kind: GbnfErrorKind| {
        let (mut line, mut column) = (1, 1);
        for &c in &chars[..pos.min(chars.len())] {
            if c == '\n' {
                line += 1;
                column = 1;
            } else {
                column += 1;
            }
        }
        StructuredError::InvalidGbnf { line, column, kind }
    };
    let rules = Parser::new(&chars).parse().map_err(|(pos, kind)| at(pos, kind))?;
    Emitter::new(&rules).emit().map_err(|kind| at(0, kind))
}

type ParseResult<T> = Result<T, (usize, GbnfErrorKind)>;

struct Parser<'a> {
    src: &'a [char],
    pos: usize,
    ids: HashMap<String, usize>,
    names: Vec<String>,
    /// Where each name was first seen (for an undefined rule's error).
    first_seen: Vec<usize>,
    bodies: Vec<Option<Expr>>,
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

impl<'a> Parser<'a> {
    fn new(src: &'a [char]) -> Self {
        Parser {
            src,
            pos: 0,
            ids: HashMap::new(),
            names: Vec::new(),
            first_seen: Vec::new(),
            bodies: Vec::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.src.get(self.pos).copied()
    }

    fn unexpected(&self, expected: &'static str) -> (usize, GbnfErrorKind) {
        match self.peek() {
            Some(found) => (self.pos, GbnfErrorKind::Unexpected { expected, found }),
            None => (self.pos, GbnfErrorKind::UnexpectedEnd { expected }),
        }
    }

    /// Skips blanks and comments, and newlines where `newlines`.
    fn space(&mut self, newlines: bool) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' => self.pos += 1,
                '\r' | '\n' if newlines => self.pos += 1,
                '#' => {
                    while self.peek().is_some_and(|c| c != '\r' && c != '\n') {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn id(&mut self, name: &str, pos: usize) -> usize {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len();
        self.ids.insert(name.to_string(), id);
        self.names.push(name.to_string());
        self.first_seen.push(pos);
        self.bodies.push(None);
        id
    }

    fn name(&mut self) -> ParseResult<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_word) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.unexpected("a rule name"));
        }
        Ok(self.src[start..self.pos].iter().collect())
    }

    fn parse(mut self) -> ParseResult<Rules> {
        self.space(true);
        while self.peek().is_some() {
            self.rule()?;
        }
        for (id, body) in self.bodies.iter().enumerate() {
            if body.is_none() {
                let name = self.names[id].clone();
                return Err((self.first_seen[id], GbnfErrorKind::UndefinedRule(name)));
            }
        }
        let root = *self.ids.get("root").ok_or((0, GbnfErrorKind::NoRoot))?;
        Ok(Rules {
            names: self.names,
            bodies: self.bodies.into_iter().map(|b| b.expect("every rule is defined")).collect(),
            root,
        })
    }

    fn rule(&mut self) -> ParseResult<()> {
        let start = self.pos;
        let name = self.name()?;
        let id = self.id(&name, start);
        self.space(false);
        if !self.src[self.pos..].starts_with(&[':', ':', '=']) {
            return Err(self.unexpected("`::=`"));
        }
        self.pos += 3;
        self.space(true);
        let body = self.alternates(false)?;
        match self.peek() {
            Some('\r') => {
                self.pos += 1;
                if self.peek() == Some('\n') {
                    self.pos += 1;
                }
            }
            Some('\n') => self.pos += 1,
            Some(_) => return Err(self.unexpected("a newline after the rule")),
            None => {}
        }
        self.space(true);
        if self.bodies[id].is_some() {
            return Err((start, GbnfErrorKind::DuplicateRule(name)));
        }
        self.bodies[id] = Some(body);
        Ok(())
    }

    fn alternates(&mut self, nested: bool) -> ParseResult<Expr> {
        let mut alts = vec![self.sequence(nested)?];
        while self.peek() == Some('|') {
            self.pos += 1;
            self.space(true);
            alts.push(self.sequence(nested)?);
        }
        Ok(if alts.len() == 1 { alts.pop().expect("one") } else { Expr::Alt(alts) })
    }

    fn sequence(&mut self, nested: bool) -> ParseResult<Expr> {
        let mut items: Vec<Expr> = Vec::new();
        while let Some(c) = self.peek() {
            let item = match c {
                '"' => {
                    self.pos += 1;
                    let mut text = String::new();
                    loop {
                        match self.peek() {
                            None => return Err(self.unexpected("a closing `\"`")),
                            Some('"') => break,
                            Some(_) => text.push(self.char()?),
                        }
                    }
                    self.pos += 1;
                    Expr::Literal(text)
                }
                '[' => self.class()?,
                '(' => {
                    self.pos += 1;
                    self.space(true);
                    let inner = self.alternates(true)?;
                    if self.peek() != Some(')') {
                        return Err(self.unexpected("`)`"));
                    }
                    self.pos += 1;
                    inner
                }
                '.' => {
                    self.pos += 1;
                    Expr::Class { negated: true, ranges: Vec::new() }
                }
                '*' | '+' | '?' | '{' => {
                    let op_pos = self.pos;
                    let (min, max) = self.repetition(nested)?;
                    let Some(last) = items.pop() else {
                        return Err((op_pos, GbnfErrorKind::NothingToRepeat(c)));
                    };
                    let repeated = Expr::Repeat { inner: Box::new(last), min, max };
                    // Nested bounds multiply (llama.cpp refuses the same).
                    let copies = repetitions(&repeated);
                    if copies > u64::from(MAX_REPETITION) {
                        return Err((op_pos, GbnfErrorKind::TooManyRepetitions(copies)));
                    }
                    repeated
                }
                '<' | '!' => return Err((self.pos, GbnfErrorKind::TokenReference)),
                c if is_word(c) => {
                    let start = self.pos;
                    let name = self.name()?;
                    Expr::Rule(self.id(&name, start))
                }
                _ => break,
            };
            items.push(item);
            self.space(nested);
        }
        Ok(if items.len() == 1 { items.pop().expect("one") } else { Expr::Seq(items) })
    }

    /// One character of a literal or class, escapes decoded.
    fn char(&mut self) -> ParseResult<char> {
        let Some(c) = self.peek() else {
            return Err(self.unexpected("a character"));
        };
        self.pos += 1;
        if c != '\\' {
            return Ok(c);
        }
        let escape_pos = self.pos - 1;
        let Some(e) = self.peek() else {
            return Err(self.unexpected("an escape"));
        };
        self.pos += 1;
        let digits = match e {
            'n' => return Ok('\n'),
            't' => return Ok('\t'),
            'r' => return Ok('\r'),
            '\\' | '"' | '[' | ']' | '-' => return Ok(e),
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => return Err((escape_pos, GbnfErrorKind::UnknownEscape(e))),
        };
        let mut value: u32 = 0;
        for _ in 0..digits {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => value = value << 4 | d,
                None => return Err((escape_pos, GbnfErrorKind::HexEscape { digits })),
            }
            self.pos += 1;
        }
        char::from_u32(value).ok_or((escape_pos, GbnfErrorKind::InvalidCodePoint(value)))
    }

    fn class(&mut self) -> ParseResult<Expr> {
        let start = self.pos;
        self.pos += 1;
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.unexpected("a closing `]`")),
                Some(']') => break,
                Some(_) => {}
            }
            let lo = self.char()?;
            let mut hi = lo;
            if self.peek() == Some('-') && self.src.get(self.pos + 1).is_some_and(|&c| c != ']') {
                self.pos += 1;
                let end_pos = self.pos;
                hi = self.char()?;
                if hi < lo {
                    let kind = GbnfErrorKind::ReversedRange { start: lo, end: hi };
                    return Err((end_pos, kind));
                }
            }
            ranges.push((lo, hi));
        }
        self.pos += 1;
        if ranges.is_empty() && !negated {
            return Err((start, GbnfErrorKind::EmptyClass));
        }
        Ok(Expr::Class { negated, ranges })
    }

    /// `*`, `+`, `?` or `{m}`, `{m,}`, `{m,n}`: the bounds.
    fn repetition(&mut self, nested: bool) -> ParseResult<(u32, Option<u32>)> {
        let c = self.peek().expect("an operator");
        self.pos += 1;
        match c {
            '*' => return Ok((0, None)),
            '+' => return Ok((1, None)),
            '?' => return Ok((0, Some(1))),
            _ => {}
        }
        self.space(nested);
        let min = self.count()?;
        self.space(nested);
        let max = match self.peek() {
            Some('}') => Some(min),
            Some(',') => {
                self.pos += 1;
                self.space(nested);
                let max = if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    Some(self.count()?)
                } else {
                    None
                };
                self.space(nested);
                if self.peek() != Some('}') {
                    return Err(self.unexpected("`}`"));
                }
                max
            }
            _ => return Err(self.unexpected("`,` or `}`")),
        };
        self.pos += 1;
        if let Some(max) = max
            && max < min
        {
            return Err((self.pos - 1, GbnfErrorKind::RepetitionRange { min, max }));
        }
        Ok((min, max))
    }

    fn count(&mut self) -> ParseResult<u32> {
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            value = value.saturating_mul(10).saturating_add(u64::from(d));
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.unexpected("a repetition count"));
        }
        if value > u64::from(MAX_REPETITION) {
            return Err((start, GbnfErrorKind::TooManyRepetitions(value)));
        }
        Ok(value as u32)
    }
}

/// Writes the Lark text of parsed rules.
struct Emitter<'a> {
    rules: &'a Rules,
    /// Rules that reach no recursive rule (terminals).
    regular: Vec<bool>,
    /// Rules whose language is exactly the empty string.
    empty: Vec<bool>,
    /// The terminals made of runs of regular items, by body.
    hoisted: HashMap<String, String>,
    out: String,
}

impl<'a> Emitter<'a> {
    fn new(rules: &'a Rules) -> Self {
        let n = rules.names.len();
        let refs: Vec<Vec<usize>> = rules
            .bodies
            .iter()
            .map(|b| {
                let mut r = Vec::new();
                collect_refs(b, &mut r);
                r
            })
            .collect();
        // reach[i]: the rules reachable from i in one step or more.
        let reach: Vec<Vec<bool>> = (0..n)
            .map(|i| {
                let mut seen = vec![false; n];
                let mut stack = refs[i].clone();
                while let Some(j) = stack.pop() {
                    if !seen[j] {
                        seen[j] = true;
                        stack.extend_from_slice(&refs[j]);
                    }
                }
                seen
            })
            .collect();
        let recursive: Vec<bool> = (0..n).map(|i| reach[i][i]).collect();
        let regular = (0..n)
            .map(|i| !recursive[i] && (0..n).all(|j| !reach[i][j] || !recursive[j]))
            .collect();
        // The least fixpoint: a rule is empty when its body is, given the
        // rules known empty so far.
        let mut empty = vec![false; n];
        loop {
            let next: Vec<bool> = rules.bodies.iter().map(|b| only_empty(b, &empty)).collect();
            if next == empty {
                break;
            }
            empty = next;
        }
        Emitter { rules, regular, empty, hoisted: HashMap::new(), out: String::new() }
    }

    fn terminal_name(&self, id: usize) -> String {
        format!("G{id}_{}", self.rules.names[id].to_ascii_uppercase())
    }

    fn rule_name(&self, id: usize) -> String {
        format!("g{id}_{}", self.rules.names[id].to_ascii_lowercase())
    }

    fn emit(mut self) -> Result<String, GbnfErrorKind> {
        let root = self.rules.root;
        if self.empty[root] {
            return Err(GbnfErrorKind::EmptyRoot);
        }
        let start =
            if self.regular[root] { self.terminal_name(root) } else { self.rule_name(root) };
        let mut body = String::new();
        // The rules reachable from root, in order of definition.
        let n = self.rules.names.len();
        let mut used = vec![false; n];
        let mut stack = vec![root];
        while let Some(i) = stack.pop() {
            if !used[i] {
                used[i] = true;
                collect_refs(&self.rules.bodies[i], &mut stack);
            }
        }
        let ids: Vec<usize> = (0..n).filter(|&i| used[i] && !self.empty[i]).collect();
        for id in ids {
            let expr = &self.rules.bodies[id];
            if self.regular[id] {
                let text = self.terminal(expr).expect("a non-empty rule");
                let _ = writeln!(body, "{}: {text}", self.terminal_name(id));
            } else {
                let text = self.rule(expr).expect("a non-empty rule");
                let _ = writeln!(body, "{}: {text}", self.rule_name(id));
            }
        }
        let _ = writeln!(self.out, "start: {start}");
        self.out.push_str(&body);
        let mut hoisted: Vec<(&String, &String)> =
            self.hoisted.iter().map(|(body, name)| (name, body)).collect();
        hoisted.sort_by_key(|(name, _)| name[1..].parse::<usize>().unwrap_or(0));
        let mut tail = String::new();
        for (name, body) in hoisted {
            let _ = writeln!(tail, "{name}: {body}");
        }
        self.out.push_str(&tail);
        Ok(self.out)
    }

    fn is_regular(&self, e: &Expr) -> bool {
        match e {
            Expr::Literal(_) | Expr::Class { .. } => true,
            Expr::Rule(r) => self.regular[*r],
            Expr::Seq(items) | Expr::Alt(items) => items.iter().all(|i| self.is_regular(i)),
            Expr::Repeat { inner, .. } => self.is_regular(inner),
        }
    }

    /// `e` (regular) in terminal syntax; `None` for the empty string.
    fn terminal(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Literal(s) if s.is_empty() => None,
            Expr::Literal(s) => Some(quote(s)),
            Expr::Class { negated, ranges } => Some(class(*negated, ranges)),
            Expr::Rule(r) if self.empty[*r] => None,
            Expr::Rule(r) => Some(self.terminal_name(*r)),
            Expr::Seq(items) => join_seq(items.iter().map(|i| self.terminal(i))),
            Expr::Alt(alts) => join_alt(alts.iter().map(|a| self.terminal(a))),
            Expr::Repeat { inner, min, max } => repeat(self.terminal(inner)?, *min, *max),
        }
    }

    /// `e` in rule syntax, runs of regular items as terminals; `None` for
    /// the empty string.
    fn rule(&mut self, e: &Expr) -> Option<String> {
        if self.is_regular(e) {
            return match e {
                Expr::Rule(_) => self.terminal(e),
                _ => self.terminal(e).map(|t| self.hoist(t)),
            };
        }
        match e {
            Expr::Rule(r) if self.empty[*r] => None,
            Expr::Rule(r) => Some(self.rule_name(*r)),
            Expr::Seq(items) => {
                let mut parts = Vec::new();
                let mut run: Vec<Expr> = Vec::new();
                for item in items {
                    if self.is_regular(item) {
                        run.push(item.clone());
                        continue;
                    }
                    if !run.is_empty() {
                        parts.push(self.rule(&Expr::Seq(std::mem::take(&mut run))));
                    }
                    parts.push(self.rule(item));
                }
                if !run.is_empty() {
                    parts.push(self.rule(&Expr::Seq(run)));
                }
                join_seq(parts.into_iter())
            }
            Expr::Alt(alts) => {
                let parts: Vec<Option<String>> = alts.iter().map(|a| self.rule(a)).collect();
                join_alt(parts.into_iter())
            }
            Expr::Repeat { inner, min, max } => {
                let inner = self.rule(inner)?;
                repeat(inner, *min, *max)
            }
            Expr::Literal(_) | Expr::Class { .. } => unreachable!("literals are regular"),
        }
    }

    /// A terminal for the terminal text `body` (one per distinct body).
    fn hoist(&mut self, body: String) -> String {
        let next = self.hoisted.len();
        self.hoisted.entry(body).or_insert_with(|| format!("H{next}")).clone()
    }
}

/// How many copies of its innermost items nested repetitions in `e` ask
/// for at most: the product of their bounds (the minimum of an open one)
/// along the deepest nesting.
fn repetitions(e: &Expr) -> u64 {
    match e {
        Expr::Literal(_) | Expr::Class { .. } | Expr::Rule(_) => 1,
        Expr::Seq(items) | Expr::Alt(items) => items.iter().map(repetitions).max().unwrap_or(1),
        Expr::Repeat { inner, min, max } => {
            repetitions(inner).saturating_mul(u64::from(max.unwrap_or(*min).max(1)))
        }
    }
}

fn collect_refs(e: &Expr, out: &mut Vec<usize>) {
    match e {
        Expr::Literal(_) | Expr::Class { .. } => {}
        Expr::Rule(r) => out.push(*r),
        Expr::Seq(items) | Expr::Alt(items) => items.iter().for_each(|i| collect_refs(i, out)),
        Expr::Repeat { inner, .. } => collect_refs(inner, out),
    }
}

/// Whether `e` matches the empty string and nothing else, given the rules
/// known to.
fn only_empty(e: &Expr, empty: &[bool]) -> bool {
    match e {
        Expr::Literal(s) => s.is_empty(),
        Expr::Class { .. } => false,
        Expr::Rule(r) => empty[*r],
        Expr::Seq(items) | Expr::Alt(items) => items.iter().all(|i| only_empty(i, empty)),
        Expr::Repeat { inner, max, .. } => *max == Some(0) || only_empty(inner, empty),
    }
}

fn join_seq(parts: impl Iterator<Item = Option<String>>) -> Option<String> {
    let parts: Vec<String> = parts.flatten().collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn join_alt(parts: impl Iterator<Item = Option<String>>) -> Option<String> {
    let mut with_empty = false;
    let mut alts = Vec::new();
    for p in parts {
        match p {
            Some(p) => alts.push(p),
            None => with_empty = true,
        }
    }
    if alts.is_empty() {
        return None;
    }
    let alts = alts.join(" | ");
    Some(if with_empty { format!("({alts})?") } else { format!("({alts})") })
}

fn repeat(inner: String, min: u32, max: Option<u32>) -> Option<String> {
    let op = match (min, max) {
        (_, Some(0)) => return None,
        (0, None) => "*".to_string(),
        (1, None) => "+".to_string(),
        (0, Some(1)) => "?".to_string(),
        (m, None) => format!("{{{m},}}"),
        (m, Some(n)) if m == n => format!("{{{m}}}"),
        (m, Some(n)) => format!("{{{m},{n}}}"),
    };
    Some(format!("({inner}){op}"))
}

/// A Lark string literal (JSON string syntax) for `s`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Lark regex terminal for a character class (every character but ASCII
/// letters and digits written as `\x{..}`).
fn class(negated: bool, ranges: &[(char, char)]) -> String {
    let esc = |c: char| {
        if c.is_ascii_alphanumeric() { c.to_string() } else { format!("\\x{{{:x}}}", c as u32) }
    };
    if negated && ranges.is_empty() {
        return "/[\\x{0}-\\x{10ffff}]/".to_string();
    }
    let mut out = String::from("/[");
    if negated {
        out.push('^');
    }
    for &(lo, hi) in ranges {
        out.push_str(&esc(lo));
        if hi != lo {
            out.push('-');
            out.push_str(&esc(hi));
        }
    }
    out.push_str("]/");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> (usize, usize, GbnfErrorKind) {
        match gbnf_to_lark(text) {
            Err(StructuredError::InvalidGbnf { line, column, kind }) => (line, column, kind),
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn regular_roots_are_one_terminal() {
        let lark = gbnf_to_lark("root ::= [a-c]+ sep{2}\nsep ::= \",\" | \"-\"").unwrap();
        assert_eq!(
            lark,
            "start: G0_ROOT\nG0_ROOT: (/[a-c]/)+ (G1_SEP){2}\nG1_SEP: (\",\" | \"-\")\n"
        );
    }

    #[test]
    fn recursive_rules_stay_rules_with_runs_as_terminals() {
        let lark = gbnf_to_lark("root ::= \"(\" ws (root | [0-9]+) \")\"\nws ::= \" \"*").unwrap();
        assert_eq!(
            lark,
            "start: g0_root\ng0_root: H0 (g0_root | H1) H2\nG1_WS: (\" \")*\n\
             H0: \"(\" G1_WS\nH1: (/[0-9]/)+\nH2: \")\"\n"
        );
    }

    #[test]
    fn newlines_end_rules_except_inside_groups_and_after_bars() {
        let text =
            "root ::=\n  a |\n  ( b\n    c )  # comment\na ::= \"a\"\nb ::= \"b\"\nc ::= \"c\"\n";
        let lark = gbnf_to_lark(text).unwrap();
        assert!(lark.starts_with("start: G0_ROOT\nG0_ROOT: (G1_A | G2_B G3_C)\n"), "{lark}");
        // Inside parentheses a repetition's braces may span lines too.
        assert!(gbnf_to_lark("root ::= (\"a\"{2,\n 3} (\"b\"{40}){50})").is_ok());
        // A newline inside a top-level sequence ends the rule there.
        assert_eq!(
            kind("root ::= \"a\"\n  \"b\"\n"),
            (2, 3, GbnfErrorKind::Unexpected { expected: "a rule name", found: '"' })
        );
    }

    #[test]
    fn escapes_and_empty_alternatives() {
        let lark =
            gbnf_to_lark(r#"root ::= "\x41\u00e9\U0001F600\t\"\\" ( "x" | ) [\]\-^]"#).unwrap();
        assert_eq!(
            lark,
            "start: G0_ROOT\nG0_ROOT: \"Aé😀\\u0009\\\"\\\\\" (\"x\")? /[\\x{5d}\\x{2d}\\x{5e}]/\n"
        );
        let lark = gbnf_to_lark("root ::= [a-] . [^\\n]").unwrap();
        assert_eq!(
            lark,
            "start: G0_ROOT\nG0_ROOT: /[a\\x{2d}]/ /[\\x{0}-\\x{10ffff}]/ /[^\\x{a}]/\n"
        );
    }

    #[test]
    fn malformed_grammars_are_typed_errors_with_positions() {
        use GbnfErrorKind as K;
        let cases: Vec<(&str, (usize, usize, GbnfErrorKind))> = vec![
            ("root ::= foo", (1, 10, K::UndefinedRule("foo".into()))),
            ("a ::= \"x\"", (1, 1, K::NoRoot)),
            ("root ::= \"x\"\nroot ::= \"y\"", (2, 1, K::DuplicateRule("root".into()))),
            ("root ::= \"abc", (1, 14, K::UnexpectedEnd { expected: "a closing `\"`" })),
            ("root ::= [abc", (1, 14, K::UnexpectedEnd { expected: "a closing `]`" })),
            ("root ::= []", (1, 10, K::EmptyClass)),
            ("root ::= [z-a]", (1, 13, K::ReversedRange { start: 'z', end: 'a' })),
            ("root ::= \"\\q\"", (1, 11, K::UnknownEscape('q'))),
            ("root ::= \"\\x4\"", (1, 11, K::HexEscape { digits: 2 })),
            ("root ::= \"\\uD800\"", (1, 11, K::InvalidCodePoint(0xD800))),
            ("root ::= * \"a\"", (1, 10, K::NothingToRepeat('*'))),
            ("root ::= \"a\"{3,2}", (1, 17, K::RepetitionRange { min: 3, max: 2 })),
            ("root ::= \"a\"{2001}", (1, 14, K::TooManyRepetitions(2001))),
            ("root ::= ((\"a\"{50}){50})*", (1, 20, K::TooManyRepetitions(2500))),
            ("root ::= \"a\"{2,\n3}", (1, 16, K::Unexpected { expected: "`}`", found: '\n' })),
            (
                "root ::= \"a\"{x}",
                (1, 14, K::Unexpected { expected: "a repetition count", found: 'x' }),
            ),
            ("root ::= (\"a\"", (1, 14, K::UnexpectedEnd { expected: "`)`" })),
            (
                "root ::= \"a\")",
                (1, 13, K::Unexpected { expected: "a newline after the rule", found: ')' }),
            ),
            ("root = \"a\"", (1, 6, K::Unexpected { expected: "`::=`", found: '=' })),
            ("::= \"a\"", (1, 1, K::Unexpected { expected: "a rule name", found: ':' })),
            ("root ::= <[12]>", (1, 10, K::TokenReference)),
            ("root ::= \"\" | (\"\")*", (1, 1, K::EmptyRoot)),
            ("\n\n  root ::= x\n", (3, 12, K::UndefinedRule("x".into()))),
        ];
        for (text, expected) in cases {
            assert_eq!(kind(text), expected, "{text:?}");
        }
        let e = gbnf_to_lark("root ::= foo").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid GBNF grammar at line 1, column 10: undefined rule `foo`"
        );
    }
}
