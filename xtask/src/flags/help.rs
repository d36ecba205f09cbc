//! The help texts, made from the command table.

use super::table::{Arg, Command, COMMANDS, GLOBAL};

pub fn overview() -> String {
    let mut out = String::from(
        "Build, tag, test and publish the base images listed in images/images.toml.\n\n\
         Usage: cargo xtask COMMAND [OPTIONS]    (options go after the command name)\n\nCommands:\n",
    );
    let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in COMMANDS {
        out.push_str(&format!("  {:width$}  {}\n", c.name, first_sentence(c.help)));
    }
    out.push_str("\nOptions of every command:\n");
    out.push_str(&describe(GLOBAL));
    out.push_str(
        "  -h, --help\n      Print help.\n\nRun `cargo xtask COMMAND --help` for a command's options.\n",
    );
    out
}

pub fn command_help(c: &'static Command) -> String {
    let positionals: Vec<&Arg> = c.args.iter().filter(|a| !a.name.starts_with('-')).collect();
    let options: Vec<&Arg> = c.args.iter().filter(|a| a.name.starts_with('-')).collect();
    let usage: Vec<String> = positionals
        .iter()
        .map(|a| if a.name.ends_with("...") { format!("[{}]", a.name) } else { a.name.to_string() })
        .collect();
    let mut out = format!(
        "Usage: cargo xtask {} {}[OPTIONS]\n\n{}\n",
        c.name,
        usage.iter().map(|u| format!("{u} ")).collect::<String>(),
        c.help
    );
    if !positionals.is_empty() {
        out.push_str("\nArguments:\n");
        for a in positionals {
            out.push_str(&format!("  {}\n      {}\n", a.name, a.help));
        }
    }
    out.push_str("\nOptions:\n");
    let own: Vec<Arg> = options.iter().map(|a| Arg { name: a.name, value: a.value, help: a.help }).collect();
    out.push_str(&describe(&own));
    out.push_str(&describe(GLOBAL));
    out.push_str("  -h, --help\n      Print help.\n");
    out
}

fn describe(args: &[Arg]) -> String {
    args.iter()
        .map(|a| match a.value {
            Some(value) => format!("  {} {value}\n      {}\n", a.name, a.help),
            None => format!("  {}\n      {}\n", a.name, a.help),
        })
        .collect()
}

fn first_sentence(help: &str) -> &str {
    help.split_once(". ").map_or(help, |(first, _)| first).trim_end_matches('.')
}
