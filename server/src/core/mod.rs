//! The server's protocol core: a plain state machine with no sockets inside
//! (DESIGN.md, quinn-proto style). The I/O driver (`crate::host`) feeds it parsed SIP
//! messages ([`Input`]) in batches and writes out the [`Action`]s it returns.
//!
//! **Group commit.** [`Core::handle_batch`] opens one store transaction for the whole
//! batch, handles every input (posts are written inside that transaction), commits, and
//! only then releases the output. Output that promises durability - the 200 OK to a
//! grpchat INFO and the relays of that post - is released only if the commit succeeded;
//! otherwise the poster gets 503 + Retry-After and retries (call-flows.md, step 2).

mod cx;
pub mod dedup;
pub mod dialog;
mod media_checks;
pub mod pool_state;
mod provisioning;
mod session_timer;
mod sip_methods;

use crate::channel::{DialogId, Room, Rooms};
use crate::clock::Clock;
use crate::config::Config;
use crate::fault::Faults;
use crate::ids::IdGen;
use crate::sip::{Response, SipMessage};
use crate::store::{RoomAttrs, RoomRecord, Store, StoreError};
use bytes::Bytes;
use dialog::Dialogs;
use std::sync::Arc;

pub use crate::ids::ConnId;
pub use cx::{BatchCx, Outbox};

/// Something that happened on the network, for the core to handle.
#[derive(Debug)]
pub enum Input {
    /// A well-formed SIP message arrived on `conn`.
    Sip {
        /// Connection.
        conn: ConnId,
        /// The message.
        msg: SipMessage,
    },
    /// A request the driver refused before parsing finished (framing or parse error);
    /// `head` is the complete answer, sent in order with the core's other answers.
    Refused {
        /// Connection.
        conn: ConnId,
        /// The answer (status line, echoed headers, empty body).
        head: Bytes,
    },
    /// A connection was accepted from `peer` (the driver sends this before any of its
    /// messages): the authentication gate's view of it (source address, TLS client
    /// certificate). Without it a connection counts as from an unknown peer.
    Connected {
        /// Connection.
        conn: ConnId,
        /// Who is at the other end.
        peer: crate::auth::Peer,
    },
    /// The connection closed (peer gone, framing error, or shutdown).
    Closed {
        /// Connection.
        conn: ConnId,
    },
    /// Periodic timer (the driver sends one about every second): expires sessions.
    Tick,
    /// A request from the web services (`crate::web`); answered by exactly one
    /// [`Action::Http`] with the same `req`.
    Http {
        /// Request id (assigned by the driver).
        req: crate::web::api::HttpReqId,
        /// The request.
        request: crate::web::api::HttpRequest,
    },
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write `head` then `body` to `conn`. `body` is shared between the recipients of a
    /// fan-out (reference-counted, never copied per recipient).
    Send {
        /// Connection.
        conn: ConnId,
        /// Start line and headers, ending with the empty line.
        head: Bytes,
        /// Message body (may be empty).
        body: Bytes,
    },
    /// Close the connection.
    Close {
        /// Connection.
        conn: ConnId,
    },
    /// Answer the web services' request `req`.
    Http {
        /// Request id (from [`Input::Http`]).
        req: crate::web::api::HttpReqId,
        /// The answer.
        reply: crate::web::api::HttpReply,
    },
}

/// Counters, for logs and benchmarks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Posts committed and acknowledged.
    pub posts: u64,
    /// Relayed grpchat INFOs sent.
    pub relays: u64,
    /// Batches whose commit failed.
    pub failed_commits: u64,
}

/// The channel service core. See the module docs.
pub struct Core {
    cfg: Config,
    store: Box<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The current batch's time, ms since the epoch: an input of
    /// [`Core::handle_batch_at`]; every handler reads it, none reads a clock.
    now_ms: i64,
    ids: IdGen,
    rooms: Rooms,
    dialogs: Dialogs,
    /// The batch's pending output and the envid counter (lent as the [`Outbox`]).
    pending: cx::Pending,
    /// Compliance bookkeeping of the batch (undo of joins/parts, carried PART events).
    compliance: crate::compliance::batch::BatchState,
    /// Web services: tokens and file stores.
    web: crate::web::state::WebState,
    /// `host:port` written into Via and Contact of our messages.
    local_addr: String,
    stats: Stats,
    faults: Faults,
    dedup: dedup::RetryDedup,
    hooks: Hooks,
    /// Authentication gate, users, nonces, registrar (crate::auth).
    auth: crate::auth::Auth,
    /// Pool membership (`[store] url` set): relay cursors, lease schedule (crate::pool).
    pool: Option<pool_state::PoolState>,
}

