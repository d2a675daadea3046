//! Heap allocations per parse of the usual INFO (issue 18: "parse once", the INFO path
//! of `benches/sip.rs`): a counting global allocator around `sip::parse_frame` +
//! `Request::typed`. Its own test binary, so no other test allocates meanwhile.

use bytes::Bytes;
use pchat_server::sip::{parse_frame, SipMessage};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size, Ordering::Relaxed);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The benches' shared inputs: the INFO measured there is the one counted here.
#[path = "../../benches/common/mod.rs"]
#[allow(dead_code)] // the benches' other inputs
mod common;

/// The INFO of `benches/sip.rs` (long form, a User-Agent, a 250-byte body).
fn info() -> Bytes {
    let body = "<xccos ver=\"1\" envid=\"4711042\" xmlns=\"urn:parlano:xml:ns:xccos\">\
        <grpchat id=\"grpchat\" seqid=\"1\" chanUri=\"ma-chan://contoso.com/6f0a5c44\">\
        <chat>Hello team, the Q3 layout review moves to Thursday.</chat></grpchat></xccos>";
    Bytes::from(common::info(
        "User-Agent: UCCAPI/15.0.4569.1503 OC/15.0.4569.1506 (Microsoft Lync)\r\n",
        body.as_bytes(),
    ))
}

/// (allocations, bytes) of one parse + typed view of `frame`.
fn count(frame: &Bytes) -> (usize, usize) {
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    let Ok(SipMessage::Request(req)) = parse_frame(frame) else {
        panic!("the INFO parses")
    };
    let t = req.typed().expect("typed view");
    assert_eq!((t.cseq.num, t.to.tag()), (7, Some("9c8b7a6f5e4d3c2b")));
    drop(req);
    (
        ALLOCS.load(Ordering::Relaxed) - a0,
        BYTES.load(Ordering::Relaxed) - b0,
    )
}

#[test]
fn the_usual_info_allocates_little() {
    let frame = info();
    let _ = count(&frame); // warm any lazily built table
    let (allocs, bytes) = count(&frame);
    println!("parse_frame + typed of the usual INFO: {allocs} allocations, {bytes} bytes");
    assert!(allocs <= MAX_ALLOCS, "{allocs} allocations ({bytes} bytes)");
}

/// The bound this branch reaches (BENCHMARKS.md, "Issue 18: session 9, parse").
const MAX_ALLOCS: usize = 4;
