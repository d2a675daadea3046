//! SIP dialogs (RFC 3261 section 12) the server holds as UAS: one per client session
//! established by INVITE. Identified by Call-ID + remote tag (client's From-tag) + local
//! tag (our To-tag); the server sends its XCCOS replies, notices and relayed messages as
//! INFO requests inside them (RFC 6086).

use super::ConnId;
use crate::channel::DialogId;
use std::collections::BTreeMap;

/// One dialog.
#[derive(Debug, Clone)]
pub struct Dialog {
    /// Table key.
    pub id: DialogId,
    /// Connection the dialog runs on (requests go back over the same TCP connection).
    pub conn: ConnId,
    /// Call-ID.
    pub call_id: String,
    /// Our tag (To-tag of our 200 OK).
    pub local_tag: String,
    /// The client's tag (From-tag of its INVITE).
    pub remote_tag: String,
    /// Our URI header value for From of our requests (the INVITE's To, with our tag).
    pub local_party: String,
    /// Their URI header value for To of our requests (the INVITE's From, with its tag).
    pub remote_party: String,
    /// The user (addr-spec of the INVITE's From), e.g. `sip:user1@contoso.com`.
    pub user: String,
    /// Remote target for our requests (the INVITE's Contact URI, RFC 3261 12.1.1).
    pub remote_target: String,
    /// Last CSeq number we used (our requests count up from 1).
    pub local_cseq: u32,
    /// Last CSeq number seen from the client.
    pub remote_cseq: u32,
    /// Whether the ACK for the 200 OK arrived.
    pub confirmed: bool,
    /// Dialog dropped when not refreshed by then (ms since epoch, RFC 4028).
    pub expires_at_ms: i64,
    /// The SIPE bootstrap dialog to `sip:ocschat@<domain>` (only `cmd:requri` expected).
    pub bootstrap: bool,
}

/// All dialogs, by id and by (Call-ID, remote tag): two clients may pick the same
/// Call-ID, and even the same From-tag (SIPE draws both from an unseeded `rand()`, so
/// two SIPE processes draw the same sequence); RFC 3261 12 tells their dialogs apart by
/// our local tag, which is unique.
#[derive(Debug, Default)]
pub struct Dialogs {
    by_id: BTreeMap<DialogId, Dialog>,
    by_call: BTreeMap<(String, String), std::collections::BTreeSet<DialogId>>,
    by_user: BTreeMap<String, std::collections::BTreeSet<DialogId>>,
    next_id: DialogId,
}

impl Dialogs {
    /// Adds a dialog and returns its id (the `id` field is overwritten).
    pub fn insert(&mut self, mut d: Dialog) -> DialogId {
        self.next_id.0 += 1;
        d.id = self.next_id;
        self.by_call
            .entry((d.call_id.clone(), d.remote_tag.clone()))
            .or_default()
            .insert(d.id);
        self.by_user.entry(d.user.clone()).or_default().insert(d.id);
        self.by_id.insert(d.id, d);
        self.next_id
    }

    /// The dialog a request belongs to: same Call-ID, the request's From-tag is the
    /// dialog's remote tag and its To-tag our local tag (RFC 3261 12.2.2).
    pub fn find(
        &self,
        call_id: &str,
        from_tag: Option<&str>,
        to_tag: Option<&str>,
    ) -> Option<DialogId> {
        self.with_call(call_id, from_tag?)
            .find(|id| self.by_id.get(id).map(|d| d.local_tag.as_str()) == to_tag)
    }

