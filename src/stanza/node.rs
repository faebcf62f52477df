//! The generic stanza node both input forms map to: an XML element, or the JSON node client
//! libraries hold in memory (`{"tag", "attrs", "content"}`).

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;

use super::StanzaError;

/// What a node holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// Child elements.
    Children(Vec<Node>),
    /// Binary content (JSON nodes carry it as base64).
    Bytes(Vec<u8>),
    /// Text content (XML): may be hex or base64 of binary content.
    Text(String),
    /// Nothing.
    Empty,
}

/// One element of a stanza.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The element name.
    pub tag: String,
    /// Its attributes.
    pub attrs: BTreeMap<String, String>,
    /// Its content.
    pub content: Content,
}

/// Largest stanza accepted, in bytes of XML or JSON.
pub const MAX_STANZA_BYTES: usize = 64 * 1024;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 16;

impl Node {
    /// Parses an XML stanza.
    pub fn from_xml(xml: &str) -> Result<Node, StanzaError> {
        if xml.len() > MAX_STANZA_BYTES {
            return Err(StanzaError::TooLarge(xml.len()));
        }
        let doc =
            roxmltree::Document::parse(xml).map_err(|e| StanzaError::NotXml(e.to_string()))?;
        Self::from_element(doc.root_element(), 0)
    }

    fn from_element(e: roxmltree::Node<'_, '_>, depth: usize) -> Result<Node, StanzaError> {
        if depth > MAX_DEPTH {
            return Err(StanzaError::TooDeep);
        }
        let attrs = e
            .attributes()
            .map(|a| (a.name().to_owned(), a.value().to_owned()))
            .collect();
        let children: Vec<Node> = e
            .children()
            .filter(|c| c.is_element())
            .map(|c| Self::from_element(c, depth + 1))
            .collect::<Result<_, _>>()?;
        let content = if !children.is_empty() {
            Content::Children(children)
        } else {
            let text: String = e
                .children()
                .filter(|c| c.is_text())
                .filter_map(|c| c.text())
                .collect();
            let text = text.trim();
            if text.is_empty() {
                Content::Empty
            } else {
                Content::Text(text.to_owned())
            }
        };
        Ok(Node {
            tag: e.tag_name().name().to_owned(),
            attrs,
            content,
        })
    }

    /// Reads a JSON node: `{"tag": "call", "attrs": {...}, "content": [nodes] | "<base64>"}`.
    pub fn from_json(value: &Value) -> Result<Node, StanzaError> {
        let size = json_size(value);
        if size > MAX_STANZA_BYTES {
            return Err(StanzaError::TooLarge(size));
        }
        Self::from_json_at(value, "node", 0)
    }

    fn from_json_at(value: &Value, path: &str, depth: usize) -> Result<Node, StanzaError> {
        if depth > MAX_DEPTH {
            return Err(StanzaError::TooDeep);
        }
        let bad = |what: &str| StanzaError::BadNode(format!("{path}: {what}"));
        let obj = value.as_object().ok_or_else(|| bad("expected an object"))?;
        let tag = obj
            .get("tag")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("tag must be a string"))?
            .to_owned();
        let mut attrs = BTreeMap::new();
        match obj.get("attrs") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err(bad(&format!("attrs.{k} must be a string"))),
                    };
                    attrs.insert(k.clone(), v);
                }
            }
            Some(_) => return Err(bad("attrs must be an object")),
        }
        let content = match obj.get("content") {
            None | Some(Value::Null) => Content::Empty,
            Some(Value::Array(items)) => Content::Children(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Self::from_json_at(c, &format!("{path}.content[{i}]"), depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Some(Value::String(b64)) => Content::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| bad("content must be base64 bytes or an array of nodes"))?,
            ),
            Some(_) => return Err(bad("content must be base64 bytes or an array of nodes")),
        };
        Ok(Node {
            tag,
            attrs,
            content,
        })
    }

    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }

    /// A required attribute, or an error naming the element and attribute.
    pub fn required(&self, name: &'static str) -> Result<&str, StanzaError> {
        self.attr(name).ok_or(StanzaError::MissingAttribute {
            element: self.tag.clone(),
            attribute: name,
        })
    }

    /// The child elements.
    pub fn children(&self) -> &[Node] {
        match &self.content {
            Content::Children(c) => c,
            _ => &[],
        }
    }

    /// The first child named `tag`.
    pub fn child(&self, tag: &str) -> Option<&Node> {
        self.children().iter().find(|c| c.tag == tag)
    }

    /// Binary content: bytes from JSON, or XML text read as hex (when it is all hex digits
    /// of even length) or else as base64.
    pub fn binary(&self) -> Option<Vec<u8>> {
        match &self.content {
            Content::Bytes(b) => Some(b.clone()),
            Content::Text(t) => {
                let t: String = t.chars().filter(|c| !c.is_whitespace()).collect();
                if t.len() % 2 == 0 && t.chars().all(|c| c.is_ascii_hexdigit()) {
                    (0..t.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).ok())
                        .collect()
                } else {
                    base64::engine::general_purpose::STANDARD.decode(&t).ok()
                }
            }
            _ => None,
        }
    }
}

/// The length of `value` written as compact JSON, counted without writing it anywhere.
fn json_size(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}
