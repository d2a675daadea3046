//! The web pages (issue 16) without a browser: a real server on loopback, requests
//! as a browser sends them (forms, cookies). Sign-in form and its headers, wrong
//! passwords and the shared brute-force guard, cookie attributes, CSP on every
//! response, escaping of hostile room names, CSRF, a non-manager's edit, history
//! paging/search and file links. Every refusal is checked to change nothing.

mod web_common;

use pchat_server::compliance::EventKind;

use web_common::{
    enc, guid, http, post, sign_in, start, start_signed_in, DOMAIN, FILE_BYTES, FILE_NAME,
};

fn assert_csp(r: &web_common::Resp) {
    let csp = r.header("content-security-policy").expect("CSP header");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
}

#[tokio::test]
async fn get_root_is_a_sign_in_form_under_a_csp() {
    let s = start(None).await;
    let r = http(&s.http, "GET", "/", "", None).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{r:?}"
    );
    assert_csp(&r);
    assert!(r.body.contains("<form"), "{}", r.body);
    assert!(r.body.contains(r#"type="password""#), "{}", r.body);
    assert!(!r.body.contains("<script"), "no script at all");
    assert!(!r.csrf().is_empty());
    let c = r.all("set-cookie").join("\n");
    assert!(c.contains("pchat_signin=") && c.contains("HttpOnly") && c.contains("SameSite=Strict"));
    // Every other response carries it too: stylesheet, JSON API, 404.
    for path in ["/style.css", "/openapi.json", "/v1/rooms", "/nowhere"] {
        assert_csp(&http(&s.http, "GET", path, "", None).await);
    }
    s.stop().await;
}

#[tokio::test]
async fn sign_in_sets_a_strict_httponly_cookie_and_sign_out_ends_the_session() {
    let s = start(None).await;
    let form = http(&s.http, "GET", "/", "", None).await;
    let (jar, body) = form.user1_sign_in();
    let r = http(&s.http, "POST", "/signin", &jar, Some(&body)).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/rooms"));
    let set = r.session_set_cookie();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: no Secure ({set})");
    let cookie = format!("pchat_session={}", r.cookie("pchat_session").unwrap());
    let rooms = http(&s.http, "GET", "/rooms", &cookie, None).await;
    assert_eq!(rooms.status, 200);
    assert!(rooms.body.contains("Design"), "{}", rooms.body);
    assert!(rooms.body.contains("sip:user1@contoso.com"));
    // Sign out (with the session's CSRF token): the cookie no longer opens anything.
    let out = format!("csrf={}", rooms.csrf());
    let r = http(&s.http, "POST", "/signout", &cookie, Some(&out)).await;
    assert_eq!(r.status, 303);
    assert!(r.all("set-cookie").iter().any(|c| c.contains("Max-Age=0")));
    let again = http(&s.http, "GET", "/rooms", &cookie, None).await;
    assert_eq!((again.status, again.header("location")), (303, Some("/")));
    s.stop().await;
}

#[tokio::test]
async fn secure_cookie_when_served_over_https() {
    let s = start(Some("https://chat.example.com")).await;
    let form = http(&s.http, "GET", "/", "", None).await;
    assert!(form.all("set-cookie")[0].contains("Secure"));
    let (jar, body) = form.user1_sign_in();
    let r = http(&s.http, "POST", "/signin", &jar, Some(&body)).await;
    let set = r.all("set-cookie").join("\n");
    assert!(
        set.contains("pchat_session=") && set.contains("Secure"),
        "{set}"
    );
    s.stop().await;
}

#[tokio::test]
async fn wrong_password_and_missing_token_are_refused_and_failures_lock_out() {
    let s = start(None).await;
    let form = http(&s.http, "GET", "/", "", None).await;
    let token = form.cookie("pchat_signin").unwrap();
    let jar = format!("pchat_signin={token}");
    let attempt =
        |user: &str, pw: &str, csrf: &str| format!("csrf={csrf}&username={user}&password={pw}");
    let csrf = form.csrf();
    // No or a wrong sign-in token: refused before any password check.
    for bad in ["", "forged"] {
        let r = post(&s.http, "/signin", &jar, &attempt("user1", "pw-one", bad)).await;
        assert_eq!(r.status, 403, "{r:?}");
        assert!(r.cookie("pchat_session").is_none());
    }
    let r = post(&s.http, "/signin", "", &attempt("user1", "pw-one", &csrf)).await;
    assert_eq!(r.status, 403, "token without its cookie");
    // Wrong passwords, unknown users: 401, the form again, no session.
    for (u, p) in [("user1", "nope"), ("ghost", "pw-one"), ("user1", "")] {
        let r = post(&s.http, "/signin", &jar, &attempt(u, p, &csrf)).await;
        assert_eq!(r.status, 401, "{u}/{p}: {r:?}");
        assert!(r.body.contains("Wrong user name or password"));
        assert!(r.body.contains(r#"type="password""#));
        assert!(r.cookie("pchat_session").is_none());
    }
    // The 4th failure for user1 (max_failures = 4, shared with SIP Digest) locks the
    // user out: the right password is refused too, until the lockout ends.
    let r = post(&s.http, "/signin", &jar, &attempt("user1", "nope", &csrf)).await;
    assert_eq!(r.status, 401);
    let r = post(&s.http, "/signin", &jar, &attempt("user1", "pw-one", &csrf)).await;
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.cookie("pchat_session").is_none());
    s.stop().await;
}

#[tokio::test]
async fn a_hostile_room_name_renders_as_text() {
    let s = start(None).await;
    let me = sign_in(&s.http, "user1", "pw-one").await;
    let rooms = http(&s.http, "GET", "/rooms", &me, None).await;
    let name = "<img src=x onerror=alert(1)>";
    let topic = "\"><script>alert(2)</script>";
    let body = format!(
        "csrf={}&name={}&category=Product&description=d&topic={}&privacy=open&members=user2",
        rooms.csrf(),
        enc(name),
        enc(topic)
    );
    let r = http(&s.http, "POST", "/rooms", &me, Some(&body)).await;
    assert_eq!(r.status, 303, "{r:?}");
    let id = guid(name);
    assert_eq!(r.header("location"), Some(format!("/rooms/{id}").as_str()));
    for page in [format!("/rooms/{id}"), "/rooms".to_string()] {
        let p = http(&s.http, "GET", &page, &me, None).await;
        assert_eq!(p.status, 200);
        assert!(
            p.body.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{}",
            p.body
        );
        assert!(!p.body.contains("<img"), "{}", p.body);
        assert!(!p.body.contains("<script"), "{}", p.body);
    }
    let p = http(&s.http, "GET", &format!("/rooms/{id}"), &me, None).await;
    assert!(p.body.contains("&quot;&gt;&lt;script&gt;"), "{}", p.body);
    assert!(
        p.body.contains("sip:user2@contoso.com"),
        "member added by user part"
    );
    s.stop().await;
}

/// The topic shown on the Design page to user1.
async fn topic(addr: &str, me: &str) -> String {
    let p = http(addr, "GET", &format!("/rooms/{}", guid("Design")), me, None).await;
    let re = regex::Regex::new(r#"<dd id="topic">([^<]*)</dd>"#).unwrap();
    re.captures(&p.body).expect("topic")[1].to_string()
}

#[tokio::test]
async fn csrf_missing_or_wrong_is_refused_and_changes_nothing() {
    let (s, me, other) = start_signed_in().await;
    let room = guid("Design");
    let edit = format!("/rooms/{room}/edit");
    let others_token = http(&s.http, "GET", "/rooms", &other, None).await.csrf();
    for csrf in [
        None,
        Some(""),
        Some("0123456789abcdef"),
        Some(others_token.as_str()),
    ] {
        let body = match csrf {
            None => "topic=hijacked".to_string(),
            Some(c) => format!("csrf={c}&topic=hijacked"),
        };
        let r = http(&s.http, "POST", &edit, &me, Some(&body)).await;
        assert_eq!(r.status, 403, "{csrf:?}: {r:?}");
        assert!(r.body.contains("CSRF"), "{}", r.body);
        let r = post(
            &s.http,
            "/rooms",
            &me,
            &format!("{}&name=Sneaky&category=Product", body),
        )
        .await;
        assert_eq!(r.status, 403);
    }
    assert_eq!(topic(&s.http, &me).await, "Q3 layout");
    let rooms = http(&s.http, "GET", "/rooms", &me, None).await;
    assert!(!rooms.body.contains("Sneaky"));
    // With the session's own token it goes through.
    let body = format!(
        "csrf={}&topic=Q4+layout&description=Design+discussions&privacy=closed",
        rooms.csrf()
    );
    let r = http(&s.http, "POST", &edit, &me, Some(&body)).await;
    assert_eq!(r.status, 303, "{r:?}");
    assert_eq!(topic(&s.http, &me).await, "Q4 layout");
    s.stop().await;
}

#[tokio::test]
async fn a_non_manager_cannot_edit_and_nothing_changes() {
    let (s, me, member) = start_signed_in().await;
    let room = guid("Design");
    let page = http(&s.http, "GET", &format!("/rooms/{room}"), &member, None).await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains(r#"id="edit""#),
        "no edit form for a member"
    );
    let csrf = page.csrf();
    let r = post(
        &s.http,
        &format!("/rooms/{room}/edit"),
        &member,
        &format!("csrf={csrf}&topic=mine"),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    let add = format!("csrf={csrf}&action=add&role=manager&user=user2");
    let r = post(&s.http, &format!("/rooms/{room}/roles"), &member, &add).await;
    assert_eq!(r.status, 403);
    assert_eq!(topic(&s.http, &me).await, "Q3 layout");
    let p = http(&s.http, "GET", &format!("/rooms/{room}"), &me, None).await;
    let managers = p
        .body
        .split("<h2>Managers</h2>")
        .nth(1)
        .unwrap()
        .split("</ul>")
        .next()
        .unwrap();
    assert!(!managers.contains("user2"), "{managers}");
    // user3 is no member of the closed room: it is named, its history is not shown.
    let outsider = sign_in(&s.http, "user3", "pw-three").await;
    let p = http(&s.http, "GET", &format!("/rooms/{room}"), &outsider, None).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("only members can read"), "{}", p.body);
    assert!(!p.body.contains("message number"));
    // The manager adds user3 as a member; now user3 reads the history.
    let add = format!("csrf={}&action=add&role=member&user=user3", p.csrf());
    let r = post(&s.http, &format!("/rooms/{room}/roles"), &outsider, &add).await;
    assert_eq!(r.status, 403, "user3 cannot add itself");
    let mine = http(&s.http, "GET", "/rooms", &me, None).await.csrf();
    let add = format!("csrf={mine}&action=add&role=member&user=user3");
    let r = post(&s.http, &format!("/rooms/{room}/roles"), &me, &add).await;
    assert_eq!(r.status, 303, "{r:?}");
    let p = http(&s.http, "GET", &format!("/rooms/{room}"), &outsider, None).await;
    assert!(p.body.contains("message number 25"), "{}", p.body);
    s.stop().await;
}

#[tokio::test]
async fn history_is_paged_searchable_and_links_files() {
    let s = start(None).await;
    let me = sign_in(&s.http, "user2", "pw-two").await;
    let room = guid("Design");
    let p = http(&s.http, "GET", &format!("/rooms/{room}"), &me, None).await;
    assert!(p.body.contains("message number 25"));
    assert!(!p.body.contains("message number 6<"), "older than a page");
    let re = regex::Regex::new(r#"href="/rooms/[0-9a-f-]+\?before=(\d+)""#).unwrap();
    let before = re.captures(&p.body).expect("older link")[1].to_string();
    let older = http(
        &s.http,
        "GET",
        &format!("/rooms/{room}?before={before}"),
        &me,
        None,
    )
    .await;
    assert!(older.body.contains("message number 1<"), "{}", older.body);
    assert!(!older.body.contains("message number 25"));
    let found = http(
        &s.http,
        "GET",
        &format!("/rooms/{room}?q=BANANA"),
        &me,
        None,
    )
    .await;
    assert!(found.body.contains("the banana milestone"));
    assert!(!found.body.contains("message number"));
    let link = format!("/rooms/{room}/files/{}", enc(FILE_NAME));
    assert!(p.body.contains(&format!(r#"href="{link}""#)), "{}", p.body);
    let f = http(&s.http, "GET", &link, &me, None).await;
    assert_eq!(f.status, 200);
    assert_eq!(f.body.as_bytes(), FILE_BYTES);
    // Signed out: no file, no room page.
    assert_eq!(http(&s.http, "GET", &link, "", None).await.status, 303);
    let outsider = sign_in(&s.http, "user3", "pw-three").await;
    assert_eq!(
        http(&s.http, "GET", &link, &outsider, None).await.status,
        403
    );
    // The same audited events as the XCCOS and JSON API twins: a BACKCHAT per history
    // page read (as cmd:bccontext), a FILEDOWNLOAD per download; none for refusals.
    let user2 = format!("sip:user2@{DOMAIN}");
    let events = s.stop_and_export().await;
    let count = |kind: EventKind, user: &str| {
        events
            .iter()
            .filter(|e| e.kind == kind && e.user == user && e.room_uri.ends_with(&room))
            .count()
    };
    assert_eq!(count(EventKind::Backchat, &user2), 3, "{events:#?}");
    assert_eq!(count(EventKind::FileDownload, &user2), 1, "{events:#?}");
    let user3 = format!("sip:user3@{DOMAIN}");
    assert_eq!(count(EventKind::FileDownload, &user3), 0);
    let search = events
        .iter()
        .find(|e| e.kind == EventKind::Backchat && e.content.contains("search"))
        .expect("the search is recorded");
    assert!(
        search.content.contains("keyword=BANANA"),
        "{}",
        search.content
    );
}

#[tokio::test]
async fn only_creators_create_rooms_and_a_taken_name_is_refused() {
    let s = start(None).await;
    let member = sign_in(&s.http, "user2", "pw-two").await;
    let page = http(&s.http, "GET", "/rooms", &member, None).await;
    assert!(
        !page.body.contains(r#"id="create""#),
        "user2 creates nowhere: no form"
    );
    let body = format!("csrf={}&name=Mine&category=Product", page.csrf());
    let r = http(&s.http, "POST", "/rooms", &member, Some(&body)).await;
    assert_eq!(r.status, 403, "{r:?}");
    let creator = sign_in(&s.http, "user1", "pw-one").await;
    let mine = format!("/rooms/{}", guid("Mine"));
    assert_eq!(
        http(&s.http, "GET", &mine, &creator, None).await.status,
        404
    );
    // A creator, but the name is taken: 409, the existing room unchanged.
    let csrf = http(&s.http, "GET", "/rooms", &creator, None).await.csrf();
    let body = format!("csrf={csrf}&name=design&category=Product&topic=other");
    let r = http(&s.http, "POST", "/rooms", &creator, Some(&body)).await;
    assert_eq!(r.status, 409, "{r:?}");
    assert_eq!(topic(&s.http, &creator).await, "Q3 layout");
    s.stop().await;
}

/// The `<ul>` after heading `h2` on a room page.
fn section<'a>(body: &'a str, h2: &str) -> &'a str {
    body.split(&format!("<h2>{h2}</h2>"))
        .nth(1)
        .and_then(|s| s.split("</ul>").next())
        .unwrap_or_else(|| panic!("no {h2} section in {body}"))
}

/// Type and presenters of Design as user1 sees them.
async fn type_and_presenters(addr: &str, me: &str) -> (String, String) {
    let p = http(addr, "GET", &format!("/rooms/{}", guid("Design")), me, None).await;
    let re = regex::Regex::new(r#"<dd id="type">([^<]*)</dd>"#).unwrap();
    let t = re.captures(&p.body).expect("type")[1].to_string();
    (t, section(&p.body, "Presenters").to_string())
}

#[tokio::test]
async fn managers_set_the_type_and_presenters_others_are_refused() {
    let (s, me, member) = start_signed_in().await;
    let room = guid("Design");
    let (edit, roles) = (
        format!("/rooms/{room}/edit"),
        format!("/rooms/{room}/roles"),
    );
    let page = http(&s.http, "GET", &format!("/rooms/{room}"), &me, None).await;
    assert!(
        page.body.contains(r#"<select name="type">"#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"id="add-presenter""#));
    let before = type_and_presenters(&s.http, &me).await;
    assert_eq!(before.0, "normal");
    assert!(!before.1.contains("user2"), "{}", before.1);
    // A member (not a manager) tries both: 403, nothing changed.
    let csrf = http(&s.http, "GET", &format!("/rooms/{room}"), &member, None)
        .await
        .csrf();
    let forms = [
        (&edit, format!("csrf={csrf}&type=auditorium")),
        (
            &roles,
            format!("csrf={csrf}&action=add&role=presenter&user=user2"),
        ),
    ];
    for (path, form) in &forms {
        let r = http(&s.http, "POST", path, &member, Some(form)).await;
        assert_eq!(r.status, 403, "{path}: {r:?}");
    }
    assert_eq!(type_and_presenters(&s.http, &me).await, before);
    // A bad type: 400, nothing changed (not even the topic sent with it).
    let csrf = page.csrf();
    let bad = format!("csrf={csrf}&topic=changed&type=huge");
    let r = http(&s.http, "POST", &edit, &me, Some(&bad)).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(type_and_presenters(&s.http, &me).await, before);
    assert_eq!(topic(&s.http, &me).await, "Q3 layout");
    // The manager: auditorium, user2 presenter; then user2 no longer presenter.
    let ok = format!("csrf={csrf}&type=auditorium");
    assert_eq!(
        http(&s.http, "POST", &edit, &me, Some(&ok)).await.status,
        303
    );
    let add = format!("csrf={csrf}&action=add&role=presenter&user=user2");
    let r = http(&s.http, "POST", &roles, &me, Some(&add)).await;
    assert_eq!(r.status, 303, "{r:?}");
    let (t, presenters) = type_and_presenters(&s.http, &me).await;
    assert_eq!(t, "auditorium");
    assert!(presenters.contains("sip:user2@contoso.com"), "{presenters}");
    let remove = add.replace("action=add", "action=remove");
    assert_eq!(
        http(&s.http, "POST", &roles, &me, Some(&remove))
            .await
            .status,
        303
    );
    let p = http(&s.http, "GET", &format!("/rooms/{room}"), &me, None).await;
    assert!(!section(&p.body, "Presenters").contains("user2"));
    assert!(
        section(&p.body, "Members").contains("user2"),
        "still a member"
    );
    s.stop().await;
}
