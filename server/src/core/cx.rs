//! The handler context: what one XCCOS command, web request or compliance hook may
//! touch while the core handles a batch ([`BatchCx`]), made by splitting the core's
//! borrows (`Core::cx`) instead of handing out `&mut Core`. Its [`Outbox`] queues the
//! batch's output: what is released whatever happens, what only after the batch's
//! commit, and what instead if the commit fails (module docs of `core`).

use super::dedup::{self, RetryDedup};
use super::dialog::Dialogs;
use super::{Action, ConnId, Stats, SERVER_HEADER};
use crate::channel::{DialogId, Rooms};
use crate::compliance::batch::BatchState;
use crate::config::Config;
use crate::fault::Faults;
use crate::ids::IdGen;
use crate::sip::{Request, Response};
use crate::store::Store;
use crate::web::state::WebState;
use crate::xccos::{Body, Envelope};
use bytes::Bytes;

/// One queued output action of the batch.
struct Queued {
    action: Action,
    needs_commit: bool,
}

/// The batch's pending output (a field of the core, lent to the [`Outbox`]): drained
/// at the end of every batch (`Core::handle_batch_at`).
#[derive(Default)]
pub(crate) struct Pending {
    queued: Vec<Queued>,
    on_abort: Vec<Action>,
    /// A compliance event of this batch could not be written: roll back, don't commit.
    poisoned: bool,
    /// The last server envid handed out (one counter for everything the server sends).
    next_envid: u64,
}

impl Pending {
    /// Starts the envid counter at `start` (the first envid is `start + 1`).
    pub(crate) fn new(start: u64) -> Pending {
        Pending {
            next_envid: start,
            ..Pending::default()
        }
    }

    /// Whether nothing is pending (the invariant between batches).
    pub(crate) fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.on_abort.is_empty() && !self.poisoned
    }

    /// Takes (and clears) whether the batch was poisoned.
    pub(crate) fn take_poisoned(&mut self) -> bool {
        std::mem::take(&mut self.poisoned)
    }

    /// Ends the batch: appends to `out`, in order, what `committed` releases - every
    /// queued action (only those not needing the commit if it failed), then, if the
    /// commit failed, the on-abort actions.
    pub(crate) fn release(&mut self, committed: bool, out: &mut Vec<Action>) {
        for q in self.queued.drain(..) {
            if committed || !q.needs_commit {
                out.push(q.action);
            }
        }
        if committed {
            self.on_abort.clear();
        } else {
            out.append(&mut self.on_abort);
        }
    }
}

/// The batch's outbox: queues SIP messages and web answers, addressed and signed. It
/// holds the dialogs (read-only to handlers: [`Outbox::dialogs`]; the outbox counts
/// their CSeq), the authentication state (MS-SIPAE signing, TLS or TCP in Via) and the
/// seeded id generator (Via branches; [`Outbox::ids`] lends it to handlers: one
/// sequence, so transcripts stay fixed).
pub struct Outbox<'a> {
    pending: &'a mut Pending,
    dialogs: &'a mut Dialogs,
    auth: &'a mut crate::auth::Auth,
    ids: &'a mut IdGen,
    /// `host:port` written into Via of our requests.
    local_addr: &'a str,
}

/// What a handler gets instead of the whole core: each field is one piece of the core
/// lent for one command (or web request, or hook call) of the current batch.
pub struct BatchCx<'a> {
    /// The configuration in force (read-only).
    pub cfg: &'a Config,
    /// The batch's time, ms since the epoch (time is an input: no handler reads a clock).
    pub now_ms: i64,
    /// Every room: members, roles, who is joined on which dialog.
    pub rooms: &'a mut Rooms,
    /// The store, inside the batch's transaction (committed or rolled back by the core
    /// after the last input of the batch).
    pub store: &'a mut dyn Store,
    /// The batch's output (replies, notices, relays, web answers).
    pub out: Outbox<'a>,
    /// Compliance bookkeeping of the batch (undo of joins/parts, carried PART events).
    pub compliance: &'a mut BatchState,
    /// Web services state: tokens, sign-in sessions, file stores.
    pub web: &'a mut WebState,
    /// Fault switches shared with the simulator (planted bugs, store faults).
    pub faults: &'a Faults,
    /// Retried posts of this and earlier batches (core/dedup.rs).
    pub dedup: &'a mut RetryDedup,
    /// Counters (posts, relays).
    pub stats: &'a mut Stats,
}

