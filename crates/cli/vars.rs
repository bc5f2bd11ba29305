//! The environment variables each command reads. Every variable is one [`Var`]: the parser
//! takes its default from it (`Env` reads a `&Var`, never a name and a literal) and `--help`
//! prints the same [`Unset`], so the two cannot disagree (the tests check every command).

mod producers;
mod subscriber;

pub use producers::*;
pub use subscriber::*;

/// What applies when a variable is unset (or blank).
#[derive(Clone, Copy, Debug)]
pub enum Unset {
    /// This value, exactly as if it had been set: parsed and checked like one.
    Value(&'static str),
    /// This number (often a library's own default constant), parsed like a set value.
    Number(u64),
    /// No value: the text says what happens instead (`(host name)`, `(none)`...).
    Described(&'static str),
    /// `REDTAIL_METRICS_ADDR`: each command has its own port ([`Command::metrics_addr`]).
    MetricsAddr,
}

/// One variable: name, what applies when unset, meaning.
#[derive(Debug)]
pub struct Var {
    pub name: &'static str,
    pub unset: Unset,
    pub help: &'static str,
}

const fn var(name: &'static str, unset: Unset, help: &'static str) -> Var {
    Var { name, unset, help }
}

impl Var {
    /// The value used when unset (`None` for a described default), as `command` shows it.
    pub fn default_text(&self, command: &Command) -> Option<String> {
        match self.unset {
            Unset::Value(v) => Some(v.to_string()),
            Unset::Number(n) => Some(n.to_string()),
            Unset::Described(_) => None,
            Unset::MetricsAddr => Some(command.metrics_addr.to_string()),
        }
    }

    /// What `--help` shows as the default.
    fn shown(&self, command: &Command) -> String {
        match self.unset {
            Unset::Described(text) => text.to_string(),
            _ => self.default_text(command).unwrap_or_default(),
        }
    }
}

/// One command: what it does, where its admin server listens by default, which roles it
/// runs (build-info labels, readiness conditions) and the variables it reads.
pub struct Command {
    pub name: &'static str,
    pub summary: &'static str,
    pub metrics_addr: &'static str,
    pub roles: &'static [&'static str],
    pub vars: &'static [&'static [Var]],
}

pub const COMMANDS: &[Command] = &[
    Command {
        name: "generate",
        summary: "append JSON log lines to a file",
        metrics_addr: "0.0.0.0:9101",
        roles: &["generate"],
        vars: &[GENERATE, PROCESS],
    },
    Command {
        name: "watch",
        summary: "tail log files and publish every line to Redis exactly once",
        metrics_addr: "0.0.0.0:9102",
        roles: &["watch"],
        vars: &[WATCH, REDIS, PROCESS],
    },
    Command {
        name: "subscribe",
        summary: "consume lines from Redis and write normalized events",
        metrics_addr: "0.0.0.0:9103",
        roles: &["subscribe"],
        vars: &[SUBSCRIBE, SECOPS, REDIS, PROCESS],
    },
    Command {
        name: "demo",
        summary: "generator, watcher and subscriber together, locally",
        metrics_addr: "127.0.0.1:0",
        roles: &["generate", "watch", "subscribe"],
        vars: &[DEMO, PROCESS],
    },
];

pub fn command(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

impl Command {
    /// The variables it reads, in `--help` order.
    pub fn all_vars(&self) -> impl Iterator<Item = &'static Var> {
        self.vars.iter().flat_map(|g| g.iter())
    }

    pub fn help_text(&self) -> String {
        let mut out = format!(
            "redtail {0}: {1}\n\nUsage: redtail {0}\n\nEnvironment variables:\n",
            self.name, self.summary
        );
        let width = self.all_vars().map(|v| v.name.len()).max().unwrap_or(0);
        for v in self.all_vars() {
            out.push_str(&format!(
                "  {:width$}  {} (default: {})\n",
                v.name,
                v.help,
                v.shown(self)
            ));
        }
        out
    }
}

/// Every REDTAIL_ variable any command knows (to warn about typos).
pub fn all_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().flat_map(|c| c.all_vars()).map(|v| v.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Env;
    use crate::runner::Role;

    /// Settings under which `subscribe` reads the SecOps variables too.
    const SECOPS_ON: &[(&str, &str)] = crate::secops_env::tests::BASE;

    /// Everything `command` makes of `pairs` (process settings and role configuration), and
    /// the names it looked at.
    fn parse(command: &Command, pairs: &[(&str, &str)]) -> (String, Vec<&'static str>) {
        let env = Env::from_iter(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .expect("environment");
        let process = crate::roles::process(&env, command)
            .unwrap_or_else(|e| panic!("{} {pairs:?}: {e}", command.name));
        let role = Role::from_env(command, &env)
            .unwrap_or_else(|e| panic!("{} {pairs:?}: {e}", command.name));
        (format!("{process:?}\n{role:?}"), env.names_read())
    }

    /// The settings each command is checked under: plain, and for `subscribe` with the
    /// SecOps sink on.
    fn settings(command: &Command) -> Vec<&'static [(&'static str, &'static str)]> {
        match command.name {
            "subscribe" => vec![&[], SECOPS_ON],
            _ => vec![&[]],
        }
    }

    #[test]
    fn every_default_in_help_is_what_the_parser_uses() {
        for command in COMMANDS {
            for base in settings(command) {
                let (unset, _) = parse(command, base);
                for var in command.all_vars() {
                    let Some(shown) = var.default_text(command) else {
                        continue;
                    };
                    if base.iter().any(|(k, _)| *k == var.name) {
                        continue;
                    }
                    let mut pairs = base.to_vec();
                    pairs.push((var.name, &shown));
                    let (set, _) = parse(command, &pairs);
                    assert_eq!(
                        set, unset,
                        "redtail {}: {}={shown} (its --help default) is not what applies when it is unset",
                        command.name, var.name
                    );
                }
            }
        }
    }

    #[test]
    fn every_variable_read_is_in_the_help() {
        for command in COMMANDS {
            let listed: Vec<&str> = command.all_vars().map(|v| v.name).collect();
            for base in settings(command) {
                let (_, read) = parse(command, base);
                for name in read {
                    assert!(
                        listed.contains(&name),
                        "redtail {} reads {name}, but its --help does not list it",
                        command.name
                    );
                }
            }
        }
    }

    #[test]
    fn described_defaults_name_the_library_values() {
        use redtail_secops::SecopsConfig;
        assert_eq!(
            SECOPS_BATCH_BYTES.shown(&COMMANDS[2]),
            format!(
                "{} (legacy {})",
                SecopsConfig::DEFAULT_BATCH_BYTES,
                SecopsConfig::DEFAULT_LEGACY_BATCH_BYTES
            )
        );
        for command in COMMANDS {
            let help = command.help_text();
            assert!(
                help.contains(&format!("(default: {})", command.metrics_addr)),
                "{help}"
            );
        }
    }
}
