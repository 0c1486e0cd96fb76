//! The API tests run the real server of [`tandem_testkit`] (the whole
//! router on 127.0.0.1:0 with its projections), call it as any role, and
//! build their organisation through the API.

pub use tandem_testkit::org::{ENROL, FEEDBACK, FORM, HOLD, LAUNCH, Org, REGISTER, org, register};
pub use tandem_testkit::server::{Options, TestServer};
pub use tandem_testkit::tokens::auth_config;
