//! A safe XML reader: bytes in, a small tree of elements out, each element with its
//! namespace, its path from the root and a mark that says whether the mapping read it.
//!
//! The reader refuses a document type declaration (so no entity is ever defined, let alone
//! expanded), any entity but the five predefined ones and character references, input
//! larger than [`XML_BYTES_MAX`], nesting deeper than [`XML_DEPTH_MAX`] and more than
//! [`XML_ELEMENTS_MAX`] elements. The mapping reads the tree through [`Element`]'s methods,
//! which mark what they read; whatever stays unmarked is what Corridor does not carry.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

use super::{XML_BYTES_MAX, XmlError};

/// Deepest nesting of elements read: ISO 20022 messages nest about 12 deep.
pub const XML_DEPTH_MAX: usize = 32;
/// Most elements in one message: a statement of a few thousand entries fits.
pub const XML_ELEMENTS_MAX: usize = 200_000;

/// The XML Schema instance namespace: its attributes (`xsi:schemaLocation`) are hints
/// for validators, not content.
const XSI_NAMESPACE: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Elements whose path always carries an index, because the schema lets them repeat: the
/// index in `CdtTrfTxInf[1]` then says which transaction an error is about.
const INDEXED: &[&str] =
    &["CdtTrfTxInf", "TxInfAndSts", "TxInf", "Stmt", "Ntry", "Bal", "Undrlyg", "CxlDtls"];

/// One attribute of an element (namespace declarations and `xsi:` hints are not kept).
#[derive(Debug)]
pub(crate) struct Attribute {
    name: String,
    value: String,
    read: Cell<bool>,
}

/// One element: namespace, local name, attributes, text and children.
#[derive(Debug)]
pub(crate) struct Element {
    /// Shared by every element in the same namespace: one allocation per namespace.
    namespace: Rc<str>,
    name: String,
    path: String,
    attributes: Vec<Attribute>,
    text: String,
    children: Vec<Element>,
    read: Cell<bool>,
}

/// Parses `input` into its root element, safely (see the module doc).
pub(crate) fn parse(input: &[u8]) -> Result<Element, XmlError> {
    if input.len() > XML_BYTES_MAX {
        return Err(XmlError::TooLarge { bytes: input.len() });
    }
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let text = std::str::from_utf8(input).map_err(|e| XmlError::NotXml {
        position: e.valid_up_to() as u64,
        detail: "the input is not UTF-8 (Corridor reads ISO 20022 messages in UTF-8)".into(),
    })?;
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut namespaces: Vec<Rc<str>> = vec![Rc::from("")];
    loop {
        let position = reader.buffer_position();
        let not_xml = |detail: String| XmlError::NotXml { position, detail };
        let (resolved, event) = reader.read_resolved_event().map_err(|e| not_xml(e.to_string()))?;
        let namespace = match resolved {
            _ if !matches!(event, Event::Start(_) | Event::Empty(_)) => Rc::clone(&namespaces[0]),
            ResolveResult::Bound(ns) => intern(&mut namespaces, ns.as_ref()),
            ResolveResult::Unbound => Rc::clone(&namespaces[0]),
            ResolveResult::Unknown(prefix) => {
                return Err(not_xml(format!("undeclared namespace prefix {prefix:?}")));
            }
        };
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(not_xml("content after the root element".into()));
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                count += 1;
                if count > XML_ELEMENTS_MAX {
                    return Err(not_xml(format!("more than {XML_ELEMENTS_MAX} elements")));
                }
                if stack.len() >= XML_DEPTH_MAX {
                    return Err(not_xml(format!("elements nest deeper than {XML_DEPTH_MAX}")));
                }
                let element = open(&reader, start, namespace).map_err(not_xml)?;
                stack.push(element);
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root);
                }
            }
            Event::End(_) => close(&mut stack, &mut root),
            Event::Text(text) => push_text(&mut stack, &text.xml10_content()).map_err(not_xml)?,
            Event::CData(data) => push_text(&mut stack, &data.xml10_content()).map_err(not_xml)?,
            Event::GeneralRef(reference) => {
                let resolved = if reference.is_char_ref() {
                    reference.resolve_char_ref().map_err(|e| not_xml(e.to_string()))?.map(String::from)
                } else {
                    quick_xml::escape::resolve_predefined_entity(&reference).map(str::to_owned)
                };
                let resolved =
                    resolved.ok_or_else(|| not_xml(format!("undefined entity &{};", &*reference)))?;
                push_text(&mut stack, &resolved).map_err(not_xml)?;
            }
            Event::DocType(_) => return Err(XmlError::DocumentType),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    let mut root = root.ok_or_else(|| XmlError::NotXml {
        position: reader.buffer_position(),
        detail: "no root element".into(),
    })?;
    if !stack.is_empty() {
        return Err(XmlError::NotXml {
            position: reader.buffer_position(),
            detail: "unclosed element".into(),
        });
    }
    root.path = format!("/{}", root.name);
    assign_paths(&mut root)?;
    Ok(root)
}