    /// The dialogs with this Call-ID whose remote tag (the client's tag) is `remote_tag`,
    /// whatever our tag, in id order.
    fn with_call<'a>(
        &'a self,
        call_id: &str,
        remote_tag: &str,
    ) -> impl Iterator<Item = DialogId> + 'a {
        self.by_call
            .get(&(call_id.to_string(), remote_tag.to_string()))
            .into_iter()
            .flatten()
            .copied()
    }

    /// The dialog on connection `conn` with this Call-ID whose remote tag is
    /// `remote_tag`, whatever our tag: the From-tag of a client's request (an INVITE, a
    /// CANCEL), or the To-tag of a response to one of our requests. Another client's
    /// dialog with the same Call-ID and tag, on another connection, is not it.
    pub fn by_call(&self, call_id: &str, remote_tag: &str, conn: ConnId) -> Option<DialogId> {
        self.with_call(call_id, remote_tag)
            .find(|id| self.by_id.get(id).is_some_and(|d| d.conn == conn))
    }

    /// By id.
    pub fn get(&self, id: DialogId) -> Option<&Dialog> {
        self.by_id.get(&id)
    }

    /// Mutable, by id.
    pub fn get_mut(&mut self, id: DialogId) -> Option<&mut Dialog> {
        self.by_id.get_mut(&id)
    }

    /// Removes and returns a dialog.
    pub fn remove(&mut self, id: DialogId) -> Option<Dialog> {
        let d = self.by_id.remove(&id)?;
        let key = (d.call_id.clone(), d.remote_tag.clone());
        if let Some(set) = self.by_call.get_mut(&key) {
            set.remove(&id);
            if set.is_empty() {
                self.by_call.remove(&key);
            }
        }
        if let Some(set) = self.by_user.get_mut(&d.user) {
            set.remove(&id);
            if set.is_empty() {
                self.by_user.remove(&d.user);
            }
        }
        Some(d)
    }

    /// Ids of `user`'s dialogs, in id order.
    pub fn of_user(&self, user: &str) -> Vec<DialogId> {
        self.by_user
            .get(user)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Ids of `user`'s chat sessions: its dialogs other than the SIPE bootstrap dialog
    /// (which carries only `cmd:requri`), in id order. Empty: the user is not online here.
    pub fn sessions_of(&self, user: &str) -> Vec<DialogId> {
        self.by_user
            .get(user)
            .into_iter()
            .flatten()
            .copied()
            .filter(|id| self.by_id.get(id).is_some_and(|d| !d.bootstrap))
            .collect()
    }

    /// Ids of dialogs on a connection.
    pub fn on_conn(&self, conn: ConnId) -> Vec<DialogId> {
        self.by_id
            .values()
            .filter(|d| d.conn == conn)
            .map(|d| d.id)
            .collect()
    }

    /// Ids of dialogs whose session expired before `now_ms`.
    pub fn expired(&self, now_ms: i64) -> Vec<DialogId> {
        self.by_id
            .values()
            .filter(|d| d.expires_at_ms <= now_ms)
            .map(|d| d.id)
            .collect()
    }

    /// Number of dialogs.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
    /// The earliest session expiry of the dialogs (ms since the epoch), if any.
    pub fn next_expiry(&self) -> Option<i64> {
        self.by_id.values().map(|d| d.expires_at_ms).min()
    }

    /// Whether the indices agree with the table (checked by `debug_assert!` after every
    /// batch): each table key is its dialog's id and at most the last id handed out;
    /// every (Call-ID, remote tag) entry names a dialog with both; the per-user index holds
    /// exactly the dialogs of each user, with no empty sets.
    pub fn indices_agree(&self) -> bool {
        let table = self
            .by_id
            .iter()
            .all(|(id, d)| *id == d.id && *id <= self.next_id);
        let calls = self.by_call.iter().all(|((c, t), ids)| {
            !ids.is_empty()
                && ids.iter().all(|id| {
                    self.by_id
                        .get(id)
                        .is_some_and(|d| &d.call_id == c && &d.remote_tag == t)
                })
        });
        let users = self.by_user.iter().all(|(u, ids)| {
            !ids.is_empty()
                && ids
                    .iter()
                    .all(|id| self.by_id.get(id).is_some_and(|d| &d.user == u))
        });
        let indexed: usize = self.by_user.values().map(|s| s.len()).sum();
        let keyed = self.by_call.values().map(|s| s.len()).sum::<usize>() == self.by_id.len();
        table && calls && keyed && users && indexed == self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog(call_id: &str, user: &str) -> Dialog {
        dialog_tagged(call_id, "r", user)
    }

    fn dialog_tagged(call_id: &str, remote_tag: &str, user: &str) -> Dialog {
        Dialog {
            id: DialogId(0),
            conn: ConnId(1),
            call_id: call_id.into(),
            local_tag: "l".into(),
            remote_tag: remote_tag.into(),
            local_party: String::new(),
            remote_party: String::new(),
            user: user.into(),
            remote_target: String::new(),
            local_cseq: 0,
            remote_cseq: 0,
            confirmed: true,
            expires_at_ms: 0,
            bootstrap: false,
        }
    }

    #[test]
    fn indices_agree_through_inserts_and_removes_and_catch_a_stale_entry() {
        let mut t = Dialogs::default();
        let a = t.insert(dialog("c1", "sip:a@x"));
        let b = t.insert(dialog("c2", "sip:a@x"));
        assert!(t.indices_agree());
        assert_eq!(t.of_user("sip:a@x"), vec![a, b]);
        t.remove(a);
        assert!(t.indices_agree());
        // A removal that forgot an index is caught.
        t.by_id.remove(&b);
        assert!(!t.indices_agree());
    }

    #[test]
    fn two_users_with_one_call_id_are_two_dialogs() {
        let mut t = Dialogs::default();
        let a = t.insert(dialog_tagged("same", "ta", "sip:a@x"));
        let b = t.insert(dialog_tagged("same", "tb", "sip:b@x"));
        assert_ne!(a, b);
        assert!(t.indices_agree());
        assert_eq!(t.find("same", Some("ta"), Some("l")), Some(a));
        assert_eq!(t.find("same", Some("tb"), Some("l")), Some(b));
        assert_eq!(t.find("same", Some("tc"), Some("l")), None);
        assert_eq!(t.find("same", Some("ta"), Some("other")), None);
        assert_eq!(t.find("same", None, Some("l")), None);
        t.remove(a);
        assert!(t.indices_agree());
        let conn = t.get(b).expect("b").conn;
        assert_eq!(t.by_call("same", "tb", conn), Some(b));
        assert_eq!(t.by_call("same", "ta", conn), None);
    }

    #[test]
    fn two_clients_with_one_call_id_and_one_from_tag_are_two_dialogs() {
        let mut t = Dialogs::default();
        let mut da = dialog_tagged("same", "t", "sip:a@x");
        da.local_tag = "la".into();
        da.conn = ConnId(1);
        let mut db = dialog_tagged("same", "t", "sip:b@x");
        db.local_tag = "lb".into();
        db.conn = ConnId(2);
        let (a, b) = (t.insert(da), t.insert(db));
        assert!(t.indices_agree());
        assert_eq!(t.find("same", Some("t"), Some("la")), Some(a));
        assert_eq!(t.find("same", Some("t"), Some("lb")), Some(b));
        assert_eq!(t.by_call("same", "t", ConnId(1)), Some(a));
        assert_eq!(t.by_call("same", "t", ConnId(2)), Some(b));
        assert_eq!(t.by_call("same", "t", ConnId(3)), None);
        t.remove(a);
        assert!(t.indices_agree());
        assert_eq!(t.find("same", Some("t"), Some("lb")), Some(b));
        assert_eq!(t.by_call("same", "t", ConnId(1)), None);
    }
}
