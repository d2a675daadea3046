//! Live runs with their own rooms (issue 17, `pchat-sim run --target A --http B
//! --room-admin URI`): before a scenario with `[[room]]` runs against a live server, a
//! room administrator (a creator of the rooms' categories on that server) signs in over
//! SIP, takes a bearer token (`cmd:gethttptok`) and creates each room through the
//! room-management API (`POST /v1/rooms`; a room left by an earlier run - 409 - is set
//! back to the scenario's topic, description, privacy and members with `PATCH`). The
//! administrator stays a member and manager of the rooms it creates (the server makes
//! the creator both, and retiring a room needs a manager). A room the server already
//! has and the administrator may not manage (its own configured rooms) is used as it
//! is and left alone. After the run the rooms it made are retired: the API has no DELETE, so each room is made secret with the
//! administrator as its only member and manager - gone from every scenario user's view.
//!
//! What the API cannot create - categories, auditorium rooms, presenters, invitation
//! settings - keeps the scenario simulator-only unless `--server-config` shows the
//! server has it ([`unsupported`]).

use crate::client::Client;
use crate::http::{send, HttpRequest};
use crate::transcript::Transcript;
use pchat_server::cmd::{CmdKind, GetHttpToken};
use pchat_server::config::{Invitations, RoomConfig, RoomType};
use pchat_server::xccos::RplData;
use serde_json::json;

/// Who creates the rooms, and where.
#[derive(Debug, Clone)]
pub struct RoomAdmin {
    /// The administrator's SIP URI (a creator in the rooms' categories).
    pub uri: String,
    /// Its password, when the server uses SIP Digest.
    pub password: Option<String>,
    /// The server's SIP address, `HOST:PORT`.
    pub sip: String,
    /// The server's web services, `HOST:PORT`.
    pub http: String,
}

/// Why the API cannot make `rooms` as written, if it cannot: a room setting the
/// room-management API does not take.
pub fn unsupported(rooms: &[RoomConfig]) -> Option<String> {
    rooms.iter().find_map(|r| {
        let why = if r.room_type != RoomType::Normal {
            "is an auditorium"
        } else if !r.presenters.is_empty() {
            "has presenters"
        } else if r.invitations != Invitations::Inherit {
            "sets invitations"
        } else if r.disabled {
            "is disabled"
        } else {
            return None;
        };
        Some(format!(
            "room {:?} {why}, which the room-management API cannot set",
            r.name
        ))
    })
}

/// The JSON of `POST /v1/rooms` for `room`.
pub fn create_body(room: &RoomConfig) -> serde_json::Value {
    json!({
        "name": room.name,
        "category": room.category,
        "description": room.description,
        "topic": room.topic,
        "privacy": room.privacy.as_str(),
        "members": room.members,
        "managers": room.managers,
    })
}

/// The JSON of the `PATCH` that sets an existing `room` back to the scenario's values.
pub fn reset_body(room: &RoomConfig) -> serde_json::Value {
    json!({
        "description": room.description,
        "topic": room.topic,
        "privacy": room.privacy.as_str(),
        "add_members": room.members,
        "add_managers": room.managers,
    })
}

/// The JSON of the `PATCH` that retires `room` (secret; only `admin` left).
pub fn retire_body(room: &RoomConfig, admin: &str) -> serde_json::Value {
    let others = |v: &[String]| -> Vec<String> {
        v.iter()
            .filter(|u| !u.eq_ignore_ascii_case(admin))
            .cloned()
            .collect()
    };
    json!({
        "privacy": "secret",
        "add_managers": [admin],
        "remove_members": others(&room.members),
        "remove_managers": others(&room.managers),
    })
}

/// Creates (or resets) `rooms` on the live server; returns the rooms it created or
/// reset, which [`retire`] takes back after the run. A room that exists and that the
/// administrator may not manage (403: one of the server's own rooms) is left as it is
/// and not returned. Errors: sign-in, token or a refused request, with the server's
/// answer.
pub fn provision(admin: &RoomAdmin, rooms: &[RoomConfig]) -> Result<Vec<RoomConfig>, String> {
    let mut ours = Vec::new();
    let out = &mut ours;
    with_bearer(admin, |bearer| async move {
        for room in rooms {
            let guid = room_guid(admin, &room.name);
            let created = call(admin, &bearer, "POST", "/v1/rooms", create_body(room)).await?;
            if created.0 == 409 {
                let path = format!("/v1/rooms/{guid}");
                let reset = call(admin, &bearer, "PATCH", &path, reset_body(room)).await?;
                if reset.0 == 403 {
                    continue; // the server's own room: used as it is
                }
                expect(room, reset, 200)?;
            } else {
                expect(room, created, 201)?;
            }
            out.push(room.clone());
        }
        Ok(())
    })?;
    Ok(ours)
}

