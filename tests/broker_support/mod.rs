//! Helpers shared by the broker, interop and CLI tests: a message inbox
//! for the client's handler, a bounded wait, and Mosquitto configurations
//! for authentication and subscription ACLs.
#![allow(dead_code)]

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use umqtt::{Client, Publish, QoS};

use crate::common::{self, Mosquitto};

/// A received message: topic, payload, QoS, retain.
pub type Received = (String, Vec<u8>, QoS, bool);

/// Messages a client's handler has received.
#[derive(Clone, Default)]
pub struct Inbox(Rc<RefCell<Vec<Received>>>);

impl Inbox {
    /// A handler for `Client::new` that records into this inbox.
    pub fn handler(&self) -> impl FnMut(&Publish<'_>) + use<> {
        let inbox = self.0.clone();
        move |m: &Publish<'_>| {
            inbox.borrow_mut().push((m.topic.to_owned(), m.payload.to_vec(), m.qos, m.retain));
        }
    }

    /// Number of messages held.
    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    /// Whether no message is held.
    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }

    /// Removes and returns every message held.
    pub fn take(&self) -> Vec<Received> {
        std::mem::take(&mut self.0.borrow_mut())
    }

    /// Removes every message held and returns their payloads.
    pub fn payloads(&self) -> Vec<Vec<u8>> {
        self.take().into_iter().map(|(_, payload, ..)| payload).collect()
    }
}

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);

/// Waits for one message, failing the test after [`WAIT`].
pub async fn next<T, H>(client: &mut Client<'_, T, H>)
where
    T: embedded_io_async::Read + embedded_io_async::Write,
    T::Error: std::fmt::Debug,
    H: FnMut(&Publish<'_>),
{
    let received = tokio::time::timeout(WAIT, client.wait_msg()).await.expect("message in time");
    received.expect("wait_msg");
}

/// A handler that ignores messages.
pub fn silent(_: &Publish<'_>) {}

/// Whether Mosquitto is installed (the harness prints the skip line).
fn mosquitto_installed() -> bool {
    common::on_path("mosquitto") || Path::new("/usr/sbin/mosquitto").exists()
}

/// A Mosquitto that requires user `alice` with password `secret`
/// (`password_file` written by `mosquitto_passwd`), no anonymous access.
pub fn broker_with_password(test: &str) -> Option<Mosquitto> {
    let dir = common::temp_dir(test);
    let passwords = dir.join("passwords");
    if mosquitto_installed() {
        let status = std::process::Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&passwords)
            .args(["alice", "secret"])
            .status()
            .expect("run mosquitto_passwd (Debian package mosquitto)");
        assert!(status.success(), "mosquitto_passwd failed");
    }
    let config = format!("allow_anonymous false\npassword_file {}\n", passwords.display());
    Mosquitto::start_in(test, &dir, &config)
}

/// The dynamic security plugin shipped with Mosquitto 2.
fn dynamic_security_plugin() -> Option<PathBuf> {
    let dirs =
        ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib"];
    dirs.iter().map(|d| Path::new(d).join("mosquitto_dynamic_security.so")).find(|p| p.exists())
}

/// A Mosquitto whose ACL lets anonymous clients subscribe only to
/// `allowed/#`: a SUBSCRIBE to anything else gets return code 0x80.
///
/// Mosquitto 2's `acl_file` never refuses a SUBSCRIBE (it only filters
/// delivery), so the ACL is given to its dynamic security plugin.
pub fn broker_with_subscribe_acl(test: &str) -> Option<Mosquitto> {
    if !mosquitto_installed() {
        return Mosquitto::start(test, ""); // prints the skip line
    }
    let Some(plugin) = dynamic_security_plugin() else {
        assert!(!common::mosquitto_required(), "{test}: mosquitto_dynamic_security.so not found");
        println!("SKIPPED {test}: mosquitto_dynamic_security.so not found");
        return None;
    };
    let dir = common::temp_dir(test);
    let acl = dir.join("dynamic-security.json");
    std::fs::write(
        &acl,
        r#"{
  "defaultACLAccess": {"publishClientSend": true, "publishClientReceive": true,
                       "subscribe": false, "unsubscribe": true},
  "clients": [],
  "groups": [{"groupname": "anonymous", "roles": [{"rolename": "reader"}]}],
  "roles": [{"rolename": "reader",
             "acls": [{"acltype": "subscribePattern", "topic": "allowed/#", "allow": true}]}],
  "anonymousGroup": "anonymous"
}
"#,
    )
    .unwrap();
    let config = format!("plugin {}\nplugin_opt_config_file {}\n", plugin.display(), acl.display());
    Mosquitto::start_in(test, &dir, &config)
}