/// The handlers the core calls up into, injected by the layer above it
/// (`crate::dispatch`), so that `core` imports nothing from `cmd`, `web` or
/// `compliance::record` (ARCHITECTURE.md, "Layers").
#[derive(Clone, Copy)]
pub(crate) struct Hooks {
    /// An INFO with an XCCOS body inside `dialog` (`cmd::on_xccos`).
    pub(crate) xccos: fn(&mut BatchCx, ConnId, DialogId, crate::sip::Request),
    /// A web services request (`web::ops::handle`); answered by one `Action::Http`.
    pub(crate) http: fn(&mut BatchCx, crate::web::api::HttpReqId, crate::web::api::HttpRequest),
    /// A dropped dialog was the last of `user` (2nd) in room `guid` (1st): record the
    /// PART and tell the others (`dialog` is the dropped one).
    pub(crate) left_room: fn(&mut BatchCx, &str, &str, DialogId),
    /// Start of a batch, inside its transaction (compliance: carried events).
    pub(crate) begin_batch: fn(&mut BatchCx),
    /// End of a batch, with whether it committed (compliance: undo or forget), and the
    /// pool member's state (`None`: not pooled; `crate::pool`: relays, lease).
    pub(crate) end_batch: fn(&mut BatchCx, Option<&mut pool_state::PoolState>, bool),
}

/// `Server` header value of our responses.
pub const SERVER_HEADER: &str = concat!("pchat/", env!("CARGO_PKG_VERSION"));

impl Input {
    /// The [`Input::Refused`] for bytes `raw` on `conn` that the driver refused with
    /// `code` (400, 413, 416, 505) and `reason`: the answer echoes what of Via, From, To,
    /// Call-ID and CSeq it can find ([`crate::sip::reject::response`], RFC 3261 8.2.6.2).
    /// `None` when `raw` is a response (never answered, RFC 3261 8.2).
    pub fn refused(conn: ConnId, raw: &[u8], code: u16, reason: &str) -> Option<Input> {
        let head = crate::sip::reject::response(raw, code, reason, &[], SERVER_HEADER)?;
        Some(Input::Refused { conn, head })
    }
}

/// The methods we implement (RFC 3261 20.5 `Allow`).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, SUBSCRIBE, REGISTER";

impl Core {
    /// Builds the core with `hooks` (the handlers it calls up into; the public
    /// constructor `Core::new` lives in `crate::dispatch`, the
    /// layer that knows them): creates or updates the rooms of `cfg` in `store` (their
    /// GUID is derived from domain + name, so URIs are stable; the config wins over
    /// changes made over XCCOS to those rooms), then loads every room and the categories
    /// of `cfg`. Errors: the store failed.
    pub(crate) fn assemble(
        cfg: Config,
        mut store: Box<dyn Store>,
        clock: Arc<dyn Clock>,
        seed: u64,
        local_addr: &str,
        faults: Faults,
        hooks: Hooks,
    ) -> Result<Core, StoreError> {
        for r in &cfg.rooms {
            let list = |v: &[String]| {
                let mut v = v.to_vec();
                v.sort();
                v.dedup();
                v
            };
            store.upsert_room(&RoomRecord {
                guid: crate::ids::room_guid(&cfg.domain, &r.name),
                attrs: RoomAttrs {
                    name: r.name.clone(),
                    description: r.description.clone(),
                    topic: r.topic.clone(),
                    privacy: r.privacy,
                    category: r
                        .category
                        .clone()
                        .unwrap_or_else(|| crate::config::DEFAULT_CATEGORY.to_string()),
                    room_type: r.room_type,
                    invitations: r.invitations,
                    disabled: r.disabled,
                },
                members: list(&r.members),
                managers: list(&r.managers),
                presenters: list(&r.presenters),
            })?;
        }
        let mut rooms = Rooms::default();
        for c in cfg.all_categories() {
            rooms.set_category(crate::channel::Category::from_config(&cfg.domain, &c));
        }
        for rec in store.load_rooms()? {
            rooms.upsert(Room::from_record(&cfg.domain, &rec));
        }
        let mut ids = IdGen::new(seed);
        let next_envid = ids.envid_start();
        let web = crate::web::state::WebState::new(cfg.http.as_ref());
        let auth = crate::auth::Auth::new(&cfg, nonce_secret(seed));
        let now_ms = clock.now_ms();
        let pool = if cfg.pooled() {
            Some(pool_state::PoolState::start(store.as_mut(), now_ms)?)
        } else {
            None
        };
        Ok(Core {
            cfg,
            store,
            clock,
            now_ms,
            ids,
            rooms,
            dialogs: Dialogs::default(),
            pending: cx::Pending::new(next_envid),
            compliance: Default::default(),
            web,
            local_addr: local_addr.to_string(),
            stats: Stats::default(),
            faults,
            dedup: dedup::RetryDedup::default(),
            hooks,
            auth,
            pool,
        })
    }

