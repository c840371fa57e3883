use super::*;

#[test]
fn visible_text_undoes_escaping_and_breaks_fields_at_tags() {
    let html = format!(
        "<td>{}</td><td>+44 20 7946 0958</td>",
        escape("crm,\"E1\" & 'x'")
    );
    assert_eq!(visible_text(&html), ",crm,\"E1\" & 'x',,+44 20 7946 0958,");
}

#[test]
fn hostile_text_is_escaped_and_formulas_disarmed() {
    assert_eq!(
        untrusted("<script>alert('x')</script>"),
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
    );
    assert_eq!(
        untrusted("=HYPERLINK(\"http://x\",\"y\")"),
        "&#39;=HYPERLINK(&quot;http://x&quot;,&quot;y&quot;)"
    );
    assert_eq!(untrusted("a\u{0}b\r"), "a\u{2400}b\u{240d}");
    assert_eq!(untrusted("plain, text"), "plain, text");
}