impl<'a> Outbox<'a> {
    /// Lends the pieces of the core the outbox needs (see `Core::cx`).
    pub(crate) fn new(
        pending: &'a mut Pending,
        dialogs: &'a mut Dialogs,
        auth: &'a mut crate::auth::Auth,
        ids: &'a mut IdGen,
        local_addr: &'a str,
    ) -> Outbox<'a> {
        Outbox {
            pending,
            dialogs,
            auth,
            ids,
            local_addr,
        }
    }

    /// The live dialogs (read-only).
    pub fn dialogs(&self) -> &Dialogs {
        self.dialogs
    }

    /// The seeded id generator (tokens, GUIDs); shared with the outbox's Via branches.
    pub fn ids(&mut self) -> &mut IdGen {
        self.ids
    }

    /// The authentication state (users, lockouts; the web sign-in checks passwords
    /// against it); shared with the outbox's MS-SIPAE signing.
    pub fn auth(&mut self) -> &mut crate::auth::Auth {
        self.auth
    }

    /// Queues `action` (signed for its connection), released at the end of the batch;
    /// with `needs_commit` only if the batch commits.
    pub(crate) fn push(&mut self, mut action: Action, needs_commit: bool) {
        self.sign(&mut action);
        self.pending.queued.push(Queued {
            action,
            needs_commit,
        });
    }

    /// Output sent instead of the batch's commit-dependent output if the commit fails.
    pub(crate) fn push_on_abort(&mut self, mut action: Action) {
        self.sign(&mut action);
        self.pending.on_abort.push(action);
    }

    /// Makes the current batch roll back instead of committing (a compliance event could
    /// not be written: the actions of the batch must not persist without their events).
    pub(crate) fn poison_batch(&mut self) {
        self.pending.poisoned = true;
    }

    /// [MS-SIPAE]: a message to a connection holding an NTLM security association
    /// carries `Authentication-Info` signed for it (crate::auth::sipae).
    fn sign(&mut self, action: &mut Action) {
        if let Action::Send { conn, head, .. } = action {
            if let Some(signed) = self.auth.sign_outgoing(*conn, head) {
                *head = signed;
            }
        }
    }

    /// Sends a response on `conn` (adds `Server`).
    pub(crate) fn respond(&mut self, conn: ConnId, resp: Response, needs_commit: bool) {
        let head = resp.with_header("Server", SERVER_HEADER).encode();
        let body = Bytes::new();
        self.push(Action::Send { conn, head, body }, needs_commit);
    }

    /// A fresh server envid (one counter for everything the server sends).
    pub(crate) fn envid(&mut self) -> u64 {
        self.pending.next_envid += 1;
        self.pending.next_envid
    }

    /// Serializes an envelope body once, for sending to one or many dialogs.
    pub(crate) fn encode_envelope(&mut self, body: Body) -> Bytes {
        let env = Envelope {
            envid: self.envid(),
            body,
        };
        let mut buf = Vec::with_capacity(256);
        env.write(&mut buf);
        Bytes::from(buf)
    }

    /// Sends `body` (an XCCOS document) as an INFO inside `dialog` (RFC 6086); false
    /// when the dialog is gone.
    pub(crate) fn send_info(&mut self, dialog: DialogId, body: Bytes, needs_commit: bool) -> bool {
        let Some(action) = self.info_action(dialog, body, true) else {
            return false;
        };
        self.push(action, needs_commit);
        true
    }

    /// Sends a command reply released only after the batch commits; if the commit fails
    /// (or the batch is rolled back), the same reply with code 503 SERVICE_UNAVAILABLE
    /// and no data goes instead (same envid, same CSeq: exactly one of them is sent).
    pub(crate) fn send_reply_after_commit(&mut self, dialog: DialogId, rpl: crate::xccos::Rpl) {
        let envid = self.envid();
        let abort = crate::xccos::Rpl {
            resp: Some(crate::xccos::Resp {
                code: crate::xccos::codes::SERVICE_UNAVAILABLE,
                token: crate::xccos::codes::token(crate::xccos::codes::SERVICE_UNAVAILABLE)
                    .to_string(),
            }),
            data: crate::xccos::RplData::None,
            ..rpl.clone()
        };
        let encode = |body| {
            let mut buf = Vec::with_capacity(256);
            Envelope { envid, body }.write(&mut buf);
            Bytes::from(buf)
        };
        let (ok, abort) = (encode(Body::Rpl(rpl)), encode(Body::Rpl(abort)));
        if let Some(action) = self.info_action(dialog, ok, true) {
            self.push(action, true);
        }
        if let Some(action) = self.info_action(dialog, abort, false) {
            self.push_on_abort(action);
        }
    }

    /// The INFO carrying `body` in `dialog`; `next_cseq` takes the next CSeq, otherwise
    /// the last one is reused (the alternative of an INFO already built).
    fn info_action(&mut self, dialog: DialogId, body: Bytes, next_cseq: bool) -> Option<Action> {
        let branch = self.ids.branch_digits();
        let d = self.dialogs.get_mut(dialog)?;
        if next_cseq {
            d.local_cseq += 1;
        }
        let mut head = String::new();
        let tls = self.auth.is_tls(d.conn);
        crate::sip::InDialog {
            method: "INFO",
            target: &d.remote_target,
            transport: if tls { "TLS" } else { "TCP" },
            via: self.local_addr,
            branch: std::str::from_utf8(&branch).unwrap_or_default(),
            from: &d.local_party,
            to: &d.remote_party,
            call_id: &d.call_id,
            cseq: d.local_cseq,
        }
        .write_head("text/plain", body.len(), &mut head);
        Some(Action::Send {
            conn: d.conn,
            head: Bytes::from(head),
            body,
        })
    }
}

