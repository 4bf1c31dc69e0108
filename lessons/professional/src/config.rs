//! Every setting of the template, its production default, and the hand-written flag parser.

use std::net::SocketAddr;
use std::time::Duration;

/// The template's settings. `Config::default()` is what production runs with; each field says
/// why its default has the value it has.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen. Default `0.0.0.0:3000`.
    pub addr: SocketAddr,
    /// Connections served at once; the next one waits *before* `accept`, in the kernel's
    /// backlog. Default 4096: a file-descriptor budget well under a typical `ulimit -n` of
    /// 65536, with room for the outbound pool and log files.
    pub max_connections: usize,
    /// Time a client has to send a whole request head (and, before that, the first bytes the
    /// auto builder reads to pick HTTP/1 or HTTP/2). Default 10 s: slow mobile links send a
    /// head in well under a second; a slowloris client never finishes.
    pub header_timeout: Duration,
    /// Time a client has to send a whole request body, from the moment the handler asks for
    /// it. Default 30 s: a 1 MiB body at a slow 64 kB/s takes 16 s.
    pub body_deadline: Duration,
    /// Largest request body a handler will read. Default 1 MiB.
    pub max_body_bytes: usize,
    /// Requests handled at once; the next one is shed with 503 + `Retry-After` rather than
    /// queued. Default 1024.
    pub max_in_flight: usize,
    /// Requests per second admitted by the token bucket (burst = one second's worth), 0 = off.
    /// Default off: a global rate is a capacity guess; shed on in-flight first, measure, then
    /// set it (the benchmark pages measure the template without it).
    pub rate_per_second: u32,
    /// Time a handler has to produce its response head; then 503. Default 15 s: above
    /// `/work`'s 10 s cap so the load route never times out by design.
    pub handler_timeout: Duration,
    /// Time shutdown waits for connections to drain before it drops them. Default 25 s: under
    /// Kubernetes' default 30 s `terminationGracePeriodSeconds`, leaving 5 s to flush.
    pub shutdown_deadline: Duration,
    /// The service `GET /upstream` calls, if any.
    pub upstream: Option<String>,
    /// Whole-call bound of the outbound client (`GET /upstream`). Default 10 s.
    pub upstream_timeout: Duration,
    /// Expose `GET /panic`, a handler that panics (tests only). Default off.
    pub test_routes: bool,
    /// Serve as `axum::serve` does: no timer, no header timeout (for the attack page only).
    pub no_timer: bool,
    /// HTTP/2 streams per connection. Default 128.
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 keep-alive ping interval; a peer that does not answer within
    /// `h2_keep_alive_timeout` is dropped. Defaults 20 s and 10 s.
    pub h2_keep_alive_interval: Duration,
    /// See `h2_keep_alive_interval`.
    pub h2_keep_alive_timeout: Duration,
    /// HTTP/1 read buffer cap, which also caps a request head. Default 64 KiB (hyper's
    /// default is ~400 KiB; nobody sends heads that large on purpose).
    pub h1_max_buf_size: usize,
    /// HTTP/1 header count cap. Default 64 (hyper's default 100).
    pub h1_max_headers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: SocketAddr::from(([0, 0, 0, 0], 3000)),
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            body_deadline: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            max_in_flight: 1024,
            rate_per_second: 0,
            handler_timeout: Duration::from_secs(15),
            shutdown_deadline: Duration::from_secs(25),
            upstream: None,
            upstream_timeout: crate::outbound::TOTAL_TIMEOUT,
            test_routes: false,
            no_timer: false,
            h2_max_concurrent_streams: 128,
            h2_keep_alive_interval: Duration::from_secs(20),
            h2_keep_alive_timeout: Duration::from_secs(10),
            h1_max_buf_size: 64 * 1024,
            h1_max_headers: 64,
        }
    }
}

/// What `--help` prints.
pub const USAGE: &str = "\
template: the production HTTP server template (HTTP/1 and HTTP/2)

