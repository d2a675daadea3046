//! The element codec the commands share: a parsed XML element ([`Elem`]), read by
//! [`DataParser`] (attribute and child lookups whose errors name the command) and
//! written back by [`Elem::write`].
//!
//! A command's body travels as an [`Elem`] (`<cmd id seqid><data>…</data></cmd>`,
//! [`super::Body::Cmd`]); each command family decodes its `<data>` from it and encodes
//! its typed request into one (`crate::cmd`, the mini-redis `Frame` of this protocol).

use super::codes;

/// Why a body could not be parsed, with whatever addressing information was
/// readable before the defect, so the server can still send an error reply
/// (see [`XccosError::to_rpl`]). `Display` prints `reason`.
///
/// Codes: 400 for not-well-formed XML, wrong root element or namespace, missing
/// or non-numeric `envid`, not exactly one child, an unknown message element,
/// or a known command with missing/invalid data; 413 for a body over
/// [`super::MAX_BODY`]; 501 for a `cmd` with an unknown id (from `crate::cmd::decode`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct XccosError {
    /// Reply code to answer with (see [`codes`]).
    pub code: u16,
    /// The envelope's `envid`, if it was readable.
    pub envid: Option<u64>,
    /// The `id` of the `cmd` (or `"grpchat"` for a `grpchat`), if readable.
    pub cmd_id: Option<String>,
    /// The `seqid` of the `cmd`/`grpchat`, if readable.
    pub seqid: Option<u64>,
    /// Precise description of the defect, e.g. `cmd:join: missing chanid or chanib in data`.
    pub reason: String,
}

/// A room named in a command (`XCCOS.md` "Identifiers"):
/// `<chanib uri="ma-chan://D/G"/>` or `<chanid key="0" domain="D" value="G"/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChanRef {
    /// `<chanib uri="ma-chan://D/G"/>`: the full room URI.
    Uri(String),
    /// `<chanid key="K" domain="D" value="G"/>`: the URI split into domain and
    /// room GUID; `key` is the position in a batch (0, 1, 2, …).
    Id {
        /// Position in the batch (`key` attribute).
        key: u32,
        /// Room domain, e.g. `contoso.com`.
        domain: String,
        /// Room GUID.
        value: String,
    },
}

impl ChanRef {
    /// The room URI: `Uri(u)` => `u`, `Id` => `"ma-chan://{domain}/{value}"`.
    pub fn to_uri(&self) -> String {
        match self {
            ChanRef::Uri(u) => u.clone(),
            ChanRef::Id { domain, value, .. } => format!("ma-chan://{domain}/{value}"),
        }
    }
}

/// The reply id for any command id: `"cmd:X"` => `"rpl:X"`, except
/// `"cmd:getserverinfo"` => `"rpl:getservinfo"` and the file-token commands
/// `"cmd:getfutok"`/`"cmd:getfdtok"` => `"rpl:getftok"` (`XCCOS.md` table).
/// Any other id (without the `cmd:` prefix) gets `"rpl:"` prepended.
/// Used to address error replies to commands the parser could not fully decode.
pub fn reply_id_for(cmd_id: &str) -> String {
    match cmd_id {
        "cmd:getserverinfo" => "rpl:getservinfo".to_owned(),
        "cmd:getfutok" | "cmd:getfdtok" => "rpl:getftok".to_owned(),
        _ => match cmd_id.strip_prefix("cmd:") {
            Some(rest) => format!("rpl:{rest}"),
            None => format!("rpl:{cmd_id}"),
        },
    }
}

/// `"true"` or `"false"`.
pub(crate) fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// The XCCOS writer: [`crate::xml::XmlWriter`] (quick-xml's `Writer`, the XML 1.0
/// character rules) appending to the caller's buffer; the envelope and every element of
/// it are written through it ([`Elem::write`], `xccos/write.rs`).
pub type W<'a> = crate::xml::XmlWriter<&'a mut Vec<u8>>;

/// A parsed element: local name, attributes (full names, unescaped values, in document
/// order), child elements and the concatenation of its own text/CDATA/references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Elem {
    /// Local name, e.g. `data`.
    pub name: String,
    /// Attributes in document order.
    pub attrs: Vec<(String, String)>,
    /// Child elements in document order.
    pub children: Vec<Elem>,
    /// The element's own text (unescaped).
    pub text: String,
}

