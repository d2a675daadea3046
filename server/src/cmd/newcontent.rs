//! `ntc:newcontent` **(design)**: after a post, each user who follows the room, is
//! online, may read it ([`Op::ReadHistory`]) and has not joined it on any dialog in
//! this session is told the room's unread count:
//! `<ntc id="ntc:newcontent"><data><chanib uri="…" unread="N"/></data></ntc>`.
//! The count is the number of messages since the user last joined the room or read its
//! newest history. Like the relays, these notices are released only after the post is
//! committed.

use crate::channel::authz::{self, Op};
use crate::core::BatchCx;
use crate::xccos::{Body, Ntc, NtcData};
use std::collections::BTreeSet;

/// Notifies the followers of room `guid` who are online elsewhere (see module docs),
/// released with the batch's commit. Store errors skip the notification (logged):
/// the post itself stands.
pub fn notify(cx: &mut BatchCx, guid: &str) {
    notify_as(cx, guid, true);
}

/// [`notify`] for a post already committed: in a pool every member notifies its own
/// followers when it relays the post from the store's log (`crate::pool`), whichever
/// member took it.
pub fn notify_committed(cx: &mut BatchCx, guid: &str) {
    notify_as(cx, guid, false);
}

fn notify_as(cx: &mut BatchCx, guid: &str, wait_for_commit: bool) {
    // The online users noted as following the room (a superset, confirmed below by
    // `unread_count`): not every user who ever followed it.
    let mut targets = Vec::new();
    if let Some(room) = cx.rooms.get(guid) {
        let mut followers = cx.rooms.follows().of_room(guid).peekable();
        let in_room: BTreeSet<&str> = match followers.peek() {
            Some(_) => room.joined.values().map(String::as_str).collect(),
            None => BTreeSet::new(),
        };
        for user in followers {
            if in_room.contains(user.as_str())
                || authz::check(cx.rooms, room, user, Op::ReadHistory).is_err()
            {
                continue;
            }
            let dialogs = cx.dialogs().sessions_of(user);
            if !dialogs.is_empty() {
                targets.push((user.clone(), dialogs, room.uri.clone()));
            }
        }
    }
    for (user, dialogs, chan_uri) in targets {
        let unread = match cx.store.unread_count(&user, guid) {
            Ok(Some(n)) => n,
            // Unfollowed in this session (the online index keeps the room).
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("new-content notification skipped: {e}");
                continue;
            }
        };
        let body = cx.out.encode_envelope(Body::Ntc(Ntc {
            id: "ntc:newcontent".to_string(),
            data: NtcData::NewContent { chan_uri, unread },
        }));
        for d in dialogs {
            cx.out.send_info(d, body.clone(), wait_for_commit);
        }
    }
}
