//! The command line: `crowdroom serve | migrate | room | user | token`.
//! Every flag can also be set by an environment variable (`CROWDROOM_*`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Role;
use crate::error::{Error, Result};
use crate::http::Settings;
use crate::ids::{RoomId, TokenId, UserId};
use crate::store::Store;

#[derive(Debug, Parser)]
#[command(
    name = "crowdroom",
    version,
    about = "Crowdroom: live project rooms for crowd work"
)]
pub struct Cli {
    /// Database URL: sqlite://FILE (embedded, the default) or postgres://USER@HOST/DB.
    #[arg(
        long,
        global = true,
        env = "CROWDROOM_DATABASE",
        default_value = "sqlite://crowdroom.db"
    )]
    pub database: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the server (migrating the database first).
    Serve(ServeArgs),
    /// Creates or upgrades the database schema, then exits.
    Migrate,
    /// Manages rooms.
    #[command(subcommand)]
    Room(RoomCommand),
    /// Manages users.
    #[command(subcommand)]
    User(UserCommand),
    /// Issues and revokes bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Issues and revokes server operator tokens (every room's figures,
    /// and a moderator token for any room, in the web console).
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Runs the consensus estimators offline on a dataset; prints JSON lines. Opens no database.
    Consensus(crate::consensus::cli::ConsensusArgs),
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CROWDROOM_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Seeds a room `demo` with an owner, a moderator, a core member and
    /// workers, and prints a token for each.
    #[arg(long, env = "CROWDROOM_DEMO")]
    pub demo: bool,
    /// Unload a document this long after its last connection left.
    #[arg(long, env = "CROWDROOM_DOC_IDLE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub doc_idle: Duration,
    /// Unload a room this long after it became empty.
    #[arg(long, env = "CROWDROOM_ROOM_IDLE", default_value = "60s", value_parser = humantime::parse_duration)]
    pub room_idle: Duration,
    /// How long a room's lease lasts unless renewed: after a kill -9, how
    /// long the process's rooms wait before another process sharing the
    /// database (or the restarted one) may run them.
    #[arg(long, env = "CROWDROOM_ROOM_LEASE_TTL", default_value = "15s", value_parser = humantime::parse_duration)]
    pub room_lease_ttl: Duration,
    /// Checkpoint a document into a snapshot after about this many updates
    /// (each document draws its next count within a quarter of this either side).
    #[arg(long, env = "CROWDROOM_CHECKPOINT_EVERY", default_value_t = 1000)]
    pub checkpoint_every: usize,
    /// Close a connection that has not sent a request's headers this long
    /// after it opened or after its previous response (slowloris, idle keep-alive).
    #[arg(long, env = "CROWDROOM_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// Most TCP connections (WebSockets included) one client address may
    /// hold open; more are closed at accept. 0: no cap (load tests from one address).
    #[arg(long, env = "CROWDROOM_MAX_CONNECTIONS_PER_IP", default_value_t = crate::http::DEFAULT_MAX_CONNECTIONS_PER_IP)]
    pub max_connections_per_ip: usize,
    /// Most WebSockets one user may hold open at once; more are refused with 429. 0: no cap.
    #[arg(long, env = "CROWDROOM_MAX_SOCKETS_PER_USER", default_value_t = crate::http::DEFAULT_MAX_SOCKETS_PER_USER)]
    pub max_sockets_per_user: u32,
}

