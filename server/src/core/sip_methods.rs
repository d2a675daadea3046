//! SIP request handling as UAS (RFC 3261 sections 8.2, 12, 13, 15; RFC 4028 session
//! timers; RFC 6086 INFO): INVITE/ACK/UPDATE/BYE/CANCEL/OPTIONS/INFO/SUBSCRIBE.

use super::dialog::Dialog;
use super::session_timer::{self, Negotiated};
use super::{ConnId, Core, ALLOW};
use crate::sip::{response_for, Request, Response};
use bytes::Bytes;

/// Option tags we support (RFC 3261 20.37 `Supported`, RFC 4028 `timer`).
const SUPPORTED: &str = "timer, ms-sender";

/// Content types accepted for an XCCOS INFO body.
const XCCOS_TYPES: &[&str] = &["text/plain", "application/xml", "text/xml"];

/// Lower-cased `user@host` of a SIP URI, without scheme or parameters.
pub(crate) fn uri_key(uri: &str) -> String {
    crate::auth::users::key_of(uri)
}

fn media_type(ct: Option<&str>) -> Option<String> {
    ct.map(|c| {
        c.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    })
}

impl Core {
    pub(super) fn on_request(&mut self, conn: ConnId, mut req: Request) {
        // Identity first (crate::auth, docs/security.md): nothing below runs for a
        // request whose sender is not the user it claims to be.
        let dialog_user = self
            .in_dialog(&req)
            .and_then(|id| self.dialogs.get(id))
            .map(|d| d.user.clone());
        let now = self.now_ms();
        match self.auth.gate(conn, &mut req, dialog_user.as_deref(), now) {
            crate::auth::Verdict::Pass => {}
            crate::auth::Verdict::Drop => return,
            crate::auth::Verdict::Refuse(resp) => return self.respond(conn, resp, false),
        }
        if req.method != "ACK" {
            if let Some(mf) = req.headers.get("Max-Forwards") {
                if mf.trim() == "0" && req.method != "OPTIONS" {
                    return self.respond(conn, response_for(&req, 483, "Too Many Hops"), false);
                }
            }
            let unsupported: Vec<&str> = req
                .headers
                .get_all("Require")
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("timer"))
                .collect();
            if !unsupported.is_empty() {
                let resp = response_for(&req, 420, "Bad Extension")
                    .with_header("Unsupported", unsupported.join(", "));
                return self.respond(conn, resp, false);
            }
        }
        match req.method.as_str() {
            "INVITE" => self.on_invite(conn, req),
            "ACK" => self.on_ack(&req),
            "BYE" => self.on_bye(conn, req),
            "CANCEL" => self.on_cancel(conn, req),
            "OPTIONS" => {
                let resp = response_for(&req, 200, "OK")
                    .with_header("Allow", ALLOW)
                    .with_header("Accept", "application/sdp, text/plain, application/xml")
                    .with_header("Supported", SUPPORTED);
                self.respond(conn, resp, false)
            }
            "INFO" => self.on_info(conn, req),
            "UPDATE" => self.on_update(conn, req),
            "SUBSCRIBE" => self.on_subscribe(conn, req),
            "REGISTER" => self.on_register(conn, req),
            _ => {
                let resp = response_for(&req, 501, "Not Implemented").with_header("Allow", ALLOW);
                self.respond(conn, resp, false)
            }
        }
    }

    pub(super) fn on_response(&mut self, conn: ConnId, resp: Response) {
        // Responses to our INFOs. 481/487: the client no longer has this dialog (it
        // reconnected with a new Call-ID, XCCOS.md SIP layer): stop using it - only
        // when it comes on the dialog's own connection (anyone else could end it).
        if matches!(resp.code, 481 | 487) {
            let on_own_conn = |d: &crate::channel::DialogId| {
                self.dialogs
                    .get(*d)
                    .is_some_and(|dialog| dialog.conn == conn)
            };
            if let Some(d) = resp
                .call_id()
                .zip(resp.to_tag())
                .and_then(|(c, t)| self.dialogs.by_call(c, t, conn))
                .filter(on_own_conn)
            {
                tracing::info!(
                    dialog = %d,
                    code = resp.code,
                    "client dropped the dialog; dropping it too"
                );
                self.drop_dialog(d);
            }
        } else if resp.code >= 300 {
            tracing::debug!(code = resp.code, "client refused an INFO");
        }
    }

    fn session_expiry(&self) -> i64 {
        self.now_ms() + i64::from(self.cfg.sip.session_expires_s) * 1000
    }

    /// RFC 4028 negotiation for `req` with our configured interval and minimum.
    fn session_timer(&self, req: &Request) -> Result<Negotiated, Response> {
        session_timer::negotiate(req, self.cfg.sip.session_expires_s, self.cfg.sip.min_se_s)
    }

    fn sdp_answer(&self) -> String {
        let (host, port) = self
            .local_addr
            .rsplit_once(':')
            .unwrap_or((self.local_addr.as_str(), "5060"));
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let family = if host.contains(':') { "IP6" } else { "IP4" };
        format!(
            "v=0\r\no=- 0 0 IN {family} {host}\r\ns=session\r\nc=IN {family} {host}\r\nt=0 0\r\n\
             m=message {port} sip null\r\na=accept-types:text/plain\r\n"
        )
    }

    fn ok_to_invite(
        &self,
        conn: ConnId,
        req: &Request,
        local_tag: &str,
        timer: &Negotiated,
    ) -> Response {
        let contact = match (&self.cfg.sip.tls_listen, self.auth.is_tls(conn)) {
            (Some(tls), true) => format!("<sip:{tls};transport=tls>"),
            _ => format!("<sip:{};transport=tcp>", self.local_addr),
        };
        response_for(req, 200, "OK")
            .with_to_tag(local_tag)
            .with_header("Contact", contact)
            .with_header("Allow", ALLOW)
            .with_header("Supported", SUPPORTED)
            .with_header("Session-Expires", timer.header())
            .with_body("application/sdp", Bytes::from(self.sdp_answer()))
    }

    fn in_dialog(&self, req: &Request) -> Option<crate::channel::DialogId> {
        self.dialogs
            .find(req.call_id()?, req.from_tag(), req.to_tag())
    }

    /// The dialog an in-dialog request belongs to; `None` after answering it 481
    /// (RFC 3261 12.2.2: no such dialog).
    fn in_dialog_or_481(
        &mut self,
        conn: ConnId,
        req: &Request,
    ) -> Option<crate::channel::DialogId> {
        let id = self.in_dialog(req);
        if id.is_none() {
            let resp = response_for(req, 481, "Call/Transaction Does Not Exist");
            self.respond(conn, resp, false);
        }
        id
    }

    /// A session refresh (RFC 4028) by a re-INVITE or UPDATE of dialog `id`: the
    /// request's negotiated timer, the dialog's expiry moved by it; `None` after
    /// answering the refusal (422 and the like).
    fn refresh_session(
        &mut self,
        conn: ConnId,
        req: &Request,
        id: crate::channel::DialogId,
    ) -> Option<Negotiated> {
        let timer = match self.session_timer(req) {
            Ok(t) => t,
            Err(resp) => {
                self.respond(conn, resp, false);
                return None;
            }
        };
        let expiry = timer.expiry_ms(self.now_ms());
        if let Some(d) = self.dialogs.get_mut(id) {
            d.expires_at_ms = expiry;
        }
        Some(timer)
    }

    /// A re-INVITE (it has a To-tag): refreshes the session (RFC 4028) or 481 if we
    /// do not know it.
    fn on_reinvite(&mut self, conn: ConnId, req: &Request) {
        let Some(id) = self.in_dialog_or_481(conn, req) else {
            return;
        };
        let Some(timer) = self.refresh_session(conn, req, id) else {
            return;
        };
        let Some(d) = self.dialogs.get_mut(id) else {
            return;
        };
        d.conn = conn;
        let tag = d.local_tag.clone();
        let resp = self.ok_to_invite(conn, req, &tag, &timer);
        self.respond(conn, resp, false)
    }

    /// The session a new INVITE offers, if we accept its media and timer: the
    /// negotiated timer, or the refusal (media_checks, RFC 4028 422, 488 without an
    /// SDP `m=message` line).
    fn invite_offer(&self, req: &Request) -> Result<Negotiated, Response> {
        if let Some(resp) = super::media_checks::refuse_invite_media(req) {
            return Err(resp);
        }
        let timer = self.session_timer(req)?;
        let is_sdp = media_type(req.content_type()).as_deref() == Some("application/sdp");
        let has_message_media = std::str::from_utf8(&req.body)
            .map(|b| b.lines().any(|l| l.starts_with("m=message")))
            .unwrap_or(false);
        if !is_sdp || !has_message_media {
            let resp = response_for(
                req,
                488,
                "Not Acceptable Here: expected application/sdp with m=message",
            )
            .with_header("Accept", "application/sdp");
            return Err(resp);
        }
        Ok(timer)
    }

    fn on_invite(&mut self, conn: ConnId, req: Request) {
        if req.to_tag().is_some() {
            return self.on_reinvite(conn, &req);
        }
        let timer = match self.invite_offer(&req) {
            Ok(t) => t,
            Err(resp) => return self.respond(conn, resp, false),
        };
        let (Some(user), Some(from_tag), Some(to_uri), Some(call_id)) =
            (req.from_uri(), req.from_tag(), req.to_uri(), req.call_id())
        else {
            return self.respond(
                conn,
                response_for(&req, 400, "From header has no tag"),
                false,
            );
        };
        let Some(contact) = req.contact_uri() else {
            return self.respond(
                conn,
                response_for(&req, 400, "INVITE without Contact"),
                false,
            );
        };
        let to_key = uri_key(to_uri);
        let bootstrap = to_key == format!("ocschat@{}", self.cfg.domain.to_ascii_lowercase());
        let is_pool = self.cfg.pool_uris().iter().any(|p| uri_key(p) == to_key);
        if !bootstrap && !is_pool {
            return self.respond(
                conn,
                response_for(&req, 404, "Not Found: not a persistent chat endpoint"),
                false,
            );
        }
        if self.dialogs.by_call(call_id, from_tag, conn).is_some() {
            // Same Call-ID and From-tag on the same connection, no To-tag: a second
            // INVITE for a session we already have (another client's dialog with this
            // Call-ID and tag, on another connection, is not this one).
            return self.respond(conn, response_for(&req, 482, "Loop Detected"), false);
        }
        let local_tag = self.ids.tag();
        let (Some(to_value), Some(from_value)) = (req.headers.get("To"), req.headers.get("From"))
        else {
            return;
        };
        let dialog = Dialog {
            id: crate::channel::DialogId(0),
            conn,
            call_id: call_id.to_string(),
            local_tag: local_tag.clone(),
            remote_tag: from_tag.to_string(),
            local_party: format!("{to_value};tag={local_tag}"),
            remote_party: from_value.to_string(),
            user: format!("sip:{}", uri_key(user)),
            remote_target: contact.to_string(),
            local_cseq: 0,
            remote_cseq: req.cseq().map_or(0, |c| c.0),
            confirmed: false,
            expires_at_ms: timer.expiry_ms(self.now_ms()),
            bootstrap,
        };
        let user_uri = dialog.user.clone();
        let id = self.dialogs.insert(dialog);
        tracing::debug!(dialog = %id, user = %user, bootstrap, "dialog established");
        if !bootstrap {
            self.note_follows(&user_uri);
        }
        let resp = self.ok_to_invite(conn, &req, &local_tag, &timer);
        self.respond(conn, resp, false);
    }

    fn on_ack(&mut self, req: &Request) {
        if let Some(id) = self.in_dialog(req) {
            if let Some(d) = self.dialogs.get_mut(id) {
                d.confirmed = true;
            }
        }
    }

    fn on_bye(&mut self, conn: ConnId, req: Request) {
        if let Some(id) = self.in_dialog_or_481(conn, &req) {
            self.respond(conn, response_for(&req, 200, "OK"), false);
            self.drop_dialog(id);
        }
    }

    fn on_cancel(&mut self, conn: ConnId, req: Request) {
        // INVITEs are answered at once, so there is never a pending one to cancel
        // (RFC 3261 9.2): 200 if the dialog exists (the CANCEL has no effect), else 481.
        let known = req
            .call_id()
            .zip(req.from_tag())
            .and_then(|(c, t)| self.dialogs.by_call(c, t, conn))
            .is_some();
        let resp = if known {
            response_for(&req, 200, "OK")
        } else {
            response_for(&req, 481, "Call/Transaction Does Not Exist")
        };
        self.respond(conn, resp, false)
    }

    fn on_update(&mut self, conn: ConnId, req: Request) {
        let Some(id) = self.in_dialog_or_481(conn, &req) else {
            return;
        };
        let Some(timer) = self.refresh_session(conn, &req, id) else {
            return;
        };
        let resp = response_for(&req, 200, "OK")
            .with_header("Session-Expires", timer.header())
            .with_header("Supported", SUPPORTED);
        self.respond(conn, resp, false)
    }

    fn on_info(&mut self, conn: ConnId, req: Request) {
        let Some(id) = self.in_dialog_or_481(conn, &req) else {
            return;
        };
        let cseq = req.cseq().map_or(0, |c| c.0);
        let expiry = self.session_expiry();
        let Some(d) = self.dialogs.get_mut(id) else {
            return;
        };
        if cseq <= d.remote_cseq {
            // RFC 3261 12.2.2: a request with a lower CSeq in the dialog is out of order.
            return self.respond(
                conn,
                response_for(&req, 500, "Server Internal Error: CSeq out of order"),
                false,
            );
        }
        d.remote_cseq = cseq;
        // An INFO refreshes a client-refreshed session; never shortens one we refresh.
        d.expires_at_ms = expiry.max(d.expires_at_ms);
        d.conn = conn;
        let mt = media_type(req.content_type());
        if let Some(mt) = mt.filter(|m| !XCCOS_TYPES.contains(&m.as_str())) {
            let resp = response_for(&req, 415, "Unsupported Media Type")
                .with_header("Accept", XCCOS_TYPES.join(", "));
            tracing::debug!("INFO with unsupported media type {mt}");
            return self.respond(conn, resp, false);
        }
        (self.hooks.xccos)(&mut self.cx(), conn, id, req);
    }

    /// REGISTER (RFC 3261 section 10, crate::auth::registrar): the From (already the
    /// authenticated user) registers itself; registering someone else is 403.
    fn on_register(&mut self, conn: ConnId, req: Request) {
        let aor = req.from_uri().map(uri_key).unwrap_or_default();
        if req.to_uri().map(uri_key).as_deref() != Some(aor.as_str()) {
            let resp = response_for(&req, 403, "Forbidden: third-party registration");
            return self.respond(conn, resp, false);
        }
        let now = self.now_ms();
        let tag = self.ids_free_tag(&req);
        let resp = self
            .auth
            .registrar
            .register(&aor, conn, &req, now)
            .with_to_tag(&tag);
        self.respond(conn, resp, false)
    }

    /// A To-tag for a registrar response, derived from the request so it uses no
    /// identifier from the seeded generator (whose sequence the transcripts fix).
    fn ids_free_tag(&self, req: &Request) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(req.call_id().unwrap_or_default().as_bytes());
        hex::encode(&digest[..6])
    }

    fn on_subscribe(&mut self, conn: ConnId, req: Request) {
        let event = req.headers.get("Event").map(|e| {
            e.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        if event.as_deref() != Some("vnd-microsoft-provisioning-v2") {
            let resp = response_for(&req, 489, "Bad Event")
                .with_header("Allow-Events", "vnd-microsoft-provisioning-v2");
            return self.respond(conn, resp, false);
        }
        let user = req.from_uri().unwrap_or_default();
        let body = super::provisioning::document(self, user);
        let tag = self.ids.tag();
        let mut resp = response_for(&req, 200, "OK")
            .with_to_tag(&tag)
            .with_header("Expires", "0");
        if super::provisioning::wants_piggyback(&req) {
            resp = super::provisioning::piggyback_headers(resp, &req);
        }
        let resp = resp.with_body(super::provisioning::CONTENT_TYPE, Bytes::from(body));
        self.respond(conn, resp, false)
    }
}
