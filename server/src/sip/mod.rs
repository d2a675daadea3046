//! TEMPORARY compile stub; replaced by the real module.
#![allow(missing_docs, dead_code, unused_variables)]
use bytes::Bytes;
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers(Vec<(String, String)>);
impl Headers {
    pub fn get(&self, name: &str) -> Option<&str> { todo!() }
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a { self.0.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str()) }
    pub fn push(&mut self, name: &str, value: impl Into<String>) { todo!() }
    pub fn set(&mut self, name: &str, value: impl Into<String>) { todo!() }
}
#[derive(Debug, Clone, PartialEq)]
pub struct Request { pub method: String, pub uri: String, pub headers: Headers, pub body: Bytes }
#[derive(Debug, Clone, PartialEq)]
pub struct Response { pub code: u16, pub reason: String, pub headers: Headers, pub body: Bytes }
#[derive(Debug, Clone, PartialEq)]
pub enum SipMessage { Request(Request), Response(Response) }
#[derive(Debug, Clone)]
pub struct ParseError { pub reason: String }
impl std::fmt::Display for ParseError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { todo!() } }
pub fn parse(raw: &[u8]) -> Result<SipMessage, ParseError> { todo!() }
pub fn response_for(req: &Request, code: u16, reason: &str) -> Response { todo!() }
impl Request {
    pub fn call_id(&self) -> Option<&str> { todo!() }
    pub fn cseq(&self) -> Option<(u32, &str)> { todo!() }
    pub fn from_tag(&self) -> Option<&str> { todo!() }
    pub fn to_tag(&self) -> Option<&str> { todo!() }
    pub fn from_uri(&self) -> Option<String> { todo!() }
    pub fn to_uri(&self) -> Option<String> { todo!() }
    pub fn contact_uri(&self) -> Option<String> { todo!() }
    pub fn content_type(&self) -> Option<&str> { todo!() }
    pub fn encode(&self) -> Bytes { todo!() }
}
impl Response {
    pub fn call_id(&self) -> Option<&str> { todo!() }
    pub fn cseq(&self) -> Option<(u32, &str)> { todo!() }
    pub fn to_tag(&self) -> Option<&str> { todo!() }
    pub fn encode(&self) -> Bytes { todo!() }
    pub fn with_to_tag(self, tag: &str) -> Self { todo!() }
    pub fn with_header(self, name: &str, value: impl Into<String>) -> Self { todo!() }
    pub fn with_body(self, ct: &str, body: impl Into<Bytes>) -> Self { todo!() }
}
pub struct Framer;
#[derive(Debug)]
pub struct FramingError;
impl std::fmt::Display for FramingError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { todo!() } }
impl Framer {
    pub fn new(max: usize) -> Self { Framer }
    pub fn push(&mut self, data: &[u8]) {}
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FramingError> { todo!() }
}
