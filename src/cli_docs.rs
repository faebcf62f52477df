//! The `completions` and `man` subcommands that `srtpd` and `srtpctl` share: shell
//! completions and man pages, generated from each binary's clap definitions so they cannot
//! drift from its options.

use std::io;
use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// The subcommands, flattened into each binary's own.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum DocCommand {
    /// Print a shell completion script, e.g. `source <(srtpd completions bash)`, or save it
    /// where the shell looks (bash: /usr/share/bash-completion/completions/NAME).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: Shell,
    },
    /// Write man pages (NAME.1, and NAME-SUBCOMMAND.1 for each subcommand) into a directory,
    /// e.g. /usr/local/share/man/man1.
    Man {
        /// The directory (created if missing).
        dir: PathBuf,
    },
}

impl DocCommand {
    /// Carries the subcommand out for the binary whose definition `cmd` is.
    pub fn run(&self, mut cmd: clap::Command) -> io::Result<()> {
        match self {
            DocCommand::Completions { shell } => {
                let name = cmd.get_name().to_owned();
                clap_complete::generate(*shell, &mut cmd, name, &mut io::stdout());
                Ok(())
            }
            DocCommand::Man { dir } => {
                for page in write_man_pages(cmd, dir)? {
                    println!("{}", page.display());
                }
                Ok(())
            }
        }
    }
}

/// Writes the man pages of `cmd` and its subcommands into `dir`; returns their paths.
pub fn write_man_pages(cmd: clap::Command, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = cmd;
    cmd.build();
    let mut pages = Vec::new();
    write_page(&cmd, cmd.get_name(), dir, &mut pages)?;
    Ok(pages)
}

fn write_page(
    cmd: &clap::Command,
    name: &str,
    dir: &Path,
    pages: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let page = clap_mangen::Man::new(cmd.clone().name(name.to_owned())).section("1");
    let path = dir.join(format!("{name}.1"));
    let mut file = std::fs::File::create(&path)?;
    page.render(&mut file)?;
    pages.push(path);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        write_page(sub, &format!("{name}-{}", sub.get_name()), dir, pages)?;
    }
    Ok(())
}
