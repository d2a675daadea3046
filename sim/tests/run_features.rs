//! Run features of issue 17 seen from the outside: step labels without `{n}`.

use pchat_sim::runner::run_sim;
use pchat_sim::scenario::Scenario;
use std::path::Path;

const TEMPLATE: &str = "[[client]]\nname = \"u{n}\"\nuri = \"sip:u{n}@contoso.com\"\ncount = 3\n\
                        [[client]]\nname = \"solo\"\nuri = \"sip:solo@contoso.com\"\n\
                        [[step]]\nclient = \"u{n}\"\naction = \"subscribe\"\n\
                        [[step]]\nclient = \"solo\"\naction = \"subscribe\"\n";

#[test]
fn template_step_labels_name_their_clients() {
    let s = Scenario::parse(TEMPLATE, Path::new("labels.toml")).unwrap();
    let r = run_sim(&s, 1);
    assert!(r.passed(), "{:?}", r.failure);
    let text = r.transcript.render();
    assert!(text.contains("# step 1 (u1..u3 subscribe)"), "{text}");
    assert!(text.contains("# step 2 (solo subscribe)"), "{text}");
    assert!(!text.contains("{n}"), "{text}");
}
