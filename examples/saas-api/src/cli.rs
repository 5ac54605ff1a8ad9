//! The command line: `saas-api` serves; subcommands do one thing and exit.

use clap::{Parser, Subcommand};

/// A small multi-tenant invoices API wired with every guardrail.
///
/// Without a subcommand it serves HTTP on `SAAS_SERVER__ADDR`
/// (default `127.0.0.1:3000`) until `SIGTERM` or Ctrl-C.
#[derive(Debug, Parser)]
#[command(name = "saas-api", version)]
pub struct Cli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the effective configuration (secrets redacted, the source of
    /// every value) and exit.
    Config {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a development token signed with the development HS256 secret
    /// (development environment only), e.g.
    /// `saas-api token --sub alice --tenant acme --scope "invoices:read invoices:write" --role admin`.
    Token(crate::auth::TokenArgs),
}