impl BatchCx<'_> {
    /// The live dialogs (read-only; see [`Outbox::dialogs`]).
    pub fn dialogs(&self) -> &Dialogs {
        self.out.dialogs()
    }

    /// The seeded id generator (see [`Outbox::ids`]).
    pub fn ids(&mut self) -> &mut IdGen {
        self.out.ids()
    }

    /// The authentication state (see [`Outbox::auth`]).
    pub fn auth(&mut self) -> &mut crate::auth::Auth {
        self.out.auth()
    }

    /// Counts a committed post and its `relays` relayed INFOs.
    pub(crate) fn count_post(&mut self, relays: u64) {
        self.stats.posts += 1;
        self.stats.relays += relays;
    }

    /// Answers a retried grpchat (same dialog and envid as one already stored) as the
    /// first copy was answered, without storing or relaying it again; returns whether
    /// `key` was such a retry (core/dedup.rs).
    pub(crate) fn answer_retried_post(
        &mut self,
        conn: ConnId,
        key: dedup::PostKey,
        req: &Request,
    ) -> bool {
        if !self.faults.retry_dedup_enabled() {
            return false;
        }
        let ok = crate::sip::response_for(req, 200, "OK");
        match self.dedup.seen(key) {
            None => return false,
            Some(dedup::Seen::Committed) => self.out.respond(conn, ok, false),
            Some(dedup::Seen::Pending) => {
                self.out.respond(conn, ok, true);
                let head = super::retry_later(req, self.cfg.sip.retry_after_s);
                let body = Bytes::new();
                self.out.push_on_abort(Action::Send { conn, head, body });
            }
        }
        tracing::debug!(
            dialog = %key.0,
            envid = key.1,
            "retried grpchat answered, not stored again"
        );
        true
    }
}
