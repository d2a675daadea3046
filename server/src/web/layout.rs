//! The frame shared by every web page (`pages.rs`, `room_page.rs`): head, stylesheet,
//! who is signed in and the sign-out form; small shared widgets.

use maud::{html, Markup, DOCTYPE};

/// The frame of every page: title, stylesheet, who is signed in, sign-out.
pub fn page(title: &str, who: Option<(&str, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " - pchat" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header {
                    a.brand href="/rooms" { "pchat" }
                    @if let Some((user, csrf)) = who {
                        span.who { "Signed in as " b { (user) } }
                        form.inline method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The privacy choice of a form, `current` selected.
pub fn privacy_select(current: &str) -> Markup {
    html! {
        select name="privacy" {
            @for p in ["open", "closed", "secret"] {
                option value=(p) selected[p == current] { (p) }
            }
        }
    }
}

/// The room type drop-down (`name="type"`), `current` selected.
pub fn type_select(current: &str) -> Markup {
    html! {
        select name="type" {
            @for t in ["normal", "auditorium"] {
                option value=(t) selected[t == current] { (t) }
            }
        }
    }
}
