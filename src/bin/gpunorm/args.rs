//! A small hand-written argument parser (no external crates).
//!
//! Each subcommand describes itself with a [`CommandSpec`]: its long options
//! (with or without a value), how many positional arguments it takes, and its
//! help text. [`parse`] turns the raw arguments into a [`Parsed`] value with
//! typed accessors, or a usage error ([`CliError::Usage`], exit code 2).
//!
//! Rules:
//! - long options: `--opt value` and `--opt=value`; flags take no value
//!   (`--flag=x` is an error);
//! - short options: only those a spec declares (`-o OUTPUT`, `-oOUTPUT`), plus
//!   `-h` for help;
//! - a value may start with `-` when a digit or `.` follows (`--feature-range
//!   -1,1`, `--eps -1e-5`, `--quantile-range=-5,95`); any other argument that
//!   starts with `-` is an option;
//! - `--` ends the options: everything after it is positional;
//! - an option given twice, an unknown option, a missing value, or a wrong
//!   number of positionals is a usage error naming the option or argument;
//! - `--help`/`-h` anywhere (before `--`) asks for the subcommand's help.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::CliError;

/// One option a subcommand accepts.
#[derive(Clone, Copy, Debug)]
pub struct OptSpec {
    /// The long name without the leading `--` (e.g. `"feature-range"`).
    pub long: &'static str,
    /// An optional one-letter short form (e.g. `'o'` for `-o`).
    pub short: Option<char>,
    /// Whether the option takes a value.
    pub takes_value: bool,
}

impl OptSpec {
    /// A long option taking a value: `--name VALUE`.
    pub const fn value(long: &'static str) -> Self {
        OptSpec { long, short: None, takes_value: true }
    }

    /// A long flag without value: `--name`.
    pub const fn flag(long: &'static str) -> Self {
        OptSpec { long, short: None, takes_value: false }
    }

    /// A long option taking a value that also has a short form: `-c VALUE`.
    pub const fn value_short(long: &'static str, short: char) -> Self {
        OptSpec { long, short: Some(short), takes_value: true }
    }
}

/// The `-o/--output OUTPUT` option.
pub const OUTPUT: OptSpec = OptSpec::value_short("output", 'o');
/// `--backend auto|vulkan|metal|dx12|gl`.
pub const BACKEND: OptSpec = OptSpec::value("backend");
/// `--verify`.
pub const VERIFY: OptSpec = OptSpec::flag("verify");

/// A subcommand: name, usage line, help text, options and positional arguments.
#[derive(Clone, Copy, Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    /// The synopsis, shown after usage errors and at the top of the help.
    pub usage: &'static str,
    /// The full help text (printed by `--help`), after the usage line.
    pub help: &'static str,
    pub options: &'static [&'static [OptSpec]],
    /// Names of the required positional arguments, in order (e.g. `&["INPUT"]`).
    pub positionals: &'static [&'static str],
}

impl CommandSpec {
    fn find_long(&self, long: &str) -> Option<&'static OptSpec> {
        self.options.iter().flat_map(|group| group.iter()).find(|o| o.long == long)
    }

    fn find_short(&self, short: char) -> Option<&'static OptSpec> {
        self.options.iter().flat_map(|group| group.iter()).find(|o| o.short == Some(short))
    }

    /// The text `--help` prints.
    pub fn help_text(&self) -> String {
        format!("usage: {}\n\n{}", self.usage, self.help.trim_end())
    }

    /// A usage error for this subcommand.
    pub fn usage_error(&self, msg: impl Into<String>) -> CliError {
        CliError::Usage { msg: msg.into(), usage: Some(self.usage), command: Some(self.name) }
    }
}

/// The parsed arguments of one subcommand.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub spec: CommandSpec,
    values: BTreeMap<&'static str, String>,
    flags: BTreeMap<&'static str, ()>,
    positionals: Vec<String>,
    /// `--help` or `-h` was given.
    pub help: bool,
}

