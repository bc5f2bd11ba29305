//! The secure configuration works and is tight: TLS (with client
//! certificates), ACL users with the minimal rules the README gives, no
//! password in any output, no root needed, private checkpoint files.
//!
//! One test binary, one module per concern under `tests/security/`, all on the
//! shared `tests/support` harness.

mod support;

#[path = "security/acl.rs"]
mod acl;
#[path = "security/privileges.rs"]
mod privileges;
#[path = "security/secrets.rs"]
mod secrets;
#[path = "security/tls.rs"]
mod tls;

use std::time::Duration;

/// The longest any wait in these tests may take.
const T: Duration = Duration::from_secs(60);
