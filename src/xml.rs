//! A small lossless XML tree on top of quick-xml.
//!
//! libvirt domain XML is edited in place: devaddr owns `<address>` elements and the
//! controllers it adds, and nothing else. The tree therefore keeps every node it reads —
//! text and whitespace, comments, CDATA, processing instructions, the declaration and the
//! doctype — byte for byte in their escaped form, and attribute values with their original
//! quote character, so writing an untouched tree reproduces the input.

use quick_xml::events::Event;
use quick_xml::Reader;

/// One attribute: name, escaped value as written, quote character.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub name: String,
    raw: String,
    quote: char,
}

/// A node of the tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    /// Character data, kept escaped exactly as read (entity references included).
    Text(String),
    /// Anything else (comment, CDATA, PI, declaration, doctype), kept verbatim with its
    /// delimiters.
    Other(String),
}

/// An element with its attributes in document order and its children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
    /// Written as `<x/>` in the input (kept so a round trip is byte-identical).
    self_closing: bool,
    /// 1-based line of the start tag in the input (0 for elements devaddr created).
    pub line: usize,
    /// Whitespace written before the start tag's closing `>` or `/>`.
    tag_tail: String,
}

/// A parsed document: the nodes before and after the root element and the root itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    prolog: Vec<Node>,
    pub root: Element,
    epilog: Vec<Node>,
}

/// Where and why XML could not be read.
#[derive(Debug)]
pub struct XmlError {
    pub line: usize,
    pub message: String,
}

fn escape_attr(value: &str, quote: char) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '\'' if quote == '\'' => s.push_str("&apos;"),
            '"' if quote == '"' => s.push_str("&quot;"),
            c => s.push(c),
        }
    }
    s
}

fn unescape(raw: &str) -> String {
    quick_xml::escape::unescape(raw)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| raw.to_string())
}

impl Attr {
    /// A new attribute (libvirt writes single quotes).
    pub fn new(name: &str, value: &str) -> Attr {
        Attr {
            name: name.to_string(),
            raw: escape_attr(value, '\''),
            quote: '\'',
        }
    }
    /// The unescaped value.
    pub fn value(&self) -> String {
        unescape(&self.raw)
    }
}

impl Element {
    /// A new, empty element.
    pub fn new(name: &str) -> Element {
        Element {
            name: name.to_string(),
            attrs: Vec::new(),
            children: Vec::new(),
            self_closing: true,
            line: 0,
            tag_tail: String::new(),
        }
    }

    /// Builder: add an attribute.
    pub fn with_attr(mut self, name: &str, value: &str) -> Element {
        self.set_attr(name, value);
        self
    }

    /// The unescaped value of an attribute.
    pub fn attr(&self, name: &str) -> Option<String> {
        self.attrs.iter().find(|a| a.name == name).map(Attr::value)
    }

    /// Set (or replace in place) an attribute.
    pub fn set_attr(&mut self, name: &str, value: &str) {
        match self.attrs.iter_mut().find(|a| a.name == name) {
            Some(a) => a.raw = escape_attr(value, a.quote),
            None => self.attrs.push(Attr::new(name, value)),
        }
    }

