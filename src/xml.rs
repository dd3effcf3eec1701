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

    /// Remove the first child element named `name` (with the whitespace before it);
    /// whether there was one.
    pub fn remove_first(&mut self, name: &str) -> bool {
        let Some(i) = self
            .children
            .iter()
            .position(|n| matches!(n, Node::Element(e) if e.name == name))
        else {
            return false;
        };
        self.children.remove(i);
        if i > 0 && matches!(&self.children[i - 1], Node::Text(t) if t.trim().is_empty()) {
            self.children.remove(i - 1);
        }
        true
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

/// Line numbers of increasing byte positions, counted incrementally (the whole document
/// is scanned once, however many elements it has).
struct Lines<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, pos: usize) -> usize {
        let pos = pos.min(self.text.len());
        if pos < self.pos {
            return line_of(std::str::from_utf8(self.text).unwrap_or(""), pos);
        }
        self.line += self.text[self.pos..pos]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.pos = pos;
        self.line
    }
}

fn err(line: usize, message: impl Into<String>) -> XmlError {
    XmlError {
        line,
        message: message.into(),
    }
}

/// XML 1.0 `Char`: what a document may contain, literally or by reference.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The first character XML 1.0 does not allow (NUL, most controls, U+FFFE/U+FFFF).
fn check_chars(text: &str) -> Result<(), XmlError> {
    match text.char_indices().find(|(_, c)| !xml_char(*c)) {
        None => Ok(()),
        Some((at, c)) => Err(err(
            line_of(text, at),
            format!(
                "character U+{:04X} at byte offset {at} is not allowed in XML",
                c as u32
            ),
        )),
    }
}

fn name_start(c: char) -> bool {
    matches!(c, ':' | 'A'..='Z' | '_' | 'a'..='z' | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}'
        | '\u{F8}'..='\u{2FF}' | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}'
        | '\u{200C}'..='\u{200D}' | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}'
        | '\u{3001}'..='\u{D7FF}' | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}'
        | '\u{10000}'..='\u{EFFFF}')
}

/// An XML 1.0 `Name` (element and attribute names).
fn is_name(s: &str) -> bool {
    let mut cs = s.chars();
    cs.next().is_some_and(name_start)
        && cs.all(|c| {
            name_start(c)
                || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}'
                    | '\u{203F}'..='\u{2040}')
        })
}

/// Check one entity or character reference (`name` without `&` and `;`): the five
/// predefined entities, or a character reference to a character XML allows.
fn check_reference(name: &str) -> Result<(), String> {
    if matches!(name, "lt" | "gt" | "amp" | "apos" | "quot") {
        return Ok(());
    }
    if let Some(num) = name.strip_prefix('#') {
        let value = match num.strip_prefix('x') {
            Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u32::from_str_radix(h, 16).ok()
            }
            None if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) => num.parse().ok(),
            _ => return Err(format!("malformed character reference `&{name};`")),
        };
        return match value.and_then(char::from_u32).filter(|&c| xml_char(c)) {
            Some(_) => Ok(()),
            None => Err(format!(
                "character reference `&{name};` names a character XML does not allow"
            )),
        };
    }
    Err(format!(
        "undefined entity `&{name};`; expected one of &lt; &gt; &amp; &apos; &quot; or a \
         character reference"
    ))
}

/// Every reference in escaped text (attribute values, character data) is valid, and
/// no `<` appears in an attribute value.
fn check_escaped(raw: &str, attr: bool) -> Result<(), String> {
    if attr && raw.contains('<') {
        return Err("`<` is not allowed in an attribute value".into());
    }
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        let after = &rest[i + 1..];
        let Some(end) = after.find(';') else {
            return Err("`&` that starts no reference; expected &amp;".into());
        };
        check_reference(&after[..end])?;
        rest = &after[end + 1..];
    }
    Ok(())
}

