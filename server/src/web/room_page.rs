//! The room page's HTML (`GET /rooms/{room}`, `web/pages.rs`): attributes, history
//! with paging and search, file links, roles, and the edit forms for managers.
//! maud escapes every interpolated value.

use super::api::percent_encode as segment;
use super::api::site::{HistoryItem, RoomPage};
use super::layout::{page, privacy_select, type_select};
use maud::{html, Markup};

fn people(p: &RoomPage, list: &[String], role: &str) -> Markup {
    html! {
        ul.people {
            @for u in list {
                li {
                    span { (u) }
                    @if p.room.view.manager {
                        form.inline method="post" action={ "/rooms/" (p.room.view.id) "/roles" } {
                            input type="hidden" name="csrf" value=(p.csrf);
                            input type="hidden" name="action" value="remove";
                            input type="hidden" name="role" value=(role);
                            input type="hidden" name="user" value=(u);
                            button.danger type="submit" title={ "remove " (role) } { "Remove" }
                        }
                    }
                }
            }
            @if list.is_empty() { li.note { "none" } }
        }
    }
}

fn message(p: &RoomPage, m: &HistoryItem) -> Markup {
    html! {
        div.msg id={ "m" (m.id) } {
            div.meta { (m.author) " · " (m.ts) }
            div.text { (m.text) }
            @if let Some(f) = &m.file {
                div { a.file href={ "/rooms/" (p.room.view.id) "/files/" (segment(f)) } { "Download " (f) } }
            }
        }
    }
}

fn history(p: &RoomPage) -> Markup {
    html! {
        h2 { "History" }
        @if let Some(note) = &p.history_note {
            p.note { (note) }
        } @else {
            form.row #search method="get" action={ "/rooms/" (p.room.view.id) } {
                label { "Search" input type="search" name="q" value=[p.search.as_deref()]; }
                button type="submit" { "Search" }
                @if p.search.is_some() { a href={ "/rooms/" (p.room.view.id) } { "All messages" } }
            }
            @if let Some(before) = p.older {
                p.pager { a #older href={ "/rooms/" (p.room.view.id) "?before=" (before) } { "Older messages" } }
            }
            div.history {
                @for m in &p.history { (message(p, m)) }
                @if p.history.is_empty() { p.note { "No messages." } }
            }
        }
    }
}

fn role_form(p: &RoomPage, role: &str, id: &str) -> Markup {
    html! {
        form.row id=(id) method="post" action={ "/rooms/" (p.room.view.id) "/roles" } {
            input type="hidden" name="csrf" value=(p.csrf);
            input type="hidden" name="action" value="add";
            input type="hidden" name="role" value=(role);
            label { { "Add " (role) } input type="text" name="user" placeholder="user2 or sip:user2@domain" required; }
            button type="submit" { "Add " (role) }
        }
    }
}

fn edit_forms(p: &RoomPage) -> Markup {
    let (d, r) = (&p.room, &p.room.view);
    html! {
        h2 { "Manage room" }
        form.card #edit method="post" action={ "/rooms/" (r.id) "/edit" } {
            input type="hidden" name="csrf" value=(p.csrf);
            label { "Description" input type="text" name="description" value=(r.description); }
            label { "Topic" input type="text" name="topic" value=(r.topic); }
            label { "Privacy" (privacy_select(&r.privacy)) }
            label { "Type" (type_select(&d.room_type)) }
            button type="submit" { "Save" }
        }
        (role_form(p, "member", "add-member"))
        (role_form(p, "manager", "add-manager"))
        (role_form(p, "presenter", "add-presenter"))
    }
}

/// The whole room page.
pub fn markup(p: &RoomPage) -> Markup {
    let (d, r) = (&p.room, &p.room.view);
    let body = html! {
        p { a href="/rooms" { "← My rooms" } }
        h1 #room-name { (r.name) }
        dl.attrs {
            dt { "Category" } dd { (r.category) }
            dt { "Description" } dd #description { (r.description) }
            dt { "Topic" } dd #topic { (r.topic) }
            dt { "Privacy" } dd #privacy { (r.privacy) }
            dt { "Type" } dd #type { (d.room_type) }
            dt { "URI" } dd { code { (r.uri) } }
        }
        (history(p))
        h2 { "Members" } (people(p, &r.members, "member"))
        h2 { "Managers" } (people(p, &r.managers, "manager"))
        h2 { "Presenters" } (people(p, &d.presenters, "presenter"))
        @if r.manager { (edit_forms(p)) }
    };
    page(&r.name, Some((&p.user, &p.csrf)), body)
}