    /// Child elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The first child element with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// Mutable access to the first child element with this name.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        self.children.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.name == name => Some(e),
            _ => None,
        })
    }

    /// The whitespace that precedes child elements (detected from the first indented
    /// child), or the parent's indentation plus two spaces.
    fn child_indent(&self, own_indent: &str) -> String {
        for (i, n) in self.children.iter().enumerate() {
            if let Node::Element(_) = n {
                if i > 0 {
                    if let Node::Text(t) = &self.children[i - 1] {
                        if let Some(pos) = t.rfind('\n') {
                            return t[pos + 1..].to_string();
                        }
                    }
                }
            }
        }
        format!("{own_indent}  ")
    }

    /// Insert `child` as the element child number `pos` (counting elements only; `pos`
    /// past the end appends), with indentation matching the siblings. `own_indent` is the
    /// indentation of `self`'s own start tag.
    pub fn insert_element(&mut self, pos: usize, child: Element, own_indent: &str) {
        let indent = self.child_indent(own_indent);
        let has_elements = self.elements().next().is_some();
        if !has_elements {
            // Empty or text-only element: lay it out afresh when it is whitespace-only.
            if self
                .children
                .iter()
                .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
            {
                self.children = vec![
                    Node::Text(format!("\n{indent}")),
                    Node::Element(child),
                    Node::Text(format!("\n{own_indent}")),
                ];
            } else {
                self.children.push(Node::Element(child));
            }
            self.self_closing = false;
            return;
        }
        // Find the node index of the pos-th element (or the end after the last element).
        let mut seen = 0;
        let mut node_at = None;
        let mut last_el = 0;
        for (i, n) in self.children.iter().enumerate() {
            if let Node::Element(_) = n {
                if seen == pos {
                    node_at = Some(i);
                    break;
                }
                seen += 1;
                last_el = i;
            }
        }
        match node_at {
            Some(i) => {
                // Before element i: element, then the same whitespace that preceded i.
                self.children.insert(i, Node::Text(format!("\n{indent}")));
                self.children.insert(i, Node::Element(child));
            }
            None => {
                let at = last_el + 1;
                self.children.insert(at, Node::Element(child));
                self.children.insert(at, Node::Text(format!("\n{indent}")));
            }
        }
    }

    /// Replace the first child element named `name`, or append one.
    pub fn replace_or_append(&mut self, child: Element, own_indent: &str) {
        let name = child.name.clone();
        for n in self.children.iter_mut() {
            if let Node::Element(e) = n {
                if e.name == name {
                    *e = child;
                    return;
                }
            }
        }
        let n = self.elements().count();
        self.insert_element(n, child, own_indent);
    }

    fn write(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for a in &self.attrs {
            out.push(' ');
            out.push_str(&a.name);
            out.push('=');
            out.push(a.quote);
            out.push_str(&a.raw);
            out.push(a.quote);
        }
        out.push_str(&self.tag_tail);
        if self.children.is_empty() && self.self_closing {
            out.push_str("/>");
            return;
        }
        out.push('>');
        for c in &self.children {
            c.write(out);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

impl Element {
    /// Write the element indented by two spaces per level, dropping whitespace-only
    /// text (for documents devaddr builds itself).
    pub fn pretty(&self, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        let kids: Vec<&Node> = self
            .children
            .iter()
            .filter(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()))
            .collect();
        out.push_str(&pad);
        let mut bare = self.clone();
        bare.children.clear();
        bare.self_closing = true;
        bare.tag_tail.clear();
        if kids.is_empty() {
            bare.write(out);
            out.push('\n');
            return;
        }
        let mut open = String::new();
        bare.write(&mut open);
        out.push_str(open.trim_end_matches("/>"));
        out.push('>');
        if kids.iter().all(|n| !matches!(n, Node::Element(_))) {
            for k in kids {
                k.write(out);
            }
        } else {
            out.push('\n');
            for k in kids {
                match k {
                    Node::Element(e) => e.pretty(depth + 1, out),
                    other => {
                        out.push_str(&pad);
                        out.push_str("  ");
                        other.write(out);
                        out.push('\n');
                    }
                }
            }
            out.push_str(&pad);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push_str(">\n");
    }

    /// Parse a single element from text.
    pub fn parse(text: &str) -> Result<Element, XmlError> {
        Document::parse(text).map(|d| d.root)
    }
}

impl Node {
    fn write(&self, out: &mut String) {
        match self {
            Node::Element(e) => e.write(out),
            Node::Text(t) | Node::Other(t) => out.push_str(t),
        }
    }
}

fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn start_element(
    text: &str,
    e: &quick_xml::events::BytesStart,
    pos: usize,
) -> Result<Element, XmlError> {
    let raw_tag: &[u8] = e.as_bytes();
    let name = e.name().as_ref().to_string();
    let mut el = Element::new(&name);
    el.line = line_of(text, pos);
    let raw = e.as_bytes();
    let keep = raw
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    if keep > 0 && keep < raw.len() {
        el.tag_tail = String::from_utf8_lossy(&raw[raw.len() - keep..]).into_owned();
    }
    for a in e.attributes().with_checks(true) {
        let a = a.map_err(|err| XmlError {
            line: el.line,
            message: format!("bad attribute in <{name}>: {err}"),
        })?;
        let value: &[u8] = a.value.as_bytes();
        // The quote is the byte before the value inside the raw tag.
        let quote = {
            let base = raw_tag.as_ptr() as usize;
            let at = value.as_ptr() as usize;
            if at > base && at <= base + raw_tag.len() {
                raw_tag[at - base - 1] as char
            } else {
                '\''
            }
        };
        el.attrs.push(Attr {
            name: a.key.as_ref().to_string(),
            raw: a.value.to_string(),
            quote: if quote == '"' { '"' } else { '\'' },
        });
    }
    Ok(el)
}

impl Document {
    /// Parse a whole document.
    pub fn parse(text: &str) -> Result<Document, XmlError> {
        let mut reader = Reader::from_str(text);
        reader.config_mut().trim_text(false);
        reader.config_mut().check_end_names = true;
        let mut stack: Vec<Element> = Vec::new();
        let mut prolog = Vec::new();
        let mut epilog = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let pos = reader.buffer_position() as usize;
            let ev = reader.read_event().map_err(|e| XmlError {
                line: line_of(text, reader.error_position() as usize),
                message: e.to_string(),
            })?;
            let node = match ev {
                Event::Eof => break,
                Event::Start(e) => {
                    let mut el = start_element(text, &e, pos)?;
                    el.self_closing = false;
                    stack.push(el);
                    continue;
                }
                Event::End(_) => {
                    let el = stack.pop().expect("quick-xml checks end names");
                    Node::Element(el)
                }
                Event::Empty(e) => Node::Element(start_element(text, &e, pos)?),
                Event::Text(t) => Node::Text(t.to_string()),
                Event::GeneralRef(r) => Node::Text(format!("&{};", &*r)),
                Event::CData(c) => Node::Other(format!("<![CDATA[{}]]>", &*c)),
                Event::Comment(c) => Node::Other(format!("<!--{}-->", &*c)),
                Event::Decl(d) => Node::Other(format!("<?{}?>", &*d)),
                Event::PI(p) => Node::Other(format!("<?{}?>", &*p)),
                Event::DocType(d) => Node::Other(format!("<!DOCTYPE {}>", &*d)),
            };
            match (stack.last_mut(), node) {
                (Some(parent), n) => parent.children.push(n),
                (None, Node::Element(e)) => {
                    if root.is_some() {
                        return Err(XmlError {
                            line: e.line,
                            message: format!("a second root element <{}>", e.name),
                        });
                    }
                    root = Some(e);
                }
                (None, n) => {
                    if root.is_none() {
                        prolog.push(n)
                    } else {
                        epilog.push(n)
                    }
                }
            }
        }
        if let Some(open) = stack.last() {
            return Err(XmlError {
                line: open.line,
                message: format!("<{}> is never closed", open.name),
            });
        }
        let root = root.ok_or(XmlError {
            line: 1,
            message: "no root element".into(),
        })?;
        Ok(Document {
            prolog,
            root,
            epilog,
        })
    }

    /// Write the document back.
    pub fn write(&self) -> String {
        let mut out = String::new();
        for n in &self.prolog {
            n.write(&mut out);
        }
        self.root.write(&mut out);
        for n in &self.epilog {
            n.write(&mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_byte_identical() {
        let text = "<?xml version=\"1.0\"?>\n<!-- c -->\n<domain type='kvm' x=\"a'b\" >\n  <name>a &amp; b</name>\n  <e></e>\n  <f/>\n  <![CDATA[<x>]]>\n</domain>\n";
        let d = Document::parse(text).unwrap();
        assert_eq!(d.write(), text);
        assert_eq!(d.root.attr("x").unwrap(), "a'b");
        assert!(d.root.child("name").is_some());
    }

    #[test]
    fn insert_keeps_indentation() {
        let text = "<devices>\n    <disk/>\n    <memballoon model='virtio'/>\n  </devices>";
        let mut d = Document::parse(text).unwrap();
        d.root.insert_element(1, Element::new("controller"), "  ");
        let mb = d.root.children.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.name == "memballoon" => Some(e),
            _ => None,
        });
        mb.unwrap()
            .insert_element(0, Element::new("address").with_attr("type", "pci"), "    ");
        assert_eq!(
            d.write(),
            "<devices>\n    <disk/>\n    <controller/>\n    <memballoon model='virtio'>\n      <address type='pci'/>\n    </memballoon>\n  </devices>"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = Document::parse("<a>\n<b>\n</a>").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
    }
}
