//! A message's ISO 20022 XML as the narrated demo shows it in a terminal: the Document
//! part on its own (indented as [`crate::iso20022::write`] indents it), the AppHdr's
//! values, and where each element sits, by its path.
//!
//! It reads the text that `iso20022::write` produced, which puts one element on a line
//! (`<Name attributes>text</Name>`, `<Name>` or `</Name>`): a view for people, not a parser
//! of other people's XML (that is `iso20022::read`).

/// One element of the written XML that holds text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leaf {
    /// Its path from the root, names joined by `/` (`Envelope/Document/FIToFICstmrCdtTrf/...`).
    pub path: String,
    /// Its attributes as written (`Ccy="IRR"`), empty when it has none.
    pub attributes: String,
    /// Its text as written (escaped).
    pub text: String,
}

/// The text-holding elements of `xml` (as `iso20022::write` writes it), in document order.
pub fn leaves(xml: &str) -> Vec<Leaf> {
    let mut open: Vec<&str> = Vec::new();
    let mut found = Vec::new();
    for line in xml.lines().map(str::trim) {
        if line.starts_with("<?") || !line.starts_with('<') {
            continue;
        }
        if line.starts_with("</") {
            open.pop();
            continue;
        }
        let tag_end = line.find('>').unwrap_or(line.len());
        let tag = line[1..tag_end].trim_end_matches('/');
        let (name, attributes) = tag.split_once(' ').unwrap_or((tag, ""));
        if let Some(close) = line.rfind("</").filter(|close| *close > tag_end) {
            let path = open.iter().chain([&name]).copied().collect::<Vec<_>>().join("/");
            found.push(Leaf {
                path,
                attributes: attributes.to_owned(),
                text: line[tag_end + 1..close].to_owned(),
            });
        } else if !line.ends_with("/>") {
            open.push(name);
        }
    }
    found
}

/// The first leaf at `path` or below it (`.../Dbtr` finds `.../Dbtr/Nm`).
pub fn leaf_at<'a>(leaves: &'a [Leaf], path: &str) -> Option<&'a Leaf> {
    leaves.iter().find(|leaf| {
        leaf.path.strip_prefix(path).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The `Document` element of `xml`, from its start tag to its end tag, moved left so that
/// its start tag begins the first line.
pub fn document_part(xml: &str) -> Option<Vec<String>> {
    let lines: Vec<&str> = xml.lines().collect();
    let start = lines.iter().position(|l| l.trim_start().starts_with("<Document"))?;
    let end = start + lines[start..].iter().position(|l| l.trim() == "</Document>")?;
    let margin = lines[start].len() - lines[start].trim_start().len();
    Some(lines[start..=end].iter().map(|l| l.get(margin..).unwrap_or(l.trim_start()).to_owned()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The view finds each element's path and text in the writer's layout, and the
    /// Document part alone, dedented: what the narration points to is really there.
    #[test]
    fn leaves_and_the_document_part_follow_the_writers_layout() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Envelope>\n  <AppHdr xmlns=\"h\">\n    \
                   <BizMsgIdr>M1</BizMsgIdr>\n  </AppHdr>\n  <Document xmlns=\"d\">\n    <Tx>\n      \
                   <Amt Ccy=\"IRR\">512250</Amt>\n      <Cdtr>\n        <Nm>A &amp; B</Nm>\n      </Cdtr>\n      \
                   <CdtrAgt>\n        <BICFI>IRBKIRTHXXX</BICFI>\n      </CdtrAgt>\n      <Empty/>\n    </Tx>\n  \
                   </Document>\n</Envelope>\n";
        let found = leaves(xml);
        let paths: Vec<&str> = found.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Envelope/AppHdr/BizMsgIdr",
                "Envelope/Document/Tx/Amt",
                "Envelope/Document/Tx/Cdtr/Nm",
                "Envelope/Document/Tx/CdtrAgt/BICFI"
            ]
        );
        assert_eq!(found[1].attributes, "Ccy=\"IRR\"");
        assert_eq!(found[1].text, "512250");
        assert_eq!(leaf_at(&found, "Envelope/Document/Tx/Cdtr").unwrap().text, "A &amp; B");
        assert_eq!(leaf_at(&found, "Envelope/Document/Tx/CdtrAgt").unwrap().text, "IRBKIRTHXXX");
        assert!(leaf_at(&found, "Envelope/Document/Tx/Cd").is_none(), "a path names whole elements");
        let document = document_part(xml).unwrap();
        assert_eq!(document.first().unwrap(), "<Document xmlns=\"d\">");
        assert_eq!(document[2], "    <Amt Ccy=\"IRR\">512250</Amt>");
        assert_eq!(document.last().unwrap(), "</Document>");
        assert!(document_part("<Envelope>\n</Envelope>").is_none());
    }
}