/// The shared copy of `namespace` (a message uses two or three).
fn intern(namespaces: &mut Vec<Rc<str>>, namespace: &str) -> Rc<str> {
    if let Some(known) = namespaces.iter().find(|n| &***n == namespace) {
        return Rc::clone(known);
    }
    let new: Rc<str> = Rc::from(namespace);
    namespaces.push(Rc::clone(&new));
    new
}

/// A new element from its start tag, with its attributes.
fn open(reader: &NsReader<&[u8]>, start: &BytesStart<'_>, namespace: Rc<str>) -> Result<Element, String> {
    let name = start.local_name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let key = attribute.key;
        if key.as_namespace_binding().is_some() {
            continue;
        }
        let (attribute_namespace, local) = reader.resolver().resolve_attribute(key);
        if matches!(attribute_namespace, ResolveResult::Bound(ns) if ns.as_ref() == XSI_NAMESPACE) {
            continue;
        }
        let value =
            attribute.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| e.to_string())?;
        attributes.push(Attribute {
            name: local.as_ref().to_owned(),
            value: value.into_owned(),
            read: Cell::new(false),
        });
    }
    Ok(Element {
        namespace,
        name,
        path: String::new(),
        attributes,
        text: String::new(),
        children: Vec::new(),
        read: Cell::new(false),
    })
}

