//! Progress bars of the long-running subcommands (`demo`, `replay`) on
//! stderr, drawn by `indicatif`: redrawn at most a few times a second, and
//! hidden when stderr is not a terminal (a log file or a CI job gets the
//! final summary lines only, not a stream of redraws).

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `len` steps on stderr with `template` (indicatif's syntax);
/// hidden when stderr is not a terminal.
#[must_use]
pub fn stderr_bar(len: u64, template: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(4)
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    // A template that does not parse is a programming error caught by the
    // unit test below; fall back to the default style rather than fail.
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

/// The bar of `tandem demo`: phase, bar, commands done of the phase's total.
pub const DEMO_TEMPLATE: &str = "{msg:<8} [{wide_bar}] {pos}/{len} commands  {elapsed_precise}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        assert!(ProgressStyle::with_template(DEMO_TEMPLATE).is_ok());
    }

    #[test]
    fn a_bar_off_a_terminal_is_hidden() {
        // Test runners capture stderr, so it is not a terminal here.
        if !std::io::stderr().is_terminal() {
            assert!(stderr_bar(10, DEMO_TEMPLATE).is_hidden());
        }
    }
}
