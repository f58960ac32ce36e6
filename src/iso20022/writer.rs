//! A small XML writer: elements in the order the caller opens them, text escaped,
//! indented two spaces per level so that a person can read the output.

use std::fmt::Write as _;

/// Builds one XML text.
pub(crate) struct XmlWriter {
    out: String,
    open: Vec<&'static str>,
}

impl XmlWriter {
    /// A writer with the XML declaration written.
    pub(crate) fn new() -> Self {
        Self { out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"), open: Vec::new() }
    }

    fn indent(&mut self) {
        for _ in 0..self.open.len() {
            self.out.push_str("  ");
        }
    }

    /// Opens `name` with `attributes` (values escaped).
    pub(crate) fn open_with(&mut self, name: &'static str, attributes: &[(&str, &str)]) {
        self.indent();
        let _ = write!(self.out, "<{name}");
        for (key, value) in attributes {
            let _ = write!(self.out, " {key}=\"{}\"", quick_xml::escape::escape(*value));
        }
        self.out.push_str(">\n");
        self.open.push(name);
    }

    /// Opens `name`.
    pub(crate) fn open(&mut self, name: &'static str) {
        self.open_with(name, &[]);
    }

    /// Closes the element opened last.
    pub(crate) fn close(&mut self) {
        let name = self.open.pop().expect("close() follows an open()");
        self.indent();
        let _ = writeln!(self.out, "</{name}>");
    }

    /// `<name attributes>text</name>`, text and values escaped.
    pub(crate) fn leaf_with(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) {
        self.indent();
        let _ = write!(self.out, "<{name}");
        for (key, value) in attributes {
            let _ = write!(self.out, " {key}=\"{}\"", quick_xml::escape::escape(*value));
        }
        let _ = writeln!(self.out, ">{}</{name}>", quick_xml::escape::escape(text));
    }

    /// `<name/>`.
    pub(crate) fn empty(&mut self, name: &str) {
        self.indent();
        let _ = writeln!(self.out, "<{name}/>");
    }

    /// `<name>text</name>`, text escaped.
    pub(crate) fn leaf(&mut self, name: &str, text: &str) {
        self.leaf_with(name, &[], text);
    }

    /// The text; every element must be closed.
    pub(crate) fn finish(self) -> String {
        assert!(self.open.is_empty(), "unclosed elements: {:?}", self.open);
        self.out
    }
}
