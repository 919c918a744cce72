//! git's credential protocol as this helper reads it (git-credential(1), git 2.47's
//! `credential_read`).

use super::*;

fn read(input: &[u8]) -> Result<Request, Malformed> {
    read_request(input)
}

#[track_caller]
fn parsed(input: &[u8]) -> Request {
    read(input).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn attributes_up_to_a_blank_line_or_the_end() {
    let request = parsed(
        b"capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=github.com\npath=o/r.git\n\
          username=alice\nwwwauth[]=Bearer realm=\"x\"\nstate[]=other:1\nnew-key=ignored\n=empty key\n\nhost=after.blank\n",
    );
    assert_eq!(request.protocol.as_deref(), Some("https"));
    assert_eq!(request.host.as_deref(), Some("github.com"));
    assert_eq!(request.path.as_deref(), Some("o/r.git"));
    assert_eq!(request.account(), Some("alice"));
    assert_eq!(request.capabilities, ["authtype", "state"]);
    assert!(request.has_capability("authtype"));
    assert_eq!(request.wwwauth, ["Bearer realm=\"x\""]);
    assert_eq!(request.state, ["other:1"]);
    // The end of input ends the attributes too; CRLF line ends are read like git's strbuf_getline.
    let request = parsed(b"protocol=https\r\nhost=example.com");
    assert_eq!(request.host.as_deref(), Some("example.com"));
    assert_eq!(read(b""), Ok(Request::default()));
    // Values keep everything after the first `=`.
    assert_eq!(parsed(b"path=a=b\n").path.as_deref(), Some("a=b"));
}

#[test]
fn an_empty_multi_valued_attribute_clears_the_list() {
    let request = parsed(
        b"capability[]=authtype\ncapability[]=\ncapability[]=state\nwwwauth[]=a\nwwwauth[]=\n",
    );
    assert_eq!(request.capabilities, ["state"]);
    assert!(request.wwwauth.is_empty());
}

#[test]
fn malformed_input_is_refused_without_quoting_it() {
    for input in [
        b"protocol=https\nno equals sign\n".as_slice(),
        b"password=secret\0x\n",
        b"url=example.com/no-scheme\n",
        b"url=://host\n",
        b"ephemeral=perhaps\n",
        b"quit=2x\n",
    ] {
        let err = read(input).err();
        assert!(err.is_some(), "{:?}", String::from_utf8_lossy(input));
        assert!(!format!("{err:?}").contains("secret"), "{err:?}");
    }
    assert_eq!(
        read(b"protocol=https\nbroken\n").err(),
        Some(Malformed(
            "line 2: not a key=value attribute (no `=`)".to_owned()
        ))
    );
    // Longest line git allows: 65535 bytes with its newline.
    let mut long = b"path=".to_vec();
    long.resize(65_534, b'a');
    long.push(b'\n');
    assert!(read(&long).is_ok());
    long.insert(0, b'a');
    assert!(read(&long).is_err());
    // Booleans git accepts.
    for value in ["1", "0", "true", "FALSE", "yes", "off", "", "-3"] {
        assert!(
            read(format!("ephemeral={value}\n").as_bytes()).is_ok(),
            "{value}"
        );
    }
}

#[test]
fn url_stands_for_its_attributes() {
    let request = parsed(b"host=dropped\nusername=dropped\nurl=https://al%69ce:p%40ss@Example.com:8443//a/b%2Fc.git//\n");
    assert_eq!(request.protocol.as_deref(), Some("https"));
    assert_eq!(request.host.as_deref(), Some("Example.com:8443"));
    assert_eq!(request.username.as_deref(), Some("alice"));
    assert_eq!(
        request.password.as_ref().map(SecretString::secret),
        Some("p@ss")
    );
    assert_eq!(request.path.as_deref(), Some("a/b/c.git"));
    // As in git, a query or fragment ends the host and stays in the path.
    let request = parsed(b"url=https://h?q=1\n");
    assert_eq!(
        (request.host.as_deref(), request.path.as_deref()),
        (Some("h"), Some("?q=1"))
    );
    let request = parsed(b"url=http://127.0.0.1:9/x@y\n");
    assert_eq!(request.host.as_deref(), Some("127.0.0.1:9"));
    assert_eq!(request.username, None);
    assert_eq!(request.path.as_deref(), Some("x@y"));
    let request = parsed(b"url=https://bob@host\nusername=carol\n");
    assert_eq!(request.account(), Some("carol"));
    assert_eq!(percent_decode("a+b%zz%4"), "a+b%zz%4");
}

#[test]
fn accounts_and_refused_tokens() {
    assert_eq!(parsed(b"username=\n").account(), None);
    assert_eq!(parsed(b"username=oauth2\n").account(), None);
    assert_eq!(
        parsed(b"username=work@example.com\n").account(),
        Some("work@example.com")
    );
    let bearer = parsed(b"authtype=bearer\ncredential=tok\npassword=pw\n");
    assert_eq!(bearer.refused_token(), Some("tok"));
    let basic = parsed(b"authtype=Basic\ncredential=abc\npassword=pw\n");
    assert_eq!(basic.refused_token(), Some("pw"));
    assert_eq!(parsed(b"protocol=https\n").refused_token(), None);
}

/// Account names are compared without regard to ASCII case, so `OAuth2` is the placeholder too
/// (it named an account `oauth2` that no sign-in makes: no answer for `https://OAuth2@host/`).
#[test]
fn the_placeholder_user_name_in_any_case_is_the_default_account() {
    for user in ["oauth2", "OAuth2", "OAUTH2"] {
        let request = parsed(format!("username={user}\n").as_bytes());
        assert_eq!(request.account(), None, "{user}");
        let request = parsed(format!("url=https://{user}@github.com/o/r.git\n").as_bytes());
        assert_eq!(request.account(), None, "{user}");
    }
    assert_eq!(parsed(b"username=oauth2x\n").account(), Some("oauth2x"));
}

/// Input past 1 MiB in lines git allows is refused as too much input, not as a long line.
#[test]
fn too_much_input_is_not_called_a_long_line() {
    let line = format!("wwwauth[]={}\n", "a".repeat(1000));
    let input = line.repeat(1100);
    let Err(Malformed(why)) = read(input.as_bytes()) else {
        panic!("1.1 MB of input was read");
    };
    assert!(
        why.starts_with("the input is longer than this helper reads"),
        "{why}"
    );
    assert!(!why.contains("longer than git allows"), "{why}");
}

/// A carriage return ends nothing but a CRLF line end (as git's `strbuf_getline`): one inside a
/// value (a `%0d` in a remote URL, which some helpers read as a line break, CVE-2024-50338) stays
/// in it, so it cannot smuggle in a `host` line.
#[test]
fn a_carriage_return_inside_a_value_is_no_line_break() {
    let request = parsed(b"protocol=https\nhost=evil.example\nusername=x\rhost=github.com\n");
    assert_eq!(request.host.as_deref(), Some("evil.example"));
    assert_eq!(request.username.as_deref(), Some("x\rhost=github.com"));
    let request = parsed(b"protocol=https\nhost=evil.example\rhost=github.com\r\n");
    assert_eq!(
        request.host.as_deref(),
        Some("evil.example\rhost=github.com")
    );
}