/// Whether `s` is a value even though it starts with `-` (a negative number or
/// list of numbers: `-1`, `-.5`, `-1,1`, `-1e-5`).
fn is_negative_number(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next() == Some('-') && matches!(chars.next(), Some(c) if c.is_ascii_digit() || c == '.')
}

/// Whether `s` can be the value of an option given as the next argument.
fn can_be_value(s: &str) -> bool {
    !s.starts_with('-') || s == "-" || is_negative_number(s)
}

/// Parse `args` (the arguments after the subcommand name) under `spec`.
pub fn parse(spec: &CommandSpec, args: &[String]) -> Result<Parsed, CliError> {
    let mut out =
        Parsed { spec: *spec, values: BTreeMap::new(), flags: BTreeMap::new(), positionals: Vec::new(), help: false };
    // Help wins over every other problem, as in most tools.
    if args.iter().take_while(|a| a.as_str() != "--").any(|a| a == "--help" || a == "-h") {
        out.help = true;
        return Ok(out);
    }
    let mut i = 0;
    let mut only_positionals = false;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if only_positionals || !arg.starts_with('-') || arg == "-" || is_negative_number(arg) {
            out.positionals.push(arg.clone());
            continue;
        }
        if arg == "--" {
            only_positionals = true;
            continue;
        }
        let (opt, shown, inline): (&'static OptSpec, String, Option<String>) =
            if let Some(body) = arg.strip_prefix("--") {
                let (name, inline) = match body.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (body, None),
                };
                match spec.find_long(name) {
                    Some(o) => (o, format!("--{name}"), inline),
                    None => return Err(spec.usage_error(format!("unknown option '--{name}'"))),
                }
            } else {
                let mut chars = arg[1..].chars();
                let c = chars.next().expect("arg is longer than '-'");
                let rest: String = chars.collect();
                match spec.find_short(c) {
                    Some(o) => {
                        let inline = if rest.is_empty() {
                            None
                        } else if o.takes_value {
                            Some(rest.strip_prefix('=').unwrap_or(&rest).to_string())
                        } else {
                            return Err(spec.usage_error(format!("unknown option '{arg}'")));
                        };
                        (o, format!("-{c}"), inline)
                    }
                    None => return Err(spec.usage_error(format!("unknown option '{arg}'"))),
                }
            };
        let display = match opt.short {
            Some(s) => format!("-{s}/--{}", opt.long),
            None => format!("--{}", opt.long),
        };
        if out.values.contains_key(opt.long) || out.flags.contains_key(opt.long) {
            return Err(spec.usage_error(format!("option {display} given more than once")));
        }
        if opt.takes_value {
            let value = match inline {
                Some(v) => v,
                None => match args.get(i) {
                    Some(next) if can_be_value(next) => {
                        i += 1;
                        next.clone()
                    }
                    _ => return Err(spec.usage_error(format!("option {shown} needs a value"))),
                },
            };
            out.values.insert(opt.long, value);
        } else {
            if inline.is_some() {
                return Err(spec.usage_error(format!("option {shown} takes no value")));
            }
            out.flags.insert(opt.long, ());
        }
    }
    let want = spec.positionals;
    if out.positionals.len() > want.len() {
        let extra = &out.positionals[want.len()];
        return Err(spec.usage_error(format!("unexpected argument '{extra}'")));
    }
    if out.positionals.len() < want.len() {
        let missing = want[out.positionals.len()];
        return Err(spec.usage_error(format!("missing {missing}")));
    }
    Ok(out)
}