#[derive(Debug, Subcommand)]
pub enum RoomCommand {
    /// Creates a room.
    Create {
        /// The room id (A-Z a-z 0-9 _ -).
        room: String,
        /// A display name (defaults to the id).
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Creates a user.
    Create {
        /// The user id (A-Z a-z 0-9 _ - .).
        name: String,
        /// A display name (defaults to the id).
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issues a token and prints it alone on the last line.
    Issue {
        #[arg(long)]
        user: String,
        #[arg(long)]
        room: String,
        /// owner, moderator, core, worker or viewer.
        #[arg(long)]
        role: String,
        /// Lifetime, e.g. 30m, 12h, 7d (default: no expiry).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
    },
    /// Revokes a token by id or by the token itself; open sockets close with 4403.
    Revoke {
        /// The token id (tok_...), as listed by the API.
        #[arg(long, conflicts_with = "token", required_unless_present = "token")]
        id: Option<String>,
        /// The secret token itself.
        #[arg(long)]
        token: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Issues an operator token (creating the user if new) and prints it
    /// alone on the last line, with its sign-in link before it.
    Issue {
        #[arg(long)]
        user: String,
        /// Lifetime, e.g. 12h, 30d (default: no expiry).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
    },
    /// Revokes an operator token by id.
    Revoke {
        /// The token id (tok_...), as `operator issue` printed it.
        #[arg(long)]
        id: String,
    },
}

/// Runs a parsed command line.
pub async fn execute(cli: Cli) -> Result<()> {
    let command = match cli.command {
        Command::Consensus(args) => return crate::consensus::cli::run(args),
        other => other,
    };
    let store = Store::open(&cli.database).await?;
    match command {
        Command::Serve(args) => serve(store, args).await,
        Command::Migrate => {
            println!("database is up to date");
            Ok(())
        }
        Command::Room(RoomCommand::Create { room, name }) => {
            let id = RoomId::parse(&room)?;
            let row = store
                .create_room(&id, name.as_deref().unwrap_or(&room))
                .await?;
            println!("created room {}", row.id);
            Ok(())
        }
        Command::User(UserCommand::Create { name, display_name }) => {
            let id = UserId::parse(&name)?;
            if !store
                .ensure_user(&id, display_name.as_deref().unwrap_or(&name))
                .await?
            {
                return Err(Error::Conflict("user"));
            }
            println!("created user {id}");
            Ok(())
        }
        Command::Token(TokenCommand::Issue {
            user,
            room,
            role,
            ttl,
        }) => {
            let role: Role = role.parse()?;
            let ttl_ms = ttl.map(|ttl| i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
            let (row, secret) = store
                .issue_token(&RoomId::parse(&room)?, &UserId::parse(&user)?, role, ttl_ms)
                .await?;
            println!("issued token {} for {user} as {role} in {room}", row.id);
            println!("{secret}");
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { id, token }) => {
            let id = match (id, token) {
                (Some(id), _) => TokenId(id.into()),
                (None, Some(secret)) => store.token_id_of_secret(&secret).await?,
                (None, None) => return Err(Error::BadRequest("give --id or --token".into())),
            };
            let room = store.revoke_token(&id, None).await?;
            println!("revoked token {id} of room {room}");
            Ok(())
        }
        Command::Operator(OperatorCommand::Issue { user, ttl }) => {
            let ttl_ms = ttl.map(|ttl| i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
            let (id, secret) = store
                .issue_operator_token(&UserId::parse(&user)?, ttl_ms)
                .await?;
            println!("issued operator token {id} for {user}");
            println!("sign in at http://HOST:PORT/#/join/{secret}");
            println!("{secret}");
            Ok(())
        }
        Command::Operator(OperatorCommand::Revoke { id }) => {
            store.revoke_operator_token(&TokenId(id.into())).await?;
            println!("revoked operator token");
            Ok(())
        }
        // Dispatched above, before the store is opened; kept for exhaustiveness.
        Command::Consensus(args) => crate::consensus::cli::run(args),
    }
}

async fn serve(store: Store, args: ServeArgs) -> Result<()> {
    let listener = listen(args.addr)
        .map_err(|error| Error::Internal(format!("cannot listen on {}: {error}", args.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|error| Error::Internal(error.to_string()))?;
    if args.demo {
        for member in crate::demo::seed(&store).await? {
            println!(
                "demo {:<9} {:<6} http://{addr}/#/join/{}",
                member.role.as_str(),
                member.user,
                member.token
            );
        }
        // A server operator too: every room, and new ones, in the web UI.
        let operator = UserId::parse("operator")?;
        let (_, secret) = store.issue_operator_token(&operator, None).await?;
        println!("server operator         http://{addr}/#/join/{secret}");
    }
    let mut settings = Settings::default();
    settings.rooms.doc_idle = args.doc_idle;
    settings.rooms.room_idle = args.room_idle;
    settings.rooms.lease_ttl = args.room_lease_ttl.max(crate::rooms::MIN_LEASE_TTL);
    settings.rooms.checkpoint_every = args.checkpoint_every.max(1);
    settings.http.header_read_timeout = args.header_read_timeout;
    settings.http.max_connections_per_ip = args.max_connections_per_ip;
    settings.http.max_sockets_per_user = args.max_sockets_per_user;
    let shutdown = CancellationToken::new();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    tracing::info!(%addr, backend = ?store.backend(), "crowdroom listening");
    println!("crowdroom listening on http://{addr}");
    crate::http::run(listener, store, settings, shutdown).await
}

/// Pending connections the kernel queues for us: tokio's default of 128
/// overflows when thousands of clients reconnect at once after a restart.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C.
async fn signal_shutdown(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down: closing sockets and flushing rooms");
    shutdown.cancel();
}
