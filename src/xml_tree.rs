//! A small, bounded reader of XML bodies from the network (RFC 7865 metadata, RFC 4575
//! conference state) into a tree of the elements of the namespaces the caller reads: elements
//! of other namespaces are skipped with their whole subtree, size, depth and element count are
//! limited, and only the predefined entities and character references are resolved.

use quick_xml::NsReader;
use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use thiserror::Error;

/// The limits a document must keep within.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_elements: usize,
    pub max_depth: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TreeError {
    #[error("the document is {len} bytes, more than the {max} accepted")]
    TooLarge { len: usize, max: usize },
    #[error("the document nests elements deeper than {0}")]
    TooDeep(usize),
    #[error("the document has more than {0} elements")]
    TooManyElements(usize),
    #[error("not well-formed XML: {0}")]
    Xml(String),
    #[error("the undefined entity &{0};")]
    UnknownEntity(String),
    #[error("no root element")]
    Empty,
    /// The root element is in a namespace the caller does not read.
    #[error("the root element <{element}> is in another namespace")]
    ForeignRoot {
        element: String,
        namespace: Option<String>,
    },
}

/// An element of the namespaces read, reduced to names, unqualified attributes and text.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Element {
    /// The local name.
    pub name: String,
    /// The namespace it was in, if any (read for the root, to say what was sent).
    pub namespace: Option<String>,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// An unqualified attribute's value, trimmed.
    pub fn attribute(&self, name: &str) -> Option<String> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.trim().to_owned())
    }

    /// The first of `attributes` present.
    pub fn attribute_any(&self, attributes: &[&str]) -> Option<String> {
        attributes.iter().find_map(|wanted| self.attribute(wanted))
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |child| child.name == name)
    }

    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// The trimmed text of the first child called `name`.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(|child| child.text.trim().to_owned())
    }

    pub fn children_text(&self, name: &str) -> Vec<String> {
        self.children_named(name)
            .map(|child| child.text.trim().to_owned())
            .collect()
    }
}

/// Reads `xml` into the tree of its elements in `namespaces` (and of no namespace, for
/// senders that omit `xmlns`). The root must be one of them.
pub fn read(xml: &str, namespaces: &[&str], limits: Limits) -> Result<Element, TreeError> {
    if xml.len() > limits.max_bytes {
        return Err(TreeError::TooLarge {
            len: xml.len(),
            max: limits.max_bytes,
        });
    }
    let mut reader = NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    let mut open: Vec<Element> = Vec::new();
    // Depth inside an element of a foreign namespace, whose whole subtree is ignored.
    let mut skipping = 0usize;
    let mut element_count = 0usize;
    let mut root = None;
    loop {
        let (namespace, event) = reader
            .read_resolved_event()
            .map_err(|error| TreeError::Xml(error.to_string()))?;
        let namespace = match namespace {
            ResolveResult::Unbound => None,
            ResolveResult::Bound(namespace) => Some(namespace.as_ref().to_owned()),
            ResolveResult::Unknown(prefix) => Some(format!("the undeclared prefix {prefix}")),
        };
        let ours = namespace
            .as_deref()
            .is_none_or(|namespace| namespaces.contains(&namespace));
        let collecting = skipping == 0;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err(TreeError::Xml("element after the root element".into()));
                }
                element_count += 1;
                if element_count > limits.max_elements {
                    return Err(TreeError::TooManyElements(limits.max_elements));
                }
                if open.len() + skipping >= limits.max_depth {
                    return Err(TreeError::TooDeep(limits.max_depth));
                }
                if open.is_empty() && skipping == 0 && !ours {
                    return Err(TreeError::ForeignRoot {
                        element: start.local_name().as_ref().to_owned(),
                        namespace,
                    });
                }
                if collecting && ours {
                    let mut element = element_of(&start)?;
                    element.namespace = namespace;
                    open.push(element);
                } else {
                    skipping += 1;
                }
            }
            Event::End(_) => {
                if skipping > 0 {
                    skipping -= 1;
                    continue;
                }
                let closed = open
                    .pop()
                    .ok_or_else(|| TreeError::Xml("unmatched end tag".into()))?;
                match open.last_mut() {
                    Some(parent) => parent.children.push(closed),
                    None => root = Some(closed),
                }
            }
            Event::Text(text) => {
                if let Some(element) = open.last_mut().filter(|_| collecting) {
                    element.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(element) = open.last_mut().filter(|_| collecting) {
                    element.text.push_str(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = reference
                    .resolve_char_ref()
                    .map_err(|error| TreeError::Xml(error.to_string()))?;
                let mut buffer = [0u8; 4];
                let replacement = match resolved {
                    Some(character) => &*character.encode_utf8(&mut buffer),
                    None => resolve_predefined_entity(&reference)
                        .ok_or_else(|| TreeError::UnknownEntity(reference.to_string()))?,
                };
                if let Some(element) = open.last_mut().filter(|_| collecting) {
                    element.text.push_str(replacement);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(unclosed) = open.last() {
        return Err(TreeError::Xml(format!(
            "document ends inside <{}>",
            unclosed.name
        )));
    }
    if skipping > 0 {
        return Err(TreeError::Xml("document ends inside an element".into()));
    }
    root.ok_or(TreeError::Empty)
}

fn element_of(start: &BytesStart<'_>) -> Result<Element, TreeError> {
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| TreeError::Xml(error.to_string()))?;
        // The formats read here use unqualified attributes; prefixed ones (xml:lang, xmlns:x)
        // are not theirs.
        if attribute.key.prefix().is_some() {
            continue;
        }
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|error| TreeError::Xml(error.to_string()))?;
        let name = attribute.key.local_name().as_ref().to_owned();
        attributes.push((name, value.into_owned()));
    }
    Ok(Element {
        name: start.local_name().as_ref().to_owned(),
        attributes,
        ..Element::default()
    })
}