impl Parsed {
    /// The raw value of `--long`, if given.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.values.get(long).map(String::as_str)
    }

    /// Whether the flag `--long` was given.
    pub fn flag(&self, long: &str) -> bool {
        self.flags.contains_key(long)
    }

    /// Whether `--long` was given at all (flag or value).
    pub fn given(&self, long: &str) -> bool {
        self.flag(long) || self.values.contains_key(long)
    }

    /// The `i`-th positional argument (always present: the parser checked the count).
    pub fn positional(&self, i: usize) -> &str {
        &self.positionals[i]
    }

    /// The single positional INPUT as a path.
    pub fn input(&self) -> PathBuf {
        PathBuf::from(self.positional(0))
    }

    /// `--long` as a path, if given (an empty value is a usage error).
    pub fn path(&self, long: &str) -> Result<Option<PathBuf>, CliError> {
        match self.value(long) {
            None => Ok(None),
            Some("") => Err(self.bad_value(long, "", "expected a file name")),
            Some(v) => Ok(Some(PathBuf::from(v))),
        }
    }

    /// `--long` as a path, which must be given.
    pub fn required_path(&self, long: &str) -> Result<PathBuf, CliError> {
        self.path(long)?.ok_or_else(|| self.missing(long))
    }

    /// `--long` as a string, which must be given.
    pub fn required(&self, long: &str) -> Result<&str, CliError> {
        self.value(long).ok_or_else(|| self.missing(long))
    }

    /// `--long` as a finite number, if given.
    pub fn f64(&self, long: &str) -> Result<Option<f64>, CliError> {
        self.value(long).map(|v| parse_number(v).map_err(|why| self.bad_value(long, v, &why))).transpose()
    }

    /// `--long` as a non-negative integer, if given.
    pub fn usize(&self, long: &str) -> Result<Option<usize>, CliError> {
        self.value(long)
            .map(|v| v.trim().parse::<usize>().map_err(|_| self.bad_value(long, v, "expected a non-negative integer")))
            .transpose()
    }

    /// `--long MIN,MAX` as two finite numbers, if given.
    pub fn pair(&self, long: &str) -> Result<Option<(f64, f64)>, CliError> {
        self.value(long).map(|v| parse_pair(v).map_err(|why| self.bad_value(long, v, &why))).transpose()
    }

    /// `--long A,B,...` as a list of finite numbers, if given (an empty value is
    /// an empty list).
    pub fn list(&self, long: &str) -> Result<Option<Vec<f64>>, CliError> {
        self.value(long).map(|v| parse_list(v).map_err(|why| self.bad_value(long, v, &why))).transpose()
    }

    /// `--long` as one of `choices`, if given.
    pub fn choice(&self, long: &str, choices: &[&'static str]) -> Result<Option<&'static str>, CliError> {
        match self.value(long) {
            None => Ok(None),
            Some(v) => match choices.iter().find(|c| **c == v) {
                Some(c) => Ok(Some(c)),
                None => Err(self.bad_value(long, v, &format!("expected one of {}", choices.join(", ")))),
            },
        }
    }

    /// A usage error: `--long` is required.
    pub fn missing(&self, long: &str) -> CliError {
        let shown = match self.spec.find_long(long).and_then(|o| o.short) {
            Some(s) => format!("-{s}/--{long}"),
            None => format!("--{long}"),
        };
        self.spec.usage_error(format!("missing required option {shown}"))
    }

    /// A usage error about the value of `--long`.
    pub fn bad_value(&self, long: &str, value: &str, why: &str) -> CliError {
        self.spec.usage_error(format!("invalid value '{value}' for --{long}: {why}"))
    }
}

/// Parse one finite number (surrounding spaces allowed).
pub fn parse_number(s: &str) -> Result<f64, String> {
    let t = s.trim();
    match t.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("'{t}' is not a finite number")),
        Err(_) => Err(format!("'{t}' is not a number")),
    }
}

/// Parse `A,B,...` into finite numbers. An empty (or all-space) string is an
/// empty list; an empty item (`1,,2`) is an error.
pub fn parse_list(s: &str) -> Result<Vec<f64>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    s.split(',').map(parse_number).collect()
}