impl Elem {
    /// An element named `name` without attributes, children or text.
    pub fn new(name: &str) -> Elem {
        Elem {
            name: name.to_owned(),
            ..Elem::default()
        }
    }

    /// `self` with the attribute `key="value"` appended.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Elem {
        self.attrs.push((key.to_owned(), value.into()));
        self
    }

    /// `self` with `key="value"` appended when `value` is `Some`.
    pub fn with_opt(self, key: &str, value: Option<&String>) -> Elem {
        match value {
            Some(v) => self.with(key, v.as_str()),
            None => self,
        }
    }

    /// `self` with `child` appended.
    pub fn push(mut self, child: Elem) -> Elem {
        self.children.push(child);
        self
    }

    /// `<data>` holding `children` (`<data/>` when there are none).
    pub fn data(children: impl IntoIterator<Item = Elem>) -> Elem {
        let mut d = Elem::new("data");
        d.children.extend(children);
        d
    }

    /// The value of attribute `key`, if present.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Elem> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The children named `name`, in order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Elem> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Appends the element: `<name a="v"…/>` when it has neither text nor children,
    /// else `<name a="v"…>text children</name>`; values escaped by [`crate::xml`].
    pub fn write(&self, w: &mut W<'_>) {
        w.open(&self.name);
        for (k, v) in &self.attrs {
            w.attr(k, v);
        }
        if self.children.is_empty() && self.text.is_empty() {
            w.slash_gt();
            return;
        }
        w.gt();
        if !self.text.is_empty() {
            w.text(&self.text);
        }
        for c in &self.children {
            c.write(w);
        }
        w.close(&self.name);
    }
}

/// `<chanib uri="…"/>` or `<chanid key domain value/>`: a room named in a command.
pub fn chanref_elem(c: &ChanRef) -> Elem {
    match c {
        ChanRef::Uri(uri) => Elem::new("chanib").with("uri", uri.as_str()),
        ChanRef::Id { key, domain, value } => Elem::new("chanid")
            .with("key", key.to_string())
            .with("domain", domain.as_str())
            .with("value", value.as_str()),
    }
}

/// Strict unsigned decimal (surrounding XML whitespace allowed; no sign).
pub fn parse_u64(s: &str) -> Option<u64> {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// [`parse_u64`] within `u32`.
pub fn parse_u32(s: &str) -> Option<u32> {
    parse_u64(s).and_then(|v| u32::try_from(v).ok())
}

/// `true`/`1` or `false`/`0` (case-insensitive, XML whitespace allowed).
pub fn parse_bool(s: &str) -> Option<bool> {
    let t = s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
    if t.eq_ignore_ascii_case("true") || t == "1" {
        Some(true)
    } else if t.eq_ignore_ascii_case("false") || t == "0" {
        Some(false)
    } else {
        None
    }
}

/// Reads one command's `<data>`: lookups that fail with a 400 [`XccosError`] whose
/// reason starts with the command id (`cmd:join: missing chanid or chanib in data`)
/// and which carries the envelope's addressing (envid, command id, seqid).
pub struct DataParser<'a> {
    /// The command's wire id, e.g. `cmd:join`.
    pub id: &'a str,
    /// The envelope's envid, the command's seqid (for error replies).
    envid: Option<u64>,
    seqid: Option<u64>,
}

