//! The command tests build their organisation through the real command
//! path with the fixtures of [`tandem_testkit`].

pub use tandem_testkit::fixtures::{Org, admin};
pub use tandem_testkit::values::{day, text};