fn start_element(e: &quick_xml::events::BytesStart, line: usize) -> Result<Element, XmlError> {
    let raw_tag: &[u8] = e.as_bytes();
    let name = e.name().as_ref().to_string();
    if !is_name(&name) {
        return Err(err(line, format!("`{name}` is not a valid element name")));
    }
    let mut el = Element::new(&name);
    el.line = line;
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
        let key = a.key.as_ref().to_string();
        if !is_name(&key) {
            return Err(err(
                el.line,
                format!("attribute name `{key}` in <{name}> is not a valid XML name"),
            ));
        }
        check_escaped(&a.value, true)
            .map_err(|m| err(el.line, format!("attribute `{key}` of <{name}>: {m}")))?;
        el.attrs.push(Attr {
            name: key,
            raw: a.value.to_string(),
            quote: if quote == '"' { '"' } else { '\'' },
        });
    }
    Ok(el)
}

impl Document {
    /// Parse a whole document, as strictly as libxml2 (libvirt's parser): only XML
    /// characters, only the predefined entities and valid character references, XML
    /// names, no duplicate attributes, matching end tags, one root element with nothing
    /// but comments, processing instructions and whitespace around it, and elements
    /// nested at most [`crate::limits::MAX_XML_DEPTH`] deep.
    pub fn parse(text: &str) -> Result<Document, XmlError> {
        check_chars(text)?;
        let mut lines = Lines {
            text: text.as_bytes(),
            pos: 0,
            line: 1,
        };
        let mut reader = Reader::from_str(text);
        reader.config_mut().trim_text(false);
        reader.config_mut().check_end_names = true;
        reader.config_mut().check_comments = true;
        let mut stack: Vec<Element> = Vec::new();
        let mut prolog = Vec::new();
        let mut epilog = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let pos = reader.buffer_position() as usize;
            let ev = match reader.read_event() {
                Ok(ev) => ev,
                Err(e) => {
                    let at = reader.error_position() as usize;
                    return Err(err(lines.at(at), e.to_string()));
                }
            };
            let line = lines.at(pos);
            let node = match ev {
                Event::Eof => break,
                Event::Start(e) => {
                    if stack.len() >= crate::limits::MAX_XML_DEPTH {
                        return Err(err(
                            line,
                            format!(
                                "elements nested more than {} levels deep (libxml2's limit)",
                                crate::limits::MAX_XML_DEPTH
                            ),
                        ));
                    }
                    let mut el = start_element(&e, line)?;
                    el.self_closing = false;
                    stack.push(el);
                    continue;
                }
                Event::End(_) => match stack.pop() {
                    Some(el) => Node::Element(el),
                    None => return Err(err(line, "end tag without a start tag")),
                },
                Event::Empty(e) => Node::Element(start_element(&e, line)?),
                Event::Text(t) => {
                    let raw = t.to_string();
                    check_escaped(&raw, false).map_err(|m| err(line, m))?;
                    Node::Text(raw)
                }
                Event::GeneralRef(r) => {
                    let name = r.to_string();
                    check_reference(&name).map_err(|m| err(line, m))?;
                    Node::Text(format!("&{name};"))
                }
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
                        return Err(err(
                            e.line,
                            format!(
                                "a second root element <{}>; expected nothing but comments \
                                 after the root element",
                                e.name
                            ),
                        ));
                    }
                    root = Some(e);
                }
                (None, n) => {
                    let stray = match &n {
                        Node::Text(t) => !t.trim().is_empty(),
                        Node::Other(o) => o.starts_with("<![CDATA["),
                        Node::Element(_) => false,
                    };
                    if stray {
                        return Err(err(
                            line,
                            if root.is_some() {
                                "content after the root element; expected only comments, \
                                 processing instructions and whitespace"
                            } else {
                                "content before the root element; expected a start tag"
                            },
                        ));
                    }
                    if root.is_none() {
                        prolog.push(n)
                    } else {
                        epilog.push(n)
                    }
                }
            }
        }
        if let Some(open) = stack.last() {
            return Err(err(
                open.line,
                format!("<{}> is never closed (the document ends first)", open.name),
            ));
        }
        let root = root.ok_or_else(|| err(lines.at(text.len()), "no root element"))?;
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
