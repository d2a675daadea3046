//! The XCCOS client library: a Persistent Chat client over any byte stream (turmoil's
//! simulated TCP or real TCP), as the seed's clients behave (call-flows.md sign-in):
//! SUBSCRIBE for provisioning, INVITE/ACK, commands in INFO with replies matched by
//! envid, grpchat posts, relayed messages and notices collected in an inbox.
//!
//! A reader task answers the server's INFOs with 200 OK at once (XCCOS.md, SIP layer)
//! and queues everything for [`Client`]; every message both ways is recorded in the
//! run's [`Transcript`]. INFOs answered 503 are retried after `Retry-After`.

use crate::transcript::Transcript;
use bytes::Bytes;
use pchat_server::cmd::{Cmd, CmdKind};
use pchat_server::ids::IdGen;
use pchat_server::sip::{encode_response_for, parse_frame, Framer, Request, Response, SipMessage};
use pchat_server::xccos::{self, Body, Envelope, GrpChat, Rpl};
use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// How long a client waits for a response, reply or relayed message by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Most retries of one request (after 503, or after no answer within
/// [`RETRY_SILENCE`]).
pub const MAX_RETRIES: u32 = 5;

/// A request unanswered this long is sent again (same body, so a post keeps its envid
/// and the server de-duplicates it; new CSeq and branch, RFC 3261 8.1.3.5).
pub const RETRY_SILENCE: Duration = Duration::from_secs(2);

/// What the reader task queues: an item, or the body of an INFO (already answered
/// 200 OK) whose XCCOS is parsed only when a [`Client::wait_for`] or
/// [`Client::drain_ready`] looks at it. Most relays in a large run are never looked at
/// (a post waits for its own response), and parsing each one was ~15 % of the
/// simulator's time (issue 14).
#[derive(Debug)]
struct Queued {
    /// The item; `None` until `body` is parsed.
    item: Option<Incoming>,
    /// The INFO body (empty for other items).
    body: Bytes,
}

impl Queued {
    fn ready(item: Incoming) -> Queued {
        Queued {
            item: Some(item),
            body: Bytes::new(),
        }
    }

    fn info(body: Bytes) -> Queued {
        Queued { item: None, body }
    }

    /// The item, parsing the INFO body the first time.
    fn item(&mut self) -> &Incoming {
        self.item
            .get_or_insert_with(|| match xccos::parse(&self.body) {
                Ok(env) => Incoming::Xccos(env),
                Err(e) => Incoming::BadXccos(e.reason),
            })
    }

    fn into_item(mut self) -> Incoming {
        self.item();
        self.item.unwrap_or(Incoming::Closed)
    }

    fn is_closed(&self) -> bool {
        matches!(self.item, Some(Incoming::Closed))
    }
}

/// Something the server sent.
// Incoming items live briefly in a per-client queue; boxing the envelope would only add
// an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A response to one of our requests.
    Response(Response),
    /// An XCCOS document the server sent in an INFO (already answered 200 OK).
    Xccos(Envelope),
    /// An INFO whose body did not parse as XCCOS (answered 200 OK), with the reason.
    BadXccos(String),
    /// A message from the server that did not parse (e.g. a 400 that could not echo a
    /// Call-ID the request lacked), with the reason.
    Unparsed(Bytes, String),
    /// The connection closed.
    Closed,
}

/// A client failure, with a message that says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ClientError> {
    Err(ClientError(msg.into()))
}

/// The client's side of its INVITE dialog.
#[derive(Debug, Clone)]
pub struct ClientDialog {
    /// Call-ID.
    pub call_id: String,
    /// Our From header value (with our tag).
    pub from: String,
    /// Their To header value (with their tag).
    pub to: String,
    /// Where in-dialog requests go (the 200 OK's Contact).
    pub target: String,
    /// Our CSeq counter.
    pub cseq: u32,
}