fn close(stack: &mut Vec<Element>, root: &mut Option<Element>) {
    let element = stack.pop().expect("the reader checks that every end tag matches a start tag");
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

fn push_text(stack: &mut [Element], text: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(element) => {
            element.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err("text outside the root element".into()),
    }
}

/// Gives every element below `parent` its path; refuses text mixed with elements, which
/// no ISO 20022 message has.
fn assign_paths(parent: &mut Element) -> Result<(), XmlError> {
    if !parent.children.is_empty() && !parent.text.trim().is_empty() {
        return Err(XmlError::invalid(&parent.path, "holds both text and elements"));
    }
    let paths = child_paths(parent);
    for (child, path) in parent.children.iter_mut().zip(paths) {
        child.path = path;
        assign_paths(child)?;
    }
    Ok(())
}

/// Most children counted by scanning their siblings; a parent with more (a statement's
/// entries) counts them in a map, so that paths stay linear in the number of elements.
const SIBLINGS_SCANNED_MAX: usize = 32;

/// The path of each child of `parent`: `name`, or `name[index]` (1-based) for a name that
/// repeats or may repeat.
fn child_paths(parent: &Element) -> Vec<String> {
    let children = &parent.children;
    let scan = children.len() <= SIBLINGS_SCANNED_MAX;
    let mut totals: HashMap<&str, usize> = HashMap::new();
    if !scan {
        for child in children {
            *totals.entry(child.name.as_str()).or_default() += 1;
        }
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    children
        .iter()
        .enumerate()
        .map(|(position, child)| {
            let name = child.name.as_str();
            let (index, total) = if scan {
                let before = children[..position].iter().filter(|c| c.name == name).count();
                (before + 1, before + 1 + children[position + 1..].iter().filter(|c| c.name == name).count())
            } else {
                let index = seen.entry(name).or_default();
                *index += 1;
                (*index, totals[name])
            };
            if INDEXED.contains(&name) || total > 1 {
                format!("{}/{name}[{index}]", parent.path)
            } else {
                format!("{}/{name}", parent.path)
            }
        })
        .collect()
}

impl Element {
    /// The local name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The namespace URI (empty when none).
    pub(crate) fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The path from the root, as errors name it.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// Marks this element as read.
    pub(crate) fn mark(&self) -> &Self {
        self.read.set(true);
        self
    }

    /// Marks this element as not read again: a value read only to be checked, which the
    /// message then does not carry, is reported whole by [`Element::unread`].
    pub(crate) fn forget(&self) -> &Self {
        self.read.set(false);
        self
    }

    /// An [`XmlError::Invalid`] about this element.
    pub(crate) fn invalid(&self, rule: impl Into<String>) -> XmlError {
        XmlError::invalid(&self.path, rule)
    }

    /// Checks that the children named in `order` (a complex type's sequence, as its
    /// schema gives it) come in that order; children not named are left to the caller.
    pub(crate) fn ordered(&self, order: &[&str]) -> Result<&Self, XmlError> {
        let mut last: Option<(usize, &str)> = None;
        for child in self.children.iter().filter(|c| c.namespace == self.namespace) {
            let Some(position) = order.iter().position(|name| *name == child.name) else { continue };
            if let Some((before, before_name)) = last
                && position < before
            {
                return Err(child.invalid(format!("must come before {before_name}, in the schema's order")));
            }
            last = Some((position, order[position]));
        }
        Ok(self)
    }

    /// The first child named `name` in this element's namespace, without marking it.
    pub(crate) fn peek(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name && c.namespace == self.namespace)
    }

    /// The children, without marking them.
    pub(crate) fn children(&self) -> &[Element] {
        &self.children
    }

    /// The first child named `name`, marked as read, if there is one.
    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.peek(name).map(Element::mark)
    }

    /// The child named `name`, marked; an error naming its path when it is missing.
    pub(crate) fn required(&self, name: &str) -> Result<&Element, XmlError> {
        self.child(name).ok_or_else(|| XmlError::invalid(format!("{}/{name}", self.path), "is required"))
    }

    /// The descendant at `names` (each a child of the one before), marking each step.
    pub(crate) fn required_at(&self, names: &[&str]) -> Result<&Element, XmlError> {
        names.iter().try_fold(self, |element, name| element.required(name))
    }

    /// The text content, exactly as written (marks the element).
    pub(crate) fn text(&self) -> &str {
        self.mark();
        &self.text
    }

    /// The text content without surrounding white space, without marking the element.
    pub(crate) fn peek_text(&self) -> &str {
        self.text.trim()
    }

    /// The text content without surrounding white space, for codes, numbers and ids.
    pub(crate) fn token(&self) -> &str {
        self.text().trim()
    }

    /// The attribute `name`, marked; an error naming its path when it is missing.
    pub(crate) fn attribute(&self, name: &str) -> Result<&str, XmlError> {
        let attribute = self.attributes.iter().find(|a| a.name == name);
        let attribute =
            attribute.ok_or_else(|| XmlError::invalid(format!("{}/@{name}", self.path), "is required"))?;
        attribute.read.set(true);
        Ok(attribute.value.trim())
    }

    /// The paths of everything below and including this element that the mapping did not
    /// read, outermost first: an unread element is reported whole, not its contents.
    pub(crate) fn unread(&self) -> Vec<String> {
        let mut paths = Vec::new();
        self.collect_unread(&mut paths);
        paths
    }

    fn collect_unread(&self, paths: &mut Vec<String>) {
        if !self.read.get() {
            paths.push(self.path.clone());
            return;
        }
        for attribute in self.attributes.iter().filter(|a| !a.read.get()) {
            paths.push(format!("{}/@{}", self.path, attribute.name));
        }
        for child in &self.children {
            child.collect_unread(paths);
        }
    }
}
