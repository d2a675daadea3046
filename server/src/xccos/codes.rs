//! Reply codes for `<resp code="N">TOKEN</resp>` **(design)**: HTTP-like codes with
//! upper-case tokens, as `XCCOS.md` "Request and reply" asks us to define.
//! Documented for operators in `docs/xccos-codes.md`.

/// 200: the command succeeded.
pub const SUCCESS_OK: u16 = 200;
/// 400: malformed command (bad XML, missing or invalid data).
pub const BAD_REQUEST: u16 = 400;
/// 403: the user may not join / post to / manage the room.
pub const NO_PERMISSION: u16 = 403;
/// 404: the room does not exist.
pub const NO_SUCH_ROOM: u16 = 404;
/// 409: the room name is taken (`cmd:createroom`).
pub const CONFLICT: u16 = 409;
/// 413: message or body too large.
pub const TOO_LARGE: u16 = 413;
/// 500: unexpected server failure.
pub const INTERNAL_ERROR: u16 = 500;
/// 501: unknown command id.
pub const UNKNOWN_COMMAND: u16 = 501;
/// 503: server overloaded, retry later.
pub const SERVICE_UNAVAILABLE: u16 = 503;

/// The upper-case token for a reply code, e.g. `token(404) == "NO_SUCH_ROOM"`.
/// Codes not listed in this module map to `"INTERNAL_ERROR"` for 5xx,
/// `"BAD_REQUEST"` for 4xx, `"SUCCESS_OK"` for 2xx and `"UNKNOWN"` otherwise.
pub fn token(code: u16) -> &'static str {
    match code {
        SUCCESS_OK => "SUCCESS_OK",
        BAD_REQUEST => "BAD_REQUEST",
        NO_PERMISSION => "NO_PERMISSION",
        NO_SUCH_ROOM => "NO_SUCH_ROOM",
        CONFLICT => "ROOM_EXISTS",
        TOO_LARGE => "TOO_LARGE",
        INTERNAL_ERROR => "INTERNAL_ERROR",
        UNKNOWN_COMMAND => "UNKNOWN_COMMAND",
        SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        _ => match code / 100 {
            2 => "SUCCESS_OK",
            4 => "BAD_REQUEST",
            5 => "INTERNAL_ERROR",
            _ => "UNKNOWN",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        assert_eq!(token(200), "SUCCESS_OK");
        assert_eq!(token(400), "BAD_REQUEST");
        assert_eq!(token(403), "NO_PERMISSION");
        assert_eq!(token(404), "NO_SUCH_ROOM");
        assert_eq!(token(409), "ROOM_EXISTS");
        assert_eq!(token(413), "TOO_LARGE");
        assert_eq!(token(500), "INTERNAL_ERROR");
        assert_eq!(token(501), "UNKNOWN_COMMAND");
        assert_eq!(token(503), "SERVICE_UNAVAILABLE");
        assert_eq!(token(418), "BAD_REQUEST");
        assert_eq!(token(999), "UNKNOWN");
    }
}