/// Retires `rooms` after the run (see the module docs). Errors as [`provision`].
pub fn retire(admin: &RoomAdmin, rooms: &[RoomConfig]) -> Result<(), String> {
    with_bearer(admin, |bearer| async move {
        for room in rooms {
            let path = format!("/v1/rooms/{}", room_guid(admin, &room.name));
            let body = retire_body(room, &admin.uri);
            expect(room, call(admin, &bearer, "PATCH", &path, body).await?, 200)?;
        }
        Ok(())
    })
}

fn room_guid(admin: &RoomAdmin, name: &str) -> String {
    let domain = admin.uri.rsplit_once('@').map_or("", |(_, d)| d);
    pchat_server::ids::room_guid(domain, name.trim())
}

fn expect(room: &RoomConfig, (status, body): (u16, String), want: u16) -> Result<(), String> {
    if status == want {
        return Ok(());
    }
    Err(format!(
        "room {:?}: the room-management API answered {status} (wanted {want}): {body}",
        room.name
    ))
}

/// Runs `work` with a bearer token of the administrator (signed in over SIP on a
/// runtime of its own; the dialog, and with it the token, ends afterwards).
fn with_bearer<F, Fut>(admin: &RoomAdmin, work: F) -> Result<(), String>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    rt.block_on(async {
        let mut client = sign_in(admin).await?;
        let (resp, rpl) = client
            .command(CmdKind::GetHttpToken(GetHttpToken))
            .await
            .map_err(|e| e.0)?;
        let token = match rpl.map(|r| r.data) {
            Some(RplData::Token { token, .. }) if resp.code == 200 => token,
            _ => {
                return Err(format!(
                    "{}: no bearer token (SIP {})",
                    admin.uri, resp.code
                ))
            }
        };
        let result = work(token).await;
        let _ = client.bye().await;
        result
    })
}

async fn sign_in(admin: &RoomAdmin) -> Result<Client, String> {
    let stream = tokio::net::TcpStream::connect(&admin.sip)
        .await
        .map_err(|e| format!("room admin: cannot connect to {}: {e}", admin.sip))?;
    let local = stream.local_addr().map_err(|e| e.to_string())?.to_string();
    let seed = std::process::id() as u64;
    let mut c = Client::start(
        "room-admin",
        &admin.uri,
        stream,
        &local,
        seed,
        Transcript::default(),
    );
    c.password = admin.password.clone();
    let sub = c.subscribe_provisioning().await.map_err(|e| e.0)?;
    let pool = c.pool_uri.clone();
    let inv = c.invite(&pool).await.map_err(|e| e.0)?;
    if sub.code != 200 || inv.code != 200 {
        return Err(format!(
            "room admin {}: sign-in answered {} / {}",
            admin.uri, sub.code, inv.code
        ));
    }
    Ok(c)
}

async fn call(
    admin: &RoomAdmin,
    bearer: &str,
    method: &str,
    path: &str,
    body: serde_json::Value,
) -> Result<(u16, String), String> {
    let stream = tokio::net::TcpStream::connect(&admin.http)
        .await
        .map_err(|e| format!("cannot connect to the web services at {}: {e}", admin.http))?;
    let req = HttpRequest {
        method: method.into(),
        path: path.into(),
        bearer: bearer.into(),
        content_type: "application/json".into(),
        body: body.to_string().into(),
    };
    let resp = send(stream, &admin.http, req).await?;
    Ok((
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(text: &str) -> RoomConfig {
        let cfg = pchat_server::config::Config::from_toml(
            &format!("domain = \"contoso.com\"\n{text}"),
            std::path::Path::new("r.toml"),
        )
        .unwrap();
        cfg.rooms[0].clone()
    }

    #[test]
    fn bodies_carry_the_scenario_room() {
        let r = room("[[room]]\nname = \"Ops\"\nprivacy = \"closed\"\ntopic = \"t\"\nmembers = [\"sip:u1@contoso.com\"]\nmanagers = [\"sip:admin@contoso.com\"]\n");
        let c = create_body(&r);
        assert_eq!(c["name"], "Ops");
        assert_eq!(c["privacy"], "closed");
        assert_eq!(c["members"][0], "sip:u1@contoso.com");
        let retire = retire_body(&r, "sip:admin@contoso.com");
        assert_eq!(retire["privacy"], "secret");
        assert_eq!(retire["remove_members"][0], "sip:u1@contoso.com");
        assert_eq!(retire["remove_managers"].as_array().map(Vec::len), Some(0));
    }

    #[test]
    fn what_the_api_cannot_make_is_named() {
        assert!(unsupported(&[room("[[room]]\nname = \"A\"\n")]).is_none());
        let why =
            unsupported(&[room("[[room]]\nname = \"Stage\"\ntype = \"auditorium\"\n")]).unwrap();
        assert!(
            why.contains("\"Stage\"") && why.contains("auditorium"),
            "{why}"
        );
    }
}
