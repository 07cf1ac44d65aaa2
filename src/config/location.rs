//! Error locations: a tree of the document's keys and values with their byte spans, which maps a serde error's
//! span to a field path and a rule's field path to a line.
use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

// The tree is built from toml_edit's document, the parser the toml crate deserializes from, through its public
// span accessors: a key, a value, an array and an explicit table (`[x]`, `[[x]]`, inline) carry their byte span;
// an implicit table (`a` in `[a.b]` or `a.b = 1`) has none, so a path through it takes the span of the deepest
// node that has one.

#[derive(Debug)]
pub(super) struct Node {
    span: Option<Range<usize>>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Table(Vec<(Key, Node)>),
    Array(Vec<Node>),
    Scalar,
}

#[derive(Debug)]
struct Key {
    name: String,
    span: Option<Range<usize>>,
}

/// The span tree of `text`; `None` when it is not valid TOML.
pub(super) fn tree(text: &str) -> Option<Node> {
    let doc = ImDocument::parse(text).ok()?;
    Some(table_node(doc.as_table()))
}

fn key(name: &str, key: Option<&toml_edit::Key>) -> Key {
    Key {
        name: name.to_string(),
        span: key.and_then(|k| k.span()),
    }
}

fn table_node(t: &Table) -> Node {
    let entries = t
        .iter()
        .map(|(name, v)| (key(name, t.key(name)), item_node(v)))
        .collect();
    Node {
        span: t.span(),
        kind: Kind::Table(entries),
    }
}

fn item_node(item: &Item) -> Node {
    match item {
        Item::Value(v) => value_node(v),
        Item::Table(t) => table_node(t),
        Item::ArrayOfTables(a) => Node {
            span: a.span(),
            kind: Kind::Array(a.iter().map(table_node).collect()),
        },
        Item::None => Node {
            span: None,
            kind: Kind::Scalar,
        },
    }
}

fn value_node(v: &Value) -> Node {
    let kind = match v {
        Value::Array(a) => Kind::Array(a.iter().map(value_node).collect()),
        Value::InlineTable(t) => Kind::Table(
            t.iter()
                .map(|(name, v)| (key(name, t.key(name)), value_node(v)))
                .collect(),
        ),
        _ => Kind::Scalar,
    };
    Node {
        span: v.span(),
        kind,
    }
}

pub(super) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The path of the smallest key or value span in the tree that contains `offset`.
fn locate(root: &Node, offset: usize) -> Option<String> {
    fn visit(node: &Node, path: &str, offset: usize, best: &mut Option<(usize, String)>) {
        fn consider(
            span: &Option<Range<usize>>,
            p: &str,
            offset: usize,
            best: &mut Option<(usize, String)>,
        ) {
            if let Some(s) = span {
                let hit = s.contains(&offset) || (s.is_empty() && s.start == offset);
                if hit && best.as_ref().is_none_or(|(len, _)| s.len() <= *len) {
                    *best = Some((s.len(), p.to_string()));
                }
            }
        }
        consider(&node.span, path, offset, best);
        match &node.kind {
            Kind::Table(entries) => {
                for (k, v) in entries {
                    let p = join(path, &k.name);
                    consider(&k.span, &p, offset, best);
                    visit(v, &p, offset, best);
                }
            }
            Kind::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    visit(v, &format!("{path}[{i}]"), offset, best);
                }
            }
            Kind::Scalar => {}
        }
    }
    let mut best = None;
    visit(root, "", offset, &mut best);
    best.map(|(_, p)| p)
}

/// Follows `path` (`tunnel[1].routes[0]`) in the tree as far as it exists. Returns the path to
/// display (an `[0]` index into a scalar written without brackets is dropped) and the span of
/// the deepest node found.
pub(super) fn resolve_path(root: &Node, path: &str) -> (String, Option<Range<usize>>) {
    let mut node = Some(root);
    let mut span = root.span.clone();
    let mut shown = String::new();
    for seg in path.split('.') {
        let (name, indices) = match seg.find('[') {
            Some(b) => (&seg[..b], &seg[b..]),
            None => (seg, ""),
        };
        let mut seg_shown = name.to_string();
        node = node.and_then(|n| match &n.kind {
            Kind::Table(entries) => entries.iter().find(|(k, _)| k.name == name).map(|(_, v)| v),
            _ => None,
        });
        if let Some(n) = node {
            if n.span.is_some() {
                span = n.span.clone();
            }
        }
        for ix in indices.split('[').filter(|s| !s.is_empty()) {
            let ix = ix.trim_end_matches(']');
            let i: usize = ix.parse().unwrap_or(usize::MAX);
            match node.map(|n| &n.kind) {
                Some(Kind::Array(items)) => {
                    seg_shown.push_str(&format!("[{ix}]"));
                    node = items.get(i);
                    if let Some(s) = node.and_then(|n| n.span.clone()) {
                        span = Some(s);
                    }
                }
                Some(_) if i == 0 => {} // `address = "x"` is element 0 of itself
                _ => {
                    seg_shown.push_str(&format!("[{ix}]"));
                    node = None;
                }
            }
        }
        shown = join(&shown, &seg_shown);
    }
    (shown, span)
}

/// Field path and message for a serde/TOML error.
pub(super) fn describe_toml_error(e: &toml::de::Error, tree: Option<&Node>) -> (String, String) {
    let msg = e.message().trim().to_string();
    let Some(tree) = tree else {
        return (String::new(), format!("invalid TOML: {msg}"));
    };
    let path = e
        .span()
        .and_then(|s| locate(tree, s.start))
        .unwrap_or_default();
    let quoted = |prefix: &str| -> Option<String> {
        let rest = msg.strip_prefix(prefix)?;
        Some(rest.split('`').next().unwrap_or("").to_string())
    };
    if let Some(k) = quoted("unknown field `") {
        let field = if path == k || path.ends_with(&format!(".{k}")) {
            path
        } else {
            join(&path, &k)
        };
        let rest = msg.split_once(", ").map_or("", |(_, r)| r);
        let msg = if rest.is_empty() {
            format!("unknown key `{k}`")
        } else {
            format!("unknown key `{k}`; {rest}")
        };
        return (field, msg);
    }
    if let Some(k) = quoted("missing field `") {
        return (join(&path, &k), format!("missing required key `{k}`"));
    }
    (path, msg)
}