    /// Uses `faults` (shared with the simulator) instead of the default, never-armed one.
    pub fn with_faults(mut self, faults: Faults) -> Core {
        self.faults = faults;
        self
    }

    /// Handles one input (a batch of one).
    pub fn handle(&mut self, input: Input, out: &mut Vec<Action>) {
        self.handle_batch(std::iter::once(input), out)
    }

    /// [`Core::handle_batch_at`] at the time of the core's clock.
    pub fn handle_batch(&mut self, inputs: impl IntoIterator<Item = Input>, out: &mut Vec<Action>) {
        let now_ms = self.clock.now_ms();
        self.handle_batch_at(now_ms, inputs, out)
    }

    /// Handles a batch of inputs that arrived at `now_ms` (ms since the epoch; the
    /// batch's one time - session expiry, post timestamps, token expiry and compliance
    /// events all read it: time is an input, as in quinn-proto's `handle_timeout`)
    /// inside one store transaction and appends the resulting actions, in order, to
    /// `out` (see the module docs for what a failed commit does). A `now_ms` earlier
    /// than the previous batch's is taken as the previous one (time never runs back).
    pub fn handle_batch_at(
        &mut self,
        now_ms: i64,
        inputs: impl IntoIterator<Item = Input>,
        out: &mut Vec<Action>,
    ) {
        self.now_ms = self.now_ms.max(now_ms);
        let in_tx = match self.store.begin() {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("store begin failed, writing without group commit: {e}");
                false
            }
        };
        (self.hooks.begin_batch)(&mut self.cx());
        for input in inputs {
            self.handle_input(input);
        }
        let committed = if self.pending.take_poisoned() {
            tracing::error!("a compliance event failed: batch rolled back, answered 503");
            self.store.rollback();
            self.stats.failed_commits += 1;
            false
        } else if in_tx {
            match self.store.commit() {
                Ok(()) => true,
                Err(e) => {
                    tracing::error!("group commit failed, posts of this batch answered 503: {e}");
                    self.stats.failed_commits += 1;
                    false
                }
            }
        } else {
            true
        };
        let end_batch = self.hooks.end_batch;
        let (mut cx, pool) = self.split();
        end_batch(&mut cx, pool.as_mut(), committed);
        self.dedup.end_batch(committed);
        self.web.tokens.end_batch(committed);
        self.pending.release(committed, out);
        self.check_invariants();
    }

    /// The core's invariants after a batch, asserted in debug builds (tests, the
    /// simulator): no commit-dependent action outlives its batch; the dialog table's
    /// indices agree; every dialog in a room's joined set is live and of the user the
    /// room lists for it.
    fn check_invariants(&self) {
        debug_assert!(
            self.pending.is_empty(),
            "a commit-dependent action outlived its batch"
        );
        debug_assert!(
            self.dialogs.indices_agree(),
            "the dialog table's indices disagree"
        );
        if cfg!(debug_assertions) {
            for room in self.rooms.iter() {
                for (d, user) in &room.joined {
                    debug_assert!(
                        self.dialogs.get(*d).is_some_and(|x| &x.user == user),
                        "room {} lists dialog {d} of {user}, which is not live",
                        room.guid
                    );
                }
            }
        }
    }

    fn handle_input(&mut self, input: Input) {
        match input {
            Input::Sip {
                conn,
                msg: SipMessage::Request(req),
            } => self.on_request(conn, req),
            Input::Sip {
                conn,
                msg: SipMessage::Response(resp),
            } => self.on_response(conn, resp),
            Input::Refused { conn, head } => {
                let body = Bytes::new();
                self.push(Action::Send { conn, head, body }, false);
            }
            Input::Connected { conn, peer } => {
                if !self.auth.on_connected(conn, peer, self.now_ms) {
                    self.push(Action::Close { conn }, false);
                }
            }
            Input::Closed { conn } => self.on_closed(conn),
            Input::Http { req, request } => (self.hooks.http)(&mut self.cx(), req, request),
            Input::Tick => {
                let now = self.now_ms;
                self.web.tokens.purge(now);
                for conn in self.auth.tick(now) {
                    tracing::info!(conn = %conn, "connection did not authenticate in time: closing");
                    self.on_closed(conn);
                    self.push(Action::Close { conn }, false);
                }
                for d in self.dialogs.expired(now) {
                    tracing::info!(
                        dialog = %d,
                        "session expired (no refresh within Session-Expires)"
                    );
                    self.drop_dialog(d);
                }
            }
        }
    }

    /// When the core next needs an [`Input::Tick`] (ms since the epoch; quinn-proto's
    /// `poll_timeout`): the earliest session expiry or token purge, or the current time
    /// while compliance events of a batch that did not commit wait to be recorded
    /// again. `None`: nothing is due, ever, until more input arrives. A tick before
    /// this time would change nothing, so the host skips it.
    pub fn poll_timeout(&self) -> Option<i64> {
        if !self.compliance.carry.is_empty() {
            return Some(self.now_ms);
        }
        [
            self.dialogs.next_expiry(),
            self.web.tokens.next_purge(),
            self.auth.next_deadline(self.now_ms),
            self.pool.as_ref().map(|p| p.next_heartbeat_ms),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The current batch's time, ms since the epoch (see [`Core::handle_batch_at`]).
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    fn on_closed(&mut self, conn: ConnId) {
        for d in self.dialogs.on_conn(conn) {
            self.drop_dialog(d);
        }
        self.auth.on_closed(conn);
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Number of live dialogs.
    pub fn dialog_count(&self) -> usize {
        self.dialogs.len()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The rooms (for tests and tools).
    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    /// The handler context for one command, web request or hook call of the current
    /// batch: the core's borrows split into [`BatchCx`]'s fields.
    pub(crate) fn cx(&mut self) -> BatchCx<'_> {
        self.split().0
    }

    /// The core's borrows split: the handler context and the pool state.
    fn split(&mut self) -> (BatchCx<'_>, &mut Option<pool_state::PoolState>) {
        let cx = BatchCx {
            cfg: &self.cfg,
            now_ms: self.now_ms,
            rooms: &mut self.rooms,
            store: self.store.as_mut(),
            out: Outbox::new(
                &mut self.pending,
                &mut self.dialogs,
                &mut self.auth,
                &mut self.ids,
                &self.local_addr,
            ),
            compliance: &mut self.compliance,
            web: &mut self.web,
            faults: &self.faults,
            dedup: &mut self.dedup,
            stats: &mut self.stats,
        };
        (cx, &mut self.pool)
    }

    /// Queues `action` (see [`Outbox::push`]).
    fn push(&mut self, action: Action, needs_commit: bool) {
        self.cx().out.push(action, needs_commit);
    }

    /// Sends a response on `conn` (see [`Outbox::respond`]).
    fn respond(&mut self, conn: ConnId, resp: Response, needs_commit: bool) {
        self.cx().out.respond(conn, resp, needs_commit);
    }

    /// Drops a dialog: leaves every room it joined (ntc:part to the others).
    pub(crate) fn drop_dialog(&mut self, dialog: DialogId) {
        let Some(gone) = self.dialogs.remove(dialog) else {
            return;
        };
        for (guid, user, last) in self.rooms.leave_all(dialog) {
            if last {
                (self.hooks.left_room)(&mut self.cx(), &guid, &user, dialog);
            }
        }
        if self.dialogs.sessions_of(&gone.user).is_empty() {
            self.rooms.follows_mut().forget_user(&gone.user);
        }
    }

    /// A dialog of `user` (not the SIPE bootstrap) was established: unless the user's
    /// followed rooms are noted already (another dialog), they are read from the store
    /// into the online index (`channel::follows`, the `ntc:newcontent` candidates). A
    /// store error leaves them out (logged): only new-content notices are lost.
    fn note_follows(&mut self, user: &str) {
        if self.rooms.follows().knows(user) {
            return;
        }
        match self.store.followed(user) {
            Ok(guids) => {
                for guid in guids {
                    self.rooms.follows_mut().add(user, &guid);
                }
            }
            Err(e) => tracing::warn!(user, "followed rooms not read: {e}"),
        }
    }
}

/// The one `503 Service Unavailable` + `Retry-After: <retry_after_s>` (+ `Server`) answer
/// to `req` (RFC 3261 21.5.4, 20.33), encoded: for a full core queue or forced overload
/// (`host`), a post whose batch did not commit (`cmd::grpchat`) and a retried post whose
/// first copy did not commit (here).
pub fn retry_later(req: &crate::sip::Request, retry_after_s: u32) -> Bytes {
    crate::sip::response_for(req, 503, "Service Unavailable")
        .with_header("Retry-After", retry_after_s.to_string())
        .with_header("Server", SERVER_HEADER)
        .encode()
}

/// The key of the Digest nonces' MAC: derived from the seed without drawing from the
/// seeded id generator (whose sequence fixes the transcripts).
fn nonce_secret(seed: u64) -> [u8; 32] {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(b"pchat digest nonce key");
    h.update(seed.to_le_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod room_model_tests;

#[cfg(test)]
mod identity_tests;