impl<'a> DataParser<'a> {
    /// A parser for command `id` in envelope `envid` with `seqid`.
    pub fn new(id: &'a str, envid: Option<u64>, seqid: Option<u64>) -> DataParser<'a> {
        DataParser { id, envid, seqid }
    }
    /// An error with `code` and `reason` (not prefixed), addressed to the command.
    pub fn err(&self, code: u16, reason: impl Into<String>) -> XccosError {
        XccosError {
            code,
            envid: self.envid,
            cmd_id: Some(self.id.to_owned()),
            seqid: self.seqid,
            reason: reason.into(),
        }
    }
    /// A 400 whose reason is `"{id}: {what}"`.
    pub fn bad(&self, what: impl std::fmt::Display) -> XccosError {
        self.err(codes::BAD_REQUEST, format!("{}: {what}", self.id))
    }
    /// The `<data>` element; error when absent.
    pub fn data<'e>(&self, data: Option<&'e Elem>) -> Result<&'e Elem, XccosError> {
        data.ok_or_else(|| self.bad("missing data element"))
    }
    /// The first child `name` of `el`; error when absent.
    pub fn child<'e>(&self, el: &'e Elem, name: &str) -> Result<&'e Elem, XccosError> {
        el.child(name)
            .ok_or_else(|| self.bad(format!("missing {name} in {}", el.name)))
    }
    /// Attribute `key` of `el`; error when absent.
    pub fn attr<'e>(&self, el: &'e Elem, key: &str) -> Result<&'e str, XccosError> {
        el.attr(key)
            .ok_or_else(|| self.bad(format!("missing {key} attribute on {}", el.name)))
    }
    /// Attribute `key` of `el` read by `parse`; error when absent, or when `parse`
    /// refuses it (`"{el} {key} \"{v}\" is not {what}"`).
    pub fn typed_attr<T>(
        &self,
        el: &Elem,
        key: &str,
        parse: fn(&str) -> Option<T>,
        what: &str,
    ) -> Result<T, XccosError> {
        let v = self.attr(el, key)?;
        parse(v).ok_or_else(|| self.bad(format!("{} {key} \"{v}\" is not {what}", el.name)))
    }
    /// Attribute `key` of `el` as `u32`; error when absent or not a number.
    pub fn u32_attr(&self, el: &Elem, key: &str) -> Result<u32, XccosError> {
        self.typed_attr(el, key, parse_u32, "an unsigned 32-bit integer")
    }
    /// Attribute `key` of `el` as `u64`; error when absent or not a number.
    pub fn u64_attr(&self, el: &Elem, key: &str) -> Result<u64, XccosError> {
        self.typed_attr(el, key, parse_u64, "an unsigned integer")
    }
    /// The first `chanib`/`chanid` child of `d`; error when there is none.
    pub fn first_chanref(&self, d: &Elem) -> Result<ChanRef, XccosError> {
        match d
            .children
            .iter()
            .find(|c| c.name == "chanib" || c.name == "chanid")
        {
            Some(c) => self.chanref(c, 0),
            None => Err(self.bad("missing chanid or chanib in data")),
        }
    }
    /// `chanib uri` or `chanid key domain value`; a missing `key` is the batch position.
    pub fn chanref(&self, c: &Elem, pos: usize) -> Result<ChanRef, XccosError> {
        if c.name == "chanib" {
            return Ok(ChanRef::Uri(self.attr(c, "uri")?.to_owned()));
        }
        let key = match c.attr("key") {
            None => u32::try_from(pos).unwrap_or(u32::MAX),
            Some(_) => self.u32_attr(c, "key")?,
        };
        Ok(ChanRef::Id {
            key,
            domain: self.attr(c, "domain")?.to_owned(),
            value: self.attr(c, "value")?.to_owned(),
        })
    }
}

/// A command field carried in one XML attribute (the `<"el"> { … = req|opt "attr" }`
/// form of `cmd::command!`): its decoder and encoder.
pub trait AttrValue: Sized + Default {
    /// Attribute `key` of `el`; a 400 from `p` when absent or malformed.
    fn req(p: &DataParser<'_>, el: &Elem, key: &str) -> Result<Self, XccosError>;
    /// As [`AttrValue::req`], but the type's default (`""`, `0`, `false`) when absent.
    fn opt(p: &DataParser<'_>, el: &Elem, key: &str) -> Result<Self, XccosError> {
        match el.attr(key) {
            None => Ok(Self::default()),
            Some(_) => Self::req(p, el, key),
        }
    }
    /// The attribute's text as written (`req` reads it back unchanged).
    fn to_attr(&self) -> String;
}

impl AttrValue for String {
    fn req(p: &DataParser<'_>, el: &Elem, key: &str) -> Result<Self, XccosError> {
        p.attr(el, key).map(str::to_owned)
    }
    fn to_attr(&self) -> String {
        self.clone()
    }
}

impl AttrValue for u64 {
    fn req(p: &DataParser<'_>, el: &Elem, key: &str) -> Result<Self, XccosError> {
        p.u64_attr(el, key)
    }
    fn to_attr(&self) -> String {
        self.to_string()
    }
}

impl AttrValue for bool {
    fn req(p: &DataParser<'_>, el: &Elem, key: &str) -> Result<Self, XccosError> {
        p.typed_attr(el, key, parse_bool, "true or false")
    }
    fn to_attr(&self) -> String {
        self.to_string()
    }
}