impl ClientDialog {
    /// A request inside this dialog (RFC 3261 12.2.1.1): to the remote target, with our
    /// From and their To (both tagged), the Call-ID, CSeq `cseq method` and `via`.
    fn request(&self, method: &str, cseq: u32, via: String) -> Request {
        let mut req = Request {
            method: method.into(),
            uri: self.target.clone(),
            headers: Default::default(),
            body: Bytes::new(),
        };
        req.headers.push("Via", via);
        req.headers.push("Max-Forwards", "70");
        req.headers.push("From", self.from.clone());
        req.headers.push("To", self.to.clone());
        req.headers.push("Call-ID", self.call_id.clone());
        req.headers.push("CSeq", format!("{cseq} {method}"));
        req
    }
}

/// A signed-in (or signing-in) client on one connection.
pub struct Client {
    /// Label in transcripts, e.g. `user1`.
    pub name: String,
    /// The user's SIP URI, e.g. `sip:user1@contoso.com`.
    pub uri: String,
    /// The user's domain.
    pub domain: String,
    local: String,
    out: mpsc::Sender<Bytes>,
    incoming: mpsc::Receiver<Queued>,
    buffered: VecDeque<Queued>,
    ids: IdGen,
    envid: u64,
    cseq: u32,
    /// The INVITE dialog once established.
    pub dialog: Option<ClientDialog>,
    /// Where to INVITE (from provisioning or requri); `sip:pchat@<domain>` until known.
    pub pool_uri: String,
    transcript: Transcript,
    /// How long to wait for anything.
    pub timeout: Duration,
    closed: bool,
    /// Call-IDs of dialogs we abandoned (`reconnect`): their INFOs get 487.
    stale: Arc<Mutex<BTreeSet<String>>>,
    /// The reader and writer tasks: aborted when the client is dropped, so dropping a
    /// client closes its connection (the server then drops its dialogs).
    tasks: [tokio::task::AbortHandle; 2],
    /// The password answering SIP Digest challenges (401); `None`: a 401 is returned
    /// to the caller as it is.
    pub password: Option<String>,
    /// What this user's client remembers of SIP Digest across its connections (the
    /// last challenge, nonce-count and Authorization), shared by the connections of one
    /// scenario client: a new connection answers the remembered challenge at once
    /// (RFC 3261 22.3, credentials sent before a challenge).
    pub digest: Arc<Mutex<DigestCache>>,
    /// Whether this connection has authenticated (a request answered with credentials
    /// got something else than 401).
    authenticated: bool,
    /// Whether this connection has sent credentials (then it answers challenges only).
    sent_credentials: bool,
    /// `TCP` or `TLS`: the transport in our Via, and (lower-case) in our Contact.
    pub transport: &'static str,
}

/// What a client remembers of SIP Digest: the last challenge it answered, the
/// nonce-count of its last Authorization (RFC 2617 3.2.2) and that Authorization's
/// value (the raw-step placeholder `{authorization}`, for replay scenarios).
#[derive(Debug, Clone, Default)]
pub struct DigestCache {
    /// The challenge last answered (reused on a new connection).
    pub challenge: Option<crate::auth::Challenge>,
    /// Nonce-count of the last Authorization sent.
    pub nc: u32,
    /// The last Authorization value sent.
    pub last_authorization: Option<String>,
}

impl Drop for Client {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Client {
    /// Starts a client on `stream`. `local` is our `host:port` (Via, Contact);
    /// `seed` seeds our Call-IDs, tags, branches and envids.
    pub fn start<S>(
        name: &str,
        uri: &str,
        stream: S,
        local: &str,
        seed: u64,
        transcript: Transcript,
    ) -> Client
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (r, w) = tokio::io::split(stream);
        let (out_tx, out_rx) = mpsc::channel::<Bytes>(1024);
        let (in_tx, in_rx) = mpsc::channel::<Queued>(4096);
        let stale: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let writer = tokio::spawn(write_loop(w, out_rx)).abort_handle();
        let reader = tokio::spawn(read_loop(
            r,
            in_tx,
            out_tx.clone(),
            name.to_string(),
            transcript.clone(),
            stale.clone(),
        ))
        .abort_handle();
        let mut ids = IdGen::new(seed);
        let envid = ids.envid_start();
        let domain = uri
            .rsplit_once('@')
            .map(|(_, d)| d.to_string())
            .unwrap_or_default();
        Client {
            name: name.to_string(),
            uri: uri.to_string(),
            pool_uri: format!("sip:pchat@{domain}"),
            domain,
            local: local.to_string(),
            out: out_tx,
            incoming: in_rx,
            buffered: VecDeque::new(),
            ids,
            envid,
            cseq: 0,
            dialog: None,
            transcript,
            timeout: DEFAULT_TIMEOUT,
            closed: false,
            stale,
            tasks: [reader, writer],
            password: None,
            digest: Arc::default(),
            authenticated: false,
            sent_credentials: false,
            transport: "TCP",
        }
    }