/// Parse `MIN,MAX` into two finite numbers.
pub fn parse_pair(s: &str) -> Result<(f64, f64), String> {
    let v = parse_list(s)?;
    match v.as_slice() {
        [a, b] => Ok((*a, *b)),
        _ => Err(format!("expected two numbers separated by a comma, got {}", v.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST: CommandSpec = CommandSpec {
        name: "test",
        usage: "gpunorm test INPUT",
        help: "",
        options: &[&[OUTPUT, BACKEND, VERIFY, OptSpec::value("feature-range"), OptSpec::value("eps")]],
        positionals: &["INPUT"],
    };

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    fn ok(s: &[&str]) -> Parsed {
        parse(&TEST, &args(s)).unwrap()
    }

    fn err(s: &[&str]) -> String {
        match parse(&TEST, &args(s)) {
            Err(e) => {
                assert_eq!(e.exit_code(), 2);
                e.to_string()
            }
            Ok(p) => panic!("expected an error, got {p:?}"),
        }
    }

    #[test]
    fn values_both_spellings_and_negative_numbers() {
        let p = ok(&["in.npy", "--feature-range", "-1,1", "--eps=-1e-5", "-o", "out.npy"]);
        assert_eq!(p.pair("feature-range").unwrap(), Some((-1.0, 1.0)));
        assert_eq!(p.f64("eps").unwrap(), Some(-1e-5));
        assert_eq!(p.value("output"), Some("out.npy"));
        assert_eq!(p.input(), PathBuf::from("in.npy"));
        let p = ok(&["--feature-range=-.5,2", "in.npy", "-oout.npy", "--verify"]);
        assert_eq!(p.pair("feature-range").unwrap(), Some((-0.5, 2.0)));
        assert_eq!(p.value("output"), Some("out.npy"));
        assert!(p.flag("verify"));
        assert!(!p.flag("backend"));
        let p = ok(&["--output=o.csv", "--", "-weird.npy"]);
        assert_eq!(p.positional(0), "-weird.npy");
        assert_eq!(p.value("output"), Some("o.csv"));
    }

    #[test]
    fn errors_name_the_option() {
        assert!(err(&["in.npy", "--nope"]).contains("'--nope'"));
        assert!(err(&["in.npy", "-x"]).contains("'-x'"));
        assert!(err(&["in.npy", "--eps"]).contains("--eps needs a value"));
        assert!(err(&["in.npy", "--eps", "--verify"]).contains("--eps needs a value"));
        assert!(err(&["in.npy", "--verify=yes"]).contains("--verify takes no value"));
        assert!(err(&["in.npy", "--verify", "--verify"]).contains("--verify given more than once"));
        assert!(err(&["in.npy", "-o", "a", "--output=b"]).contains("-o/--output given more than once"));
        assert!(err(&["a.npy", "b.npy"]).contains("unexpected argument 'b.npy'"));
        assert!(err(&[]).contains("missing INPUT"));
        let p = ok(&["in.npy", "--feature-range", "1"]);
        assert!(p.pair("feature-range").unwrap_err().to_string().contains("--feature-range"));
        let p = ok(&["in.npy", "--eps", "x"]);
        assert!(p.f64("eps").unwrap_err().to_string().contains("'x' is not a number"));
    }

    #[test]
    fn help_wins() {
        assert!(ok(&["--nope", "-h"]).help);
        assert!(ok(&["--help"]).help);
        assert!(!ok(&["--", "--help"]).help);
    }

    #[test]
    fn lists() {
        assert_eq!(parse_list("0.25, 0.5,1").unwrap(), vec![0.25, 0.5, 1.0]);
        assert_eq!(parse_list("").unwrap(), Vec::<f64>::new());
        assert!(parse_list("1,,2").is_err());
        assert!(parse_list("nan").is_err());
        assert!(parse_pair("1,2,3").is_err());
    }
}