USAGE: template [FLAGS]

  --addr ADDR                 listen address               [default 0.0.0.0:3000]
  --max-connections N         connections at once, held before accept     [4096]
  --header-timeout-ms MS      whole request head (and first bytes)     [10000]
  --body-deadline-ms MS       whole request body                       [30000]
  --max-body-bytes N          request body limit, 413 above          [1048576]
  --max-in-flight N           requests at once, 503 + Retry-After above [1024]
  --handler-timeout-ms MS     handler deadline, 503 after              [15000]
  --rate-per-second N         token bucket, 429 + Retry-After; 0 = off      [0]
  --shutdown-deadline-ms MS   drain time on SIGTERM/Ctrl-C             [25000]
  --upstream URL              what GET /upstream calls                  [none]
  --no-timer                  serve like axum::serve: no timer, no header
                              timeout (slowloris succeeds; for the attack demo)
  --help                      this text

ROUTES: GET /  POST /echo  GET /work?ms=N  GET /metrics  GET /ws  GET /upstream
Prints `listening on ADDR` on stdout once bound; logs go to stderr (RUST_LOG).
";

/// What the command line asked for.
#[derive(Debug)]
pub enum Command {
    /// Serve with this configuration.
    Serve(Box<Config>),
    /// Print [`USAGE`] and exit.
    Help,
}

/// Parses the flags (without the program name). Errors name the flag and the bad value.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut config = Config::default();
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Ok(Command::Help);
        }
        if flag == "--no-timer" {
            config.no_timer = true;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value (see --help)"))?;
        match flag.as_str() {
            "--addr" => config.addr = parse(&flag, &value)?,
            "--max-connections" => config.max_connections = positive(&flag, &value)?,
            "--header-timeout-ms" => config.header_timeout = millis(&flag, &value)?,
            "--body-deadline-ms" => config.body_deadline = millis(&flag, &value)?,
            "--max-body-bytes" => config.max_body_bytes = positive(&flag, &value)?,
            "--max-in-flight" => config.max_in_flight = positive(&flag, &value)?,
            "--handler-timeout-ms" => config.handler_timeout = millis(&flag, &value)?,
            "--rate-per-second" => config.rate_per_second = parse(&flag, &value)?,
            "--shutdown-deadline-ms" => config.shutdown_deadline = millis(&flag, &value)?,
            "--upstream" => {
                if !(value.starts_with("http://") || value.starts_with("https://")) {
                    return Err(format!("{flag}: `{value}` is not an http:// URL"));
                }
                config.upstream = Some(value);
            }
            _ => return Err(format!("unknown flag `{flag}` (see --help)")),
        }
    }
    Ok(Command::Serve(Box::new(config)))
}

fn parse<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| format!("{flag}: `{value}` is not valid: {e}"))
}

fn positive(flag: &str, value: &str) -> Result<usize, String> {
    match parse::<usize>(flag, value)? {
        0 => Err(format!("{flag}: must be at least 1")),
        n => Ok(n),
    }
}

fn millis(flag: &str, value: &str) -> Result<Duration, String> {
    Ok(Duration::from_millis(positive(flag, value)? as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flags_override_defaults_and_bad_input_is_named() {
        let Ok(Command::Serve(c)) =
            parse_args(args("--addr 127.0.0.1:0 --max-in-flight 8 --no-timer"))
        else {
            panic!("should parse");
        };
        assert_eq!(c.addr.port(), 0);
        assert_eq!(c.max_in_flight, 8);
        assert!(c.no_timer);
        let err = parse_args(args("--header-timeout-ms soon")).unwrap_err();
        assert!(err.contains("--header-timeout-ms"), "{err}");
        assert!(parse_args(args("--max-connections 0")).is_err());
        assert!(parse_args(args("--bogus 1")).is_err());
        assert!(parse_args(args("--addr")).is_err());
    }
}