    /// The run's transcript this client records into.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// Our `host:port` as put in Via and Contact.
    pub fn local_addr(&self) -> &str {
        &self.local
    }

    /// Sends raw bytes (recorded in the transcript as they are).
    pub async fn send_bytes(&mut self, bytes: Bytes) -> Result<(), ClientError> {
        self.transcript
            .record_bytes(&self.name, "server", bytes.clone());
        self.out
            .send(bytes)
            .await
            .or_else(|_| err(format!("{}: connection closed while sending", self.name)))
    }

    /// Waits for the first incoming item matching `pred` (others stay queued, in order).
    /// Errors: timeout, or the connection closed first.
    pub async fn wait_for(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&Incoming) -> bool,
    ) -> Result<Incoming, ClientError> {
        self.wait_queued(what, |q| pred(q.item())).await
    }

    /// [`Client::wait_for`] over the queue itself: `pred` may pass over an INFO body
    /// without parsing it.
    async fn wait_queued(
        &mut self,
        what: &str,
        mut pred: impl FnMut(&mut Queued) -> bool,
    ) -> Result<Incoming, ClientError> {
        if let Some(pos) = self.buffered.iter_mut().position(&mut pred) {
            let item = self.buffered.remove(pos).map(Queued::into_item);
            return Ok(item.unwrap_or(Incoming::Closed));
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.closed {
                return err(format!(
                    "{}: connection closed while waiting for {what}",
                    self.name
                ));
            }
            let mut item = match tokio::time::timeout(left, self.incoming.recv()).await {
                Ok(Some(i)) => i,
                Ok(None) => Queued::ready(Incoming::Closed),
                Err(_) => {
                    return err(format!(
                        "{}: no {what} within {:?}",
                        self.name, self.timeout
                    ))
                }
            };
            if pred(&mut item) {
                return Ok(item.into_item());
            }
            if item.is_closed() {
                self.closed = true;
                return err(format!(
                    "{}: connection closed while waiting for {what}",
                    self.name
                ));
            }
            self.buffered.push_back(item);
        }
    }

    /// Whether the connection has closed (as far as seen).
    pub async fn is_closed(&mut self) -> bool {
        if !self.closed {
            while let Ok(i) = self.incoming.try_recv() {
                if i.is_closed() {
                    self.closed = true;
                    break;
                }
                self.buffered.push_back(i);
            }
        }
        self.closed
    }

    /// Items received and not consumed yet (without waiting).
    pub fn drain_ready(&mut self) -> Vec<Incoming> {
        while let Ok(i) = self.incoming.try_recv() {
            self.buffered.push_back(i);
        }
        self.buffered.drain(..).map(Queued::into_item).collect()
    }

    /// Waits for the response with this Call-ID and CSeq number (provisional ones skipped).
    pub async fn wait_response(
        &mut self,
        call_id: &str,
        cseq: u32,
    ) -> Result<Response, ClientError> {
        let what = format!("final response to CSeq {cseq}");
        let item = self
            .wait_queued(&what, |q| match &q.item {
                Some(Incoming::Response(r)) => {
                    r.code >= 200
                        && r.call_id() == Some(call_id)
                        && r.cseq().map(|c| c.0) == Some(cseq)
                }
                _ => false,
            })
            .await?;
        match item {
            Incoming::Response(r) => Ok(r),
            _ => err("unreachable: matched a response"),
        }
    }

    fn via(&mut self) -> String {
        let t = self.transport;
        format!("SIP/2.0/{t} {};branch={}", self.local, self.ids.branch())
    }

    fn out_of_dialog(&mut self, method: &str, ruri: &str, to: &str) -> Request {
        self.cseq += 1;
        let mut req = Request {
            method: method.into(),
            uri: ruri.to_string(),
            headers: Default::default(),
            body: Bytes::new(),
        };
        let via = self.via();
        let tag = self.ids.tag();
        let call_id = self.ids.call_id();
        req.headers.push("Via", via);
        req.headers.push("Max-Forwards", "70");
        req.headers
            .push("From", format!("<{}>;tag={tag}", self.uri));
        req.headers.push("To", format!("<{to}>"));
        req.headers.push("Call-ID", call_id);
        req.headers.push("CSeq", format!("{} {method}", self.cseq));
        req.headers.push("User-Agent", "pchat-sim/0.1");
        req
    }

    fn in_dialog(&mut self, method: &str) -> Result<Request, ClientError> {
        let via = self.via();
        let Some(d) = self.dialog.as_mut() else {
            return err("no dialog: INVITE first");
        };
        d.cseq += 1;
        Ok(d.request(method, d.cseq, via))
    }

    /// Sends a request and waits for its final response, retrying a 503 after its
    /// `Retry-After` (RFC 3261 21.5.4, 20.33; 1 s when absent, at most 60 s) and a request
    /// not answered within [`RETRY_SILENCE`] at once - a new CSeq each time, the same
    /// body, up to [`MAX_RETRIES`] retries. Errors: connection closed, or no answer to
    /// any try.
    pub async fn transact(&mut self, mut req: Request) -> Result<Response, ClientError> {
        self.transact_in_place(&mut req).await
    }

    /// [`Client::transact`] that leaves `req` as last sent (its final CSeq and
    /// Authorization). A 401 is answered with Digest credentials when the client has a
    /// [`Client::password`]: once, and once more if the server says `stale=true`.
    pub async fn transact_in_place(&mut self, req: &mut Request) -> Result<Response, ClientError> {
        let mut tries = 0;
        let mut auth_tries = 0;
        if let Some(auth) = self.preemptive(req) {
            req.headers.set("Authorization", auth);
        }
        loop {
            let call_id = req.call_id().unwrap_or_default().to_string();
            let cseq = req.cseq().map_or(0, |c| c.0);
            self.send_bytes(req.encode()).await?;
            let saved = self.timeout;
            let retry_on_silence = req.method != "INVITE" && tries < MAX_RETRIES;
            if retry_on_silence {
                self.timeout = saved.min(RETRY_SILENCE);
            }
            let got = self.wait_response(&call_id, cseq).await;
            self.timeout = saved;
            let resp = match got {
                Ok(r) => r,
                Err(_) if retry_on_silence && !self.closed => {
                    tries += 1;
                    self.next_try(req);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if resp.code != 401 && req.headers.get("Authorization").is_some() {
                self.authenticated = true;
            }
            if resp.code == 401 && auth_tries < 2 {
                if let Some(auth) = self.answer_challenge(&resp, req, auth_tries) {
                    auth_tries += 1;
                    req.headers.set("Authorization", auth);
                    self.next_try(req);
                    continue;
                }
            }
            if resp.code != 503 || tries >= MAX_RETRIES {
                return Ok(resp);
            }
            tries += 1;
            let secs: u64 = resp
                .headers
                .get("Retry-After")
                .and_then(|v| v.split(';').next())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(1);
            crate::sim_clock::sleep(Duration::from_secs(secs.min(60))).await;
            self.next_try(req);
        }
    }

    /// The Authorization answering a 401 (the strongest challenge offered), if the
    /// client has a password and should answer: the first 401, or a second one that
    /// says `stale=true` (the nonce expired: answered without asking the user again).
    fn answer_challenge(&mut self, resp: &Response, req: &Request, tries: u32) -> Option<String> {
        let ch = crate::auth::challenges(resp.headers.get_all("WWW-Authenticate"))
            .into_iter()
            .next()?;
        if tries > 0 && !ch.stale {
            return None; // wrong password: do not ask again
        }
        self.authorize(ch, req)
    }

    /// On a connection that has not authenticated yet, the Authorization answering the
    /// challenge this client answered last (on an earlier connection), if any: real
    /// clients reuse a nonce until the server says it is stale.
    fn preemptive(&mut self, req: &Request) -> Option<String> {
        if self.authenticated || self.sent_credentials || req.headers.get("Authorization").is_some()
        {
            return None;
        }
        let ch = self.digest.lock().ok()?.challenge.clone()?;
        self.authorize(ch, req)
    }

    /// The Authorization answering `ch` for `req` with the next nonce-count; remembered.
    fn authorize(&mut self, ch: crate::auth::Challenge, req: &Request) -> Option<String> {
        let password = self.password.clone()?;
        let cnonce = self.ids.tag();
        let mut cache = self.digest.lock().ok()?;
        // The nonce-count counts the requests sent with this nonce (RFC 7616 3.4).
        if cache.challenge.as_ref().map(|c| &c.nonce) != Some(&ch.nonce) {
            cache.nc = 0;
        }
        cache.nc += 1;
        let auth = crate::auth::authorization(
            &ch,
            &req.method,
            &req.uri,
            &crate::auth::username_of(&self.uri),
            &password,
            &cnonce,
            cache.nc,
        );
        cache.challenge = Some(ch);
        cache.last_authorization = Some(auth.clone());
        self.sent_credentials = true;
        Some(auth)
    }

    fn next_try(&mut self, req: &mut Request) {
        // A retry is a new request: new branch, next CSeq (RFC 3261 8.1.3.5).
        let via = self.via();
        req.headers.set("Via", via);
        let next = match self.dialog.as_mut() {
            Some(d) if req.method != "SUBSCRIBE" && req.method != "INVITE" => {
                d.cseq += 1;
                d.cseq
            }
            _ => {
                self.cseq += 1;
                self.cseq
            }
        };
        req.headers.set("CSeq", format!("{next} {}", req.method));
    }

    /// Reconnects at SIP level: abandons the current dialog (its INFOs will get 487,
    /// docs/protocol.md) and INVITEs the pool again with a new Call-ID on the same
    /// connection. Returns the INVITE's final response.
    pub async fn reconnect(&mut self) -> Result<Response, ClientError> {
        if let Some(d) = self.dialog.take() {
            if let Ok(mut s) = self.stale.lock() {
                s.insert(d.call_id);
            }
        }
        let pool = self.pool_uri.clone();
        self.invite(&pool).await
    }

    /// Sign-in step 1: SUBSCRIBE for the provisioning document. On 200, the first pool
    /// URI found in it becomes [`Client::pool_uri`]. Returns the response.
    pub async fn subscribe_provisioning(&mut self) -> Result<Response, ClientError> {
        let uri = self.uri.clone();
        let mut req = self.out_of_dialog("SUBSCRIBE", &uri, &uri);
        req.headers.push("Event", "vnd-microsoft-provisioning-v2");
        req.headers.push(
            "Accept",
            "application/vnd-microsoft-roaming-provisioning-v2+xml",
        );
        req.headers.push("Contact", self.contact());
        req.headers.push("Expires", "0");
        let resp = self.transact(req).await?;
        if resp.code == 200 {
            let body = String::from_utf8_lossy(&resp.body).into_owned();
            if let Some(start) = body.find("<pool uri=\"") {
                let rest = &body[start + 11..];
                if let Some(end) = rest.find('"') {
                    self.pool_uri = rest[..end].to_string();
                }
            }
        }
        Ok(resp)
    }

    /// Our Contact: `<sip:user@host:port;transport=tcp|tls>`.
    fn contact(&self) -> String {
        let t = self.transport.to_ascii_lowercase();
        format!("<sip:{}@{};transport={t}>", self.user_part(), self.local)
    }

    fn user_part(&self) -> String {
        self.uri
            .trim_start_matches("sip:")
            .split('@')
            .next()
            .unwrap_or("")
            .to_string()
    }

    /// Sign-in step 2: INVITE `target` with an SDP offer (`m=message ... sip null`), ACK
    /// the 200 OK and keep the dialog. Returns the final response.
    pub async fn invite(&mut self, target: &str) -> Result<Response, ClientError> {
        let mut req = self.out_of_dialog("INVITE", target, target);
        let (host, port) = self
            .local
            .rsplit_once(':')
            .unwrap_or((self.local.as_str(), "5060"));
        let sdp = format!(
            "v=0\r\no=- 0 0 IN IP4 {host}\r\ns=session\r\nc=IN IP4 {host}\r\nt=0 0\r\n\
             m=message {port} sip null\r\na=accept-types:text/plain text/html\r\n"
        );
        req.headers.push("Contact", self.contact());
        req.headers.push("Supported", "ms-sender, timer");
        req.headers.push("Content-Type", "application/sdp");
        req.body = Bytes::from(sdp);
        let resp = self.transact_in_place(&mut req).await?;
        if resp.code == 200 {
            let target = resp.headers.get("Contact").map_or_else(
                || target.to_string(),
                |c| {
                    c.trim()
                        .trim_start_matches('<')
                        .split('>')
                        .next()
                        .unwrap_or("")
                        .to_string()
                },
            );
            let dialog = ClientDialog {
                call_id: req.call_id().unwrap_or_default().to_string(),
                from: req.headers.get("From").unwrap_or_default().to_string(),
                to: resp.headers.get("To").unwrap_or_default().to_string(),
                target,
                cseq: req.cseq().map_or(1, |c| c.0),
            };
            // The ACK takes the INVITE's CSeq number (RFC 3261 13.2.2.4).
            let ack = dialog.request("ACK", dialog.cseq, self.via());
            self.dialog = Some(dialog);
            self.send_bytes(ack.encode()).await?;
        }
        Ok(resp)
    }

    /// Ends the dialog with BYE; returns the response.
    pub async fn bye(&mut self) -> Result<Response, ClientError> {
        let req = self.in_dialog("BYE")?;
        let resp = self.transact(req).await?;
        self.dialog = None;
        Ok(resp)
    }

    /// Sends UPDATE (session refresh, RFC 4028); returns the response.
    pub async fn update(&mut self) -> Result<Response, ClientError> {
        let req = self.in_dialog("UPDATE")?;
        self.transact(req).await
    }

    /// Sends `body` as an INFO in the dialog (`Content-Type: text/plain`, as SIPE does);
    /// returns the final response.
    pub async fn info(&mut self, body: Bytes) -> Result<Response, ClientError> {
        let mut req = self.in_dialog("INFO")?;
        req.headers.push("Content-Type", "text/plain");
        req.body = body;
        self.transact(req).await
    }

    fn next_envid(&mut self) -> u64 {
        self.envid += 1;
        self.envid
    }

    /// Sends a command; returns the INFO's response and, when it was 200, the reply
    /// whose `commandid` carries this command's envid.
    pub async fn command(&mut self, kind: CmdKind) -> Result<(Response, Option<Rpl>), ClientError> {
        let envid = self.next_envid();
        let env = Cmd { seqid: 1, kind }.envelope(envid);
        self.command_raw(Bytes::from(env.to_xml()), Some(envid))
            .await
    }

    /// Sends a raw XCCOS body; when `envid` is known, waits for the reply to it, else for
    /// the next reply of any kind.
    pub async fn command_raw(
        &mut self,
        body: Bytes,
        envid: Option<u64>,
    ) -> Result<(Response, Option<Rpl>), ClientError> {
        let resp = self.info(body).await?;
        if resp.code != 200 {
            return Ok((resp, None));
        }
        let item = self
            .wait_for("reply", |i| match i {
                Incoming::Xccos(Envelope {
                    body: Body::Rpl(r), ..
                }) => match envid {
                    Some(e) => r.command.as_ref().map(|c| c.envid) == Some(e),
                    None => true,
                },
                _ => false,
            })
            .await?;
        match item {
            Incoming::Xccos(Envelope {
                body: Body::Rpl(r), ..
            }) => Ok((resp, Some(r))),
            _ => err("unreachable: matched a reply"),
        }
    }

    /// Posts `text` to the room: a grpchat INFO; returns the INFO's final response (200
    /// means stored, XCCOS.md grpchat).
    pub async fn post(&mut self, chan_uri: &str, text: &str) -> Result<Response, ClientError> {
        self.post_with_id(chan_uri, text, None).await
    }

    /// [`Client::post`] with a client message id (grpchat `msgid`, design): the server
    /// stores the post once per author and id, whichever dialog a copy comes on.
    pub async fn post_with_id(
        &mut self,
        chan_uri: &str,
        text: &str,
        msgid: Option<&str>,
    ) -> Result<Response, ClientError> {
        let env = self.grpchat(chan_uri, text, msgid);
        self.info(Bytes::from(env.to_xml())).await
    }

    /// The grpchat envelope of a post by this client (next envid, seqid 1, no ts).
    fn grpchat(&mut self, chan_uri: &str, text: &str, msgid: Option<&str>) -> Envelope {
        Envelope {
            envid: self.next_envid(),
            body: Body::GrpChat(GrpChat {
                msgid: msgid.map(str::to_string),
                seqid: 1,
                chan_uri: chan_uri.to_string(),
                author: Some(self.uri.clone()),
                ts: None,
                text: text.to_string(),
            }),
        }
    }

    /// [`Client::post_with_id`] without waiting for the answer (a scenario `post` with
    /// `no_wait`): the INFO is sent once, no retries; its final response stays queued for
    /// a later `answer` step. Returns the INFO's (Call-ID, CSeq).
    pub async fn post_no_wait(
        &mut self,
        chan_uri: &str,
        text: &str,
        msgid: Option<&str>,
    ) -> Result<(String, u32), ClientError> {
        let env = self.grpchat(chan_uri, text, msgid);
        let mut req = self.in_dialog("INFO")?;
        req.headers.push("Content-Type", "text/plain");
        req.body = Bytes::from(env.to_xml());
        let call_id = req.call_id().unwrap_or_default().to_string();
        let cseq = req.cseq().map_or(0, |c| c.0);
        self.send_bytes(req.encode()).await?;
        Ok((call_id, cseq))
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(b) = rx.recv().await {
        if w.write_all(&b).await.is_err() || w.flush().await.is_err() {
            break;
        }
    }
    let _ = w.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut r: R,
    tx: mpsc::Sender<Queued>,
    out: mpsc::Sender<Bytes>,
    name: String,
    transcript: Transcript,
    stale: Arc<Mutex<BTreeSet<String>>>,
) {
    let mut framer = Framer::new(1 << 20);
    let mut buf = vec![0u8; 16 * 1024];
    'conn: loop {
        let read = crate::frames::after_read(r.read(&mut buf).await, &buf, &mut framer);
        for frame in read.frames {
            transcript.record_bytes("server", &name, frame.clone());
            let item = match parse_frame(&frame) {
                Ok(SipMessage::Response(resp)) => Queued::ready(Incoming::Response(resp)),
                Ok(SipMessage::Request(req)) => {
                    let abandoned = req
                        .call_id()
                        .is_some_and(|c| stale.lock().is_ok_and(|s| s.contains(c)));
                    if abandoned {
                        let gone = encode_response_for(&req, 487, "Request Terminated");
                        transcript.record_bytes(&name, "server", gone.clone());
                        let _ = out.send(gone).await;
                        continue;
                    }
                    let ok = encode_response_for(&req, 200, "OK");
                    transcript.record_bytes(&name, "server", ok.clone());
                    let _ = out.send(ok).await;
                    if req.method != "INFO" {
                        continue;
                    }
                    Queued::info(req.body)
                }
                Err(e) => Queued::ready(Incoming::Unparsed(frame.clone(), e.reason)),
            };
            if tx.send(item).await.is_err() {
                break 'conn;
            }
        }
        match read.end {
            None => {}
            Some(crate::frames::End::Closed) => break,
            Some(crate::frames::End::Bad(e)) => {
                tracing::warn!("{name}: framing error from server: {e}");
                break;
            }
        }
    }
    let _ = tx.send(Queued::ready(Incoming::Closed)).await;
}
